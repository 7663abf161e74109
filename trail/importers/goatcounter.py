"""`trail import goatcounter`: a GoatCounter CSV export into a site, as real rows.

The format (facts from GoatCounter's source, github.com/arp242/goatcounter: `exportcsv.go`,
which writes the header in `RunCSV`, reads rows back in `ImportCSV` / `ExportCSVRow.Hit`, and
`tpl/help/export.md`): a CSV file (Go's encoding/csv: `"` quoting, quoted newlines, blank lines
allowed), usually gzip-compressed (`goatcounter-export-<site>-<time>-<hit id>.csv.gz`), one
row per hit. The first header cell carries the format version as a prefix; this reads version
2, whose header is

    2Path,Title,Event,UserAgent,Browser,System,Session,Bot,Referrer,Referrer scheme,
    Screen size,Location,FirstVisit,Date

- Path: the page path; for an event, the event's name. Title: the page title.
- Event, FirstVisit: booleans (`true`/`false`; older exports write `1`/`0`).
- UserAgent: the User-Agent header (blank in newer exports, which no longer store it).
- Browser, System: name and version in one cell (`Chrome 86`, `macOS 10.15`).
- Session: the session id (128-bit hex), shared by the hits of one visit.
- Bot: `0` for people, otherwise one of the isbot constants.
- Referrer, Referrer scheme: `h` a URL (written without its scheme), `g` a generated name
  (`Email`, `Hacker News`), `c` the text of a campaign parameter, `o` other (Android apps).
- Screen size: `width,height,scaling` (newer exports only know the width: `1440,0,1`).
- Location: ISO 3166 code of the country or country subdivision (`US`, `US-CA`).
- Date: RFC 3339 (`2020-12-01T00:07:10Z`).

How the rows become trail's: trail.importers.goatcounter_rows.

Checked before anything is written, and refused naming the line and column: a header that is
not version 2's, a row without 14 columns, a Date that is not RFC 3339 (or lies before 1970 or
after tomorrow), an Event or FirstVisit that is not a boolean, a Bot that is not a number; a
file that is not CSV or gzip (a zip archive, a truncated gzip stream) or that unpacks to more
than TRAIL_IMPORT_MAX_BYTES. Then the rows are written by the machinery of `trail import trail`
(trail.importers.trail_export.write_tables): per table and UTC day, replacing the stored rows
of the sessions the import brings, while the server runs. An interrupted import leaves whole
days written; run again, it writes the same rows.

The file is never held in memory whole. The first pass reads it a batch of rows at a time,
checks them and writes the people's rows into buckets by GoatCounter session (scratch Parquet
files; every row of a session lands in the same bucket); the second builds trail's rows one
bucket at a time (a session's rows depend only on its own), stages them as Parquet sorted by
time, and the writer reads them a UTC day at a time. Peak memory follows the bucket size, not
the file.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import re
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow.parquet as pq

from trail.export import ExportError, cli_error, lookup_site
from trail.importers.goatcounter_rows import build
from trail.importers.progress import ImportProgress
from trail.importers.trail_export import ImportProblem, Source, check, write_tables
from trail.storage.schema import TABLES

VERSION = "2"
COLUMNS = (
    "Path", "Title", "Event", "UserAgent", "Browser", "System", "Session", "Bot", "Referrer",
    "Referrer scheme", "Screen size", "Location", "FirstVisit", "Date",
)  # fmt: skip
NAMES = (
    "path", "title", "event", "user_agent", "browser", "system", "session", "bot", "referrer",
    "scheme", "size", "location", "first_visit", "date",
)  # fmt: skip
# The largest CSV (after gunzip) read; a bigger file, or a gzip bomb, is refused.
MAX_BYTES = int(os.environ.get("TRAIL_IMPORT_MAX_BYTES", str(16 << 30)))
# The spellings of a boolean Go's strconv.ParseBool reads (GoatCounter writes true/false,
# older exports 1/0).
TRUE = ("1", "t", "T", "true", "TRUE", "True")
FALSE = ("0", "f", "F", "false", "FALSE", "False")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
POLARS_RFC3339 = "%Y-%m-%dT%H:%M:%S%.f%#z"
FIRST_MS = 0  # 1970-01-01, the first day trail's statistics read
GZIP, ZIP = b"\x1f\x8b", b"PK\x03\x04"
CHUNK = 1 << 20
STAGE_GROUP_ROWS = 16_384
BLOCK_BYTES = 8 << 20  # CSV bytes read and checked at a time
# CSV bytes per bucket of sessions: a bucket is built in memory on its own (~60k rows here).
BUCKET_BYTES = int(os.environ.get("TRAIL_IMPORT_BUCKET_BYTES", str(8 << 20)))
MAX_BUCKETS = 256
# The columns trail.importers.goatcounter_rows.build reads.
BUILD_COLUMNS = ["row", "time", "is_event", "width", "path", "title", "user_agent", "browser",
                 "system", "session", "referrer", "scheme", "location"]  # fmt: skip


# -- reading the file ---------------------------------------------------------------------------


def unpack(path: Path, scratch: Path, progress: ImportProgress) -> Path:
    """The CSV to read: `path` itself, or its gunzipped copy in `scratch`."""
    if not path.is_file():
        raise ImportProblem(f"{path}: no such file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(ZIP):
        raise ImportProblem(f"{path}: a zip archive, not a GoatCounter export (.csv or .csv.gz)")
    progress.begin("read", size)
    if not magic.startswith(GZIP):
        if size > MAX_BYTES:
            raise ImportProblem(f"{path}: larger than {MAX_BYTES:,} bytes (TRAIL_IMPORT_MAX_BYTES)")
        return path
    out = scratch / "export.csv"
    written = 0
    try:
        with open(path, "rb") as raw, gzip.open(raw) as src, open(out, "wb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > MAX_BYTES:
                    raise ImportProblem(
                        f"{path}: unpacks to more than {MAX_BYTES:,} bytes (TRAIL_IMPORT_MAX_BYTES)"
                    )
                dst.write(chunk)
                progress.advance(raw.tell(), 0, raw.tell())
    except EOFError:
        raise ImportProblem(f"{path}: the gzip stream ends early (a truncated file)") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise ImportProblem(f"{path}: not a valid gzip file ({e})") from None
    return out


def check_header(csv_path: Path) -> None:
    with open(csv_path, newline="", encoding="utf-8", errors="replace") as f:
        header = next(csv.reader(f), [])
    version = re.fullmatch(r"(\d+)Path", header[0]) if header else None
    if version is None or header[1:] != list(COLUMNS[1:]):
        raise ImportProblem(
            "line 1: not the header of a GoatCounter CSV export "
            f"(expected {VERSION}{','.join(COLUMNS)})"
        )
    if version[1] != VERSION:
        raise ImportProblem(
            f"line 1: a GoatCounter export of format version {version[1]}; "
            f"this reads version {VERSION} (export it again from GoatCounter)"
        )


def typed(raw: pl.DataFrame, first_row: int) -> pl.DataFrame:
    """A batch of CSV rows without its blank lines, with typed columns; `row` numbers the
    file's non-blank rows from `first_row`."""
    blank = pl.all_horizontal(pl.col(list(NAMES)).is_null())
    raw = raw.filter(~blank).with_columns(pl.col(list(NAMES)).fill_null(""))
    return raw.with_row_index("row", offset=first_row).with_columns(
        time=pl.col("date").str.to_datetime(
            POLARS_RFC3339, strict=False, time_unit="ms", time_zone="UTC"
        ),
        is_event=pl.col("event").is_in(TRUE),
        is_bot=pl.col("bot").is_in(["", "0"]).not_(),
        width=pl.col("size").str.extract(r"^\s*(\d{1,9})", 1).cast(pl.Int64).fill_null(0),
    )


def bad_row(latest_ms: int) -> pl.Expr:
    """True on a typed row that does not read as version 2 (`locate` says why)."""
    t_ms = pl.col("time").dt.epoch("ms")
    return (
        pl.col("time").is_null()
        | (t_ms < FIRST_MS)
        | (t_ms > latest_ms)
        | ~pl.col("event").is_in(TRUE + FALSE)
        | ~pl.col("first_visit").is_in(TRUE + FALSE)
        | ~pl.col("bot").str.contains(r"^\d*$")
    )


def blocks(csv_path: Path) -> Iterator[bytes]:
    """The CSV after its header line, in pieces of about BLOCK_BYTES that each end where a record
    ends, read with plain reads (a memory-mapped file would count whole in the RSS)."""
    with open(csv_path, "rb") as f:
        f.readline()
        rest = b""
        while data := f.read(BLOCK_BYTES):
            buf = rest + data
            end = record_end(buf)
            rest = buf[end + 1 :]
            if end >= 0:
                yield buf[: end + 1]
        if rest:
            yield rest


def record_end(buf: bytes) -> int:
    """The last newline of `buf` (which starts at a record) outside quotes, -1 when none. Go's
    encoding/csv doubles a quote inside a quoted field, so a newline ends a record exactly when
    the quotes before it are even."""
    at = buf.rfind(b"\n")
    while at >= 0 and buf.count(b'"', 0, at) % 2:
        at = buf.rfind(b"\n", 0, at)
    return at


@dataclass
class Buckets:
    """The people's rows of a checked export, split by GoatCounter session into Parquet files."""

    files: list[Path]
    rows: int  # non-blank rows of the file
    bots: int  # of them, bot rows (not in the buckets)


def split(csv_path: Path, scratch: Path, progress: ImportProgress) -> Buckets:
    """Read and check every row of the CSV a block at a time, and write the rows of people into
    buckets by session (a row without a session id is a session of its own). Any bad row is
    refused with its line before a row is written anywhere but `scratch`."""
    check_header(csv_path)
    size = csv_path.stat().st_size
    count = min(MAX_BUCKETS, max(1, -(-size // max(BUCKET_BYTES, 1))))
    paths = [scratch / f"bucket-{k}.parquet" for k in range(count)]
    writers: dict[int, pq.ParquetWriter] = {}
    latest = int((time.time() + 86_400) * 1000)
    session = pl.when(pl.col("session") == "").then(pl.format("row:{}", "row"))
    bucket = session.otherwise(pl.col("session")).hash(seed=0) % count
    rows = bots = read = 0
    progress.begin("check", size)
    try:
        for block in blocks(csv_path):
            read += len(block)
            if not block.strip():
                continue
            raw = pl.read_csv(
                block, has_header=False, new_columns=list(NAMES), infer_schema=False,
                encoding="utf8-lossy",
            )  # fmt: skip
            batch = typed(raw, rows)
            if batch.select(bad_row(latest).any()).item():
                raise locate(csv_path) or ImportProblem("a row does not read as version 2")
            people = batch.filter(~pl.col("is_bot")).select(*BUILD_COLUMNS, bucket=bucket)
            rows, bots = rows + batch.height, bots + batch.height - people.height
            for (k,), part in people.partition_by("bucket", as_dict=True).items():
                table = part.drop("bucket").to_arrow()
                if k not in writers:
                    writers[k] = pq.ParquetWriter(paths[k], table.schema)
                writers[k].write_table(table)
            progress.advance(read, rows, read)
    except pl.exceptions.PolarsError as e:
        raise locate(csv_path) or ImportProblem(f"cannot read the CSV ({_first_line(e)})") from None
    finally:
        for w in writers.values():
            w.close()
    return Buckets([paths[k] for k in sorted(writers)], rows, bots)


def locate(csv_path: Path) -> ImportProblem | None:
    """The first bad row, named by its line, read again row by row."""
    with open(csv_path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        next(reader, None)
        try:
            for record in reader:
                if not record:
                    continue
                problem = row_problem(record)
                if problem:
                    return ImportProblem(f"line {reader.line_num}: {problem}")
        except csv.Error as e:
            return ImportProblem(f"line {reader.line_num}: not CSV ({e})")
    return None


def row_problem(record: list[str]) -> str | None:
    """What is wrong with one row, or None."""
    if len(record) != len(COLUMNS):
        return f"{len(record)} columns, a version {VERSION} export has {len(COLUMNS)}"
    cell = dict(zip(COLUMNS, record, strict=True))
    for name in ("Event", "FirstVisit"):
        if cell[name] not in TRUE + FALSE:
            return f"column {name}: {cell[name]!r} is not true or false"
    if not cell["Bot"].isdigit() and cell["Bot"] != "":
        return f"column Bot: {cell['Bot']!r} is not a number"
    date = cell["Date"]
    if not RFC3339.fullmatch(date):
        return f"column Date: {date!r} is not an RFC 3339 time (2020-12-01T00:07:10Z)"
    try:
        when = datetime.fromisoformat(date)
    except ValueError:
        return f"column Date: {date!r} is not a valid time"
    if when < datetime(1970, 1, 1, tzinfo=UTC):
        return f"column Date: {date!r} is before 1970"
    if when > datetime.now(UTC) + timedelta(days=1):
        return f"column Date: {date!r} is in the future"
    return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


# -- the import ---------------------------------------------------------------------------------


@dataclass
class Summary:
    site_id: str
    rows: int = 0  # rows of the file
    bots: int = 0  # bot rows, skipped
    page_views: int = 0
    events: int = 0
    sessions: int = 0
    first: str = ""  # UTC day of the first and last row imported
    last: str = ""
    days: int = 0  # day directories written
    replaced_rows: int = 0
    bytes_in: int = 0
    seconds: float = 0.0
    tables: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "seconds": round(self.seconds, 3)}


def build_buckets(
    buckets: Buckets, site: Any, scratch: Path, progress: ImportProgress
) -> tuple[Source, dict[str, int]]:
    """trail's rows of every bucket, staged as `check` and `write_tables` read an export: per
    table one Parquet file per bucket, in time order and small row groups (each day's read skips
    the other days' groups), scanned together. Also the rows per table."""
    files: dict[str, list[Path]] = {}
    counts = dict.fromkeys(("page_views", "sessions", "session_presence", "events"), 0)
    lo, hi = 2**63, -1
    progress.begin("convert", len(buckets.files))
    for i, path in enumerate(buckets.files):
        tables = build(pl.read_parquet(path), site.id, site.hostname)
        path.unlink()
        for stem, df in tables.items():
            counts[stem] += df.height
            if not df.height:
                continue
            file = scratch / f"{stem}-{i}.parquet"
            df.sort("time").write_parquet(file, row_group_size=STAGE_GROUP_ROWS, statistics=True)
            files.setdefault(stem, []).append(file)
            t = df.select(pl.col("time").dt.epoch("ms").min().alias("lo"),
                          pl.col("time").dt.epoch("ms").max().alias("hi")).row(0)  # fmt: skip
            lo, hi = min(lo, t[0]), max(hi, t[1])
        progress.advance(i + 1, sum(counts.values()), 0)
    table_of = {"session_presence": "sessions"}
    frames = {
        stem: pl.scan_parquet(files[stem]) if stem in files
        else pl.LazyFrame(schema=TABLES[table_of.get(stem, stem)])
        for stem in counts
    }  # fmt: skip
    manifest = {"tables": {s: {"file": f"{s}.parquet", "rows": n} for s, n in counts.items()}}
    return Source(manifest, frames, lo if hi >= 0 else 0, hi + 1), counts


def import_goatcounter(
    data_dir: Path | str, site: Any, path: Path, progress: ImportProgress | None = None
) -> Summary:
    """Import the GoatCounter CSV export at `path` (.csv or .csv.gz) into `site`."""
    began = time.monotonic()
    data_dir = Path(data_dir)
    progress = progress or ImportProgress("import", io.StringIO())
    summary = Summary(site.id, bytes_in=path.stat().st_size if path.is_file() else 0)
    with tempfile.TemporaryDirectory(prefix="trail-import-") as tmp:
        scratch = Path(tmp)
        try:
            buckets = split(unpack(path, scratch, progress), scratch, progress)
            summary.rows, summary.bots = buckets.rows, buckets.bots
            source, summary.tables = build_buckets(buckets, site, scratch, progress)
        finally:
            progress.close()
        if not any(summary.tables.values()):
            summary.seconds = time.monotonic() - began
            return summary
        checked = check(source, data_dir, site.id)
        progress.begin("write", sum(len(d) for d in checked.days.values()))
        written = write_tables(data_dir, site.id, source.frames, checked.days, progress)
    every = sorted(d for days in checked.days.values() for d in days)
    summary.page_views = summary.tables["page_views"]
    summary.events = summary.tables["events"]
    summary.sessions = summary.tables["sessions"]
    summary.first, summary.last = every[0].isoformat(), every[-1].isoformat()
    summary.days = len(set(every))
    summary.replaced_rows = written.replaced
    summary.seconds = time.monotonic() - began
    return summary


# -- the command --------------------------------------------------------------------------------


def cmd_import(args: argparse.Namespace) -> int:
    from trail.config import load

    config = load(args.config, flags={"data_dir": args.data_dir}, create_data_dir=False)
    try:
        site = lookup_site(config, args.site)
        summary = import_goatcounter(
            config.data_dir, site, Path(args.source), ImportProgress("import goatcounter")
        )
    except ExportError as e:
        return cli_error("import goatcounter", e)
    except KeyboardInterrupt:
        print(
            "trail: import goatcounter: interrupted; the days written so far are complete, "
            "run the same command again to finish",
            file=sys.stderr,
        )
        return 130
    if args.json:
        print(orjson.dumps(summary.as_dict()).decode())
        return 0
    seconds = max(summary.seconds, 1e-9)
    print(f"imported {args.source} into {site.hostname} ({site.id})")
    print(f"  {summary.rows:>12,} rows read, {summary.bots:,} bot rows skipped")
    print(f"  {summary.page_views:>12,} page views")
    print(f"  {summary.events:>12,} events")
    print(f"  {summary.sessions:>12,} sessions")
    if summary.days:
        print(f"  {summary.days:>12,} days ({summary.first}..{summary.last} UTC)")
    print(
        f"  {summary.replaced_rows:,} stored rows of the same sessions replaced; "
        f"{summary.seconds:.1f} s ({summary.rows / seconds:,.0f} rows/s)"
    )
    return 0

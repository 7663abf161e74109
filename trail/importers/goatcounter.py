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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from trail.export import ExportError, cli_error, lookup_site
from trail.importers.goatcounter_rows import build
from trail.importers.progress import ImportProgress
from trail.importers.trail_export import ImportProblem, Source, check, write_tables

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


def read_rows(csv_path: Path) -> pl.DataFrame:
    """The rows of the export with typed columns; any bad row is refused with its line."""
    check_header(csv_path)
    try:
        raw = pl.read_csv(
            csv_path, has_header=True, new_columns=list(NAMES), infer_schema=False,
            encoding="utf8-lossy",
        )  # fmt: skip
    except pl.exceptions.PolarsError as e:
        raise locate(csv_path) or ImportProblem(f"cannot read the CSV ({_first_line(e)})") from None
    blank = pl.all_horizontal(pl.col(list(NAMES)).is_null())
    raw = raw.filter(~blank).with_columns(pl.col(list(NAMES)).fill_null(""))
    typed = raw.with_row_index("row").with_columns(
        time=pl.col("date").str.to_datetime(
            POLARS_RFC3339, strict=False, time_unit="ms", time_zone="UTC"
        ),
        is_event=pl.col("event").is_in(TRUE),
        is_bot=pl.col("bot").is_in(["", "0"]).not_(),
        width=pl.col("size").str.extract(r"^\s*(\d{1,9})", 1).cast(pl.Int64).fill_null(0),
    )
    latest = int((time.time() + 86_400) * 1000)
    t_ms = pl.col("time").dt.epoch("ms")
    bad = (
        pl.col("time").is_null()
        | (t_ms < FIRST_MS)
        | (t_ms > latest)
        | ~pl.col("event").is_in(TRUE + FALSE)
        | ~pl.col("first_visit").is_in(TRUE + FALSE)
        | ~pl.col("bot").str.contains(r"^\d*$")
    )
    if typed.select(bad.any()).item():
        raise locate(csv_path) or ImportProblem("a row does not read as version 2 (no line found)")
    return typed


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


def stage(tables: dict[str, pl.DataFrame], scratch: Path) -> Source:
    """The built rows as `check` and `write_tables` read an export: Parquet files, scanned."""
    frames = {}
    for stem, df in tables.items():
        file = scratch / f"{stem}.parquet"
        # In time order, in small row groups: each day's read skips the others' groups.
        df.sort("time").write_parquet(file, row_group_size=STAGE_GROUP_ROWS, statistics=True)
        frames[stem] = pl.scan_parquet(file)
    times = pl.concat([df.select(pl.col("time").dt.epoch("ms")) for df in tables.values()])
    lo, hi = times.select(pl.col("time").min().alias("lo"), pl.col("time").max().alias("hi")).row(0)
    manifest = {"tables": {s: {"file": f"{s}.parquet", "rows": df.height}
                           for s, df in tables.items()}}  # fmt: skip
    return Source(manifest, frames, lo or 0, (hi or 0) + 1)


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
            rows = read_rows(unpack(path, scratch, progress))
        finally:
            progress.close()
        people = rows.filter(~pl.col("is_bot"))
        summary.rows, summary.bots = rows.height, rows.height - people.height
        progress.begin("convert", 1)
        progress.advance(0, people.height, summary.bytes_in)
        tables = build(people, site.id, site.hostname)
        del rows, people
        summary.tables = {stem: df.height for stem, df in tables.items()}
        if not any(summary.tables.values()):
            summary.seconds = time.monotonic() - began
            return summary
        source = stage(tables, scratch)
        del tables
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

"""Exporting a site's raw rows: `trail export` and `GET /api/v1/export` (docs/export.md).

An export is a directory (or, from the API, a zip of the same files) holding one file per table
in Parquet or CSV and a `manifest.json`:

    page_views.<fmt>        every page view of the range
    sessions.<fmt>          the final state of every session (one row per session)
    session_presence.<fmt>  earlier states kept only to count visitors per time bucket
    events.<fmt>            every event
    manifest.json           schema version, trail version, site, range, row counts, columns

The rows are read with the scans the statistics use (trail.stats.scan), one UTC day at a time, so
an export works while the server runs: deleted statistics (tombstones) stay out, and a day that
compaction rewrites meanwhile is read again (its files hold the same rows).

Session rows are stored as a collapsing log (trail.stats.metrics): each change of a session
writes a new state (+1) and cancels the previous one (-1), and compaction keeps a cancelled
state only as a "presence" row (sign 0), the earliest of each minute, because a cancelled state
still shows its visitor in that minute. The export collapses each day the way compaction does
(trail.tasks.compaction.collapse_sessions): `sessions` holds the live states (sign +1: what
trail.stats.sources.live_states selects), `session_presence` the presence rows (sign 0). Both
together are all a statistic reads, so an import (trail.importers.trail_export) gives the same
answer to every report; `sessions` alone is what an analysis of sessions wants.

An export is deterministic: the same stored rows give the same bytes (no creation time in the
manifest, fixed times in the zip), so two exports can be compared with a checksum.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
import tempfile
import time as clock
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from trail import __version__
from trail.stats.filters import FIRST_DAY, tomorrow_in
from trail.stats.scan import replanned, scan, stored_days
from trail.storage.schema import STRINGS, TABLES, TIME
from trail.tasks.compaction import collapse_sessions

FORMAT = "trail-export"
SCHEMA_VERSION = 1
FORMATS = ("parquet", "csv")
MANIFEST = "manifest.json"
# File stem -> the stored table its rows come from, in the order they are written.
FILES: dict[str, str] = {
    "page_views": "page_views",
    "sessions": "sessions",
    "session_presence": "sessions",
    "events": "events",
}
# Times in CSV files: RFC 3339 in UTC with milliseconds.
CSV_TIME = "%Y-%m-%dT%H:%M:%S%.3fZ"
PARQUET_ZSTD_LEVEL = 3
# The largest zip GET /api/v1/export builds in memory; larger exports answer 413.
MAX_API_BYTES = int(os.environ.get("TRAIL_EXPORT_MAX_BYTES", str(100 << 20)))
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DOS_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip member can have
_TYPE_NAMES: dict[Any, str] = {
    pl.String(): "string",
    pl.Boolean(): "bool",
    pl.Int8(): "i8",
    pl.UInt32(): "u32",
    pl.UInt64(): "u64",
    TIME: "timestamp",
    STRINGS: "list<string>",
}


class ExportError(Exception):
    """Bad input or a state that stops an export; `field` names the input at fault
    (`site`, `from`, `to`, `format`, `out`), "" when none is."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class TooLarge(ExportError):
    """The export grew past the byte limit it was given."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            "",
            f"the export is larger than the limit of {limit} bytes ({limit / 2**20:.0f} MiB): "
            "choose a shorter range, or run `trail export` on the server",
        )
        self.limit = limit


# -- the schema ---------------------------------------------------------------------------------


def schema_of(stem: str) -> dict[str, pl.DataType]:
    """The columns of an export file: those of the stored table, in its order."""
    return TABLES[FILES[stem]]


def type_name(dtype: pl.DataType) -> str:
    return _TYPE_NAMES[dtype]


def columns_of(stem: str) -> list[dict[str, str]]:
    return [{"name": c, "type": type_name(t)} for c, t in schema_of(stem).items()]


def file_name(stem: str, fmt: str) -> str:
    return f"{stem}.{fmt}"


def csv_schema(stem: str) -> dict[str, pl.DataType]:
    """How a CSV file's columns read before conversion: times and lists are text."""
    return {c: pl.String() if t in (TIME, STRINGS) else t for c, t in schema_of(stem).items()}


def to_csv_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Times as RFC 3339 UTC text, lists as JSON arrays (`["a","b"]`); the rest as it is."""
    exprs = []
    for name, dtype in df.schema.items():
        if dtype == TIME:
            exprs.append(pl.col(name).dt.to_string(CSV_TIME))
        elif dtype == STRINGS:
            encoded = pl.struct(pl.col(name).alias("v")).struct.json_encode()
            exprs.append(encoded.str.strip_prefix('{"v":').str.strip_suffix("}").alias(name))
        else:
            exprs.append(pl.col(name))
    return df.select(exprs)


def from_csv_frame(lf: pl.LazyFrame, stem: str) -> pl.LazyFrame:
    """The inverse of to_csv_frame, to the stored types."""
    exprs = []
    for name, dtype in schema_of(stem).items():
        if dtype == TIME:
            parsed = pl.col(name).str.strptime(pl.Datetime("ms"), CSV_TIME, strict=True)
            exprs.append(parsed.dt.replace_time_zone("UTC").alias(name))
        elif dtype == STRINGS:
            exprs.append(pl.col(name).str.json_decode(STRINGS).alias(name))
        else:
            exprs.append(pl.col(name).cast(dtype, strict=True))
    return lf.select(exprs)


# -- the range ----------------------------------------------------------------------------------


def parse_date(name: str, value: str | None) -> date:
    if value is None or not value.strip():
        raise ExportError(name, "required, YYYY-MM-DD")
    text = value.strip()
    try:
        if _DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ExportError(name, "invalid date, expected YYYY-MM-DD")


def window(first: date, last: date, tz_name: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the local dates first..last in the site's time zone (as the
    statistics read them); dates are moved into [1970-01-01, tomorrow] like theirs."""
    if first > last:
        raise ExportError("from", "must not be after to")
    tz = _zone(tz_name)
    tomorrow = tomorrow_in(tz)
    first = min(max(first, FIRST_DAY), tomorrow)
    last = min(max(last, FIRST_DAY), tomorrow)
    start = datetime.combine(first, time(0), tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tz).astimezone(UTC)
    return start, end


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except Exception:  # noqa: BLE001  a bad stored zone must not stop an export
        return ZoneInfo("UTC")


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- progress -----------------------------------------------------------------------------------


class Progress:
    """One line on stderr, redrawn at most 10 times a second, when stderr is a terminal."""

    def __init__(self, verb: str, steps: int, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.verb = verb
        self.steps = max(steps, 1)
        self.done = 0
        self.rows = 0
        self.bytes = 0
        self.started = clock.monotonic()
        self._drawn = 0.0

    def step(self, label: str, rows: int = 0, size: int = 0) -> None:
        self.done += 1
        self.rows += rows
        self.bytes = max(self.bytes, size)
        self.draw(label)

    def draw(self, label: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = clock.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        width = 24
        filled = int(width * min(self.done, self.steps) / self.steps)
        bar = "#" * filled + "." * (width - filled)
        line = (
            f"\r{self.verb} [{bar}] {label:<16.16} {self.rows:>12,} rows "
            f"{self.bytes / 1e6:>9.1f} MB {now - self.started:>6.1f} s"
        )
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# -- writing files ------------------------------------------------------------------------------


class _Sink:
    """One export file, written under a temp name and renamed into place by `finish`."""

    def __init__(self, path: Path, fmt: str, stem: str) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.fmt = fmt
        self.rows = 0
        empty = pl.DataFrame(schema=schema_of(stem))
        self._parquet: pq.ParquetWriter | None = None
        self._csv: IO[bytes] | None = None
        if fmt == "parquet":
            # Dictionaries for text only: identifiers and times are close to unique, and trying
            # a dictionary on them cost a third of the write time for larger files. Statistics
            # (min/max per row group) for the columns a reader prunes by.
            text = [c for c, t in schema_of(stem).items() if t in (pl.String(), STRINGS)]
            self._parquet = pq.ParquetWriter(
                self.tmp,
                empty.to_arrow().schema,
                compression="zstd",
                compression_level=PARQUET_ZSTD_LEVEL,
                use_dictionary=text,
                write_statistics=[c for c in schema_of(stem) if c not in text],
            )
        else:
            self._csv = open(self.tmp, "wb")  # noqa: SIM115  closed by finish/abort
            to_csv_frame(empty).write_csv(self._csv, include_header=True)

    def write(self, df: pl.DataFrame) -> None:
        if df.is_empty():
            return
        self.rows += df.height
        if self._parquet is not None:
            table: pa.Table = df.to_arrow()
            self._parquet.write_table(table)
        elif self._csv is not None:
            to_csv_frame(df).write_csv(self._csv, include_header=False)

    def size(self) -> int:
        if self._csv is not None:
            self._csv.flush()
        try:
            return self.tmp.stat().st_size
        except FileNotFoundError:
            return 0

    def finish(self) -> int:
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()
        os.replace(self.tmp, self.path)
        return self.path.stat().st_size

    def abort(self) -> None:
        try:
            if self._parquet is not None:
                self._parquet.close()
            if self._csv is not None:
                self._csv.close()
        finally:
            self.tmp.unlink(missing_ok=True)


@dataclass
class SiteInfo:
    """What the manifest says about the site (trail.storage.models.Site's fields)."""

    id: str
    hostname: str = ""
    timezone: str = "UTC"
    subdomain: str = ""

    @classmethod
    def of(cls, site: Any) -> SiteInfo:
        return cls(site.id, site.hostname, site.timezone or "UTC", site.subdomain)


@dataclass
class Result:
    manifest: dict[str, Any]
    seconds: float
    files: list[Path] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(int(t["rows"]) for t in self.manifest["tables"].values())

    @property
    def bytes(self) -> int:
        return sum(int(t["bytes"]) for t in self.manifest["tables"].values())


def export(
    data_dir: Path | str,
    site: SiteInfo,
    first: date,
    last: date,
    fmt: str,
    out_dir: Path,
    *,
    force: bool = False,
    max_bytes: int | None = None,
    progress: Progress | None = None,
) -> Result:
    """Write the export of `site`'s rows of the local dates first..last into `out_dir`."""
    if fmt not in FORMATS:
        raise ExportError("format", "parquet or csv")
    start, end = window(first, last, site.timezone)
    _prepare(out_dir, force)
    began = clock.monotonic()
    data_dir = Path(data_dir)
    days = {
        t: stored_days(data_dir, t, site.id, start, end)
        for t in ("page_views", "sessions", "events")
    }
    if progress is None:
        progress = Progress("export", 0, io.StringIO())
    progress.steps = max(sum(len(d) for d in days.values()), 1)
    sinks = {stem: _Sink(out_dir / file_name(stem, fmt), fmt, stem) for stem in FILES}
    try:
        for table in ("page_views", "sessions", "events"):
            for day in days[table]:
                frames = _day_rows(data_dir, table, site.id, day, start, end)
                for stem, df in frames.items():
                    sinks[stem].write(df)
                size = sum(s.size() for s in sinks.values())
                if max_bytes is not None and size > max_bytes:
                    raise TooLarge(max_bytes)
                progress.step(f"{table} {day}", sum(f.height for f in frames.values()), size)
        sizes = {stem: sink.finish() for stem, sink in sinks.items()}
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    finally:
        progress.close()
    manifest = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "trail_version": __version__,
        "site": {
            "id": site.id,
            "hostname": site.hostname,
            "subdomain": site.subdomain,
            "timezone": site.timezone,
        },
        "range": {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "timezone": site.timezone,
            "start": iso(start),
            "end": iso(end),
        },
        "file_format": fmt,
        "tables": {
            stem: {
                "file": file_name(stem, fmt),
                "rows": sinks[stem].rows,
                "bytes": sizes[stem],
                "columns": columns_of(stem),
            }
            for stem in FILES
        },
    }
    path = out_dir / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    os.replace(tmp, path)
    files = [out_dir / file_name(stem, fmt) for stem in FILES] + [path]
    return Result(manifest, clock.monotonic() - began, files)


def _prepare(out_dir: Path, force: bool) -> None:
    """An empty (or new) directory; with `force`, an existing one loses earlier export files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError("out", f"{out_dir} is not a directory")
    if out_dir.is_dir():
        names = os.listdir(out_dir)
        if names and not force:
            raise ExportError("out", f"{out_dir} is not empty (use --force to write into it)")
        known = {MANIFEST} | {file_name(s, f) for s in FILES for f in FORMATS}
        for name in names:
            if name in known:
                (out_dir / name).unlink()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError("out", f"cannot create {out_dir}: {e.strerror or e}") from None


def _day_rows(
    data_dir: Path, table: str, site_id: str, day: date, start: datetime, end: datetime
) -> dict[str, pl.DataFrame]:
    """The export rows of one stored table and UTC day, per file stem."""
    lo = datetime.combine(day, time(0), UTC)
    hi = lo + timedelta(days=1)
    lo, hi = max(lo, start), min(hi, end)
    df = replanned(lambda: scan(data_dir, table, site_id, lo, hi).collect())
    if table != "sessions":
        return {table: df}
    # A state and the row that cancels it share their time, so they are in the same day. A day
    # without cancel rows is collapsed already (compacted, or only states that were never
    # cancelled): its +1 rows are the live states, its 0 rows the presence rows.
    cancels = df.select((pl.col("sign") < 0).any()).item()
    collapsed = collapse_sessions(df) if cancels else df
    order = ["visitor_id", "session_id", "version"]
    return {
        "sessions": collapsed.filter(pl.col("sign") > 0).sort(order, maintain_order=True),
        "session_presence": collapsed.filter(pl.col("sign") == 0).sort(order, maintain_order=True),
    }


# -- the zip of the API -------------------------------------------------------------------------


def export_zip(
    data_dir: Path | str,
    site: SiteInfo,
    first: date,
    last: date,
    fmt: str,
    max_bytes: int = MAX_API_BYTES,
) -> tuple[bytes, Result]:
    """The export as one zip (the files at its root), at most `max_bytes` long (TooLarge)."""
    with tempfile.TemporaryDirectory(prefix="trail-export-") as tmp:
        out = Path(tmp) / "export"
        result = export(data_dir, site, first, last, fmt, out, max_bytes=max_bytes)
        buf = io.BytesIO()
        # Member times are the last day of the range, not the clock: the same rows make the
        # same bytes (an export is deterministic, see the module doc).
        stamp = (last.year, last.month, last.day, 0, 0, 0) if last.year >= 1980 else _DOS_EPOCH
        with zipfile.ZipFile(buf, "w") as z:
            for path in result.files:
                # Parquet files are compressed already; CSV and the manifest shrink a lot.
                member = zipfile.ZipInfo(path.name, date_time=stamp)
                member.external_attr = 0o644 << 16
                stored = fmt == "parquet" and path.name != MANIFEST
                member.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                big = path.stat().st_size >= 1 << 31
                with open(path, "rb") as src, z.open(member, "w", force_zip64=big) as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                if buf.tell() > max_bytes:
                    raise TooLarge(max_bytes)
        data = buf.getvalue()
    if len(data) > max_bytes:
        raise TooLarge(max_bytes)
    return data, result


def zip_name(site: SiteInfo, first: date, last: date) -> str:
    host = re.sub(r"[^A-Za-z0-9._-]", "_", site.hostname or site.id) or "site"
    return f"trail-export-{host}-{first.isoformat()}-{last.isoformat()}.zip"


# -- the command --------------------------------------------------------------------------------


def find_site(meta: Any, ref: str) -> Any:
    """The site `ref` names: its id, or a hostname only one site has."""
    site = meta.get_site(ref)
    if site is not None:
        return site
    named = [s for s in meta.all_sites() if s.hostname.lower() == ref.strip().lower()]
    if len(named) == 1:
        return named[0]
    if named:
        raise ExportError("site", f"{len(named)} sites have the hostname {ref}: give the id")
    raise ExportError("site", f"unknown site {ref}")


def lookup_site(config: Any, ref: str) -> Any:
    """find_site in the meta store of the config's data directory (opened and closed here)."""
    meta = open_meta(config)
    try:
        return find_site(meta, ref)
    finally:
        meta.close()


def open_meta(config: Any) -> Any:
    """The meta store of an existing data directory (never creates one)."""
    from trail.storage import meta_backend
    from trail.storage.meta import MetaStore

    path = Path(config.data_dir) / "meta"
    if not meta_backend.exists(path):
        raise ExportError("data-dir", f"{config.data_dir} holds no trail data (no meta store)")
    return MetaStore.open(path)


def cli_error(command: str, e: ExportError) -> int:
    where = f"--{e.field}: " if e.field else ""
    print(f"trail: {command}: {where}{e.problem}", file=sys.stderr)
    return 2 if e.field in ("from", "to") else 1


def summary_lines(result: Result, out: Path) -> Iterator[str]:
    m = result.manifest
    r = m["range"]
    yield (
        f"exported {m['site']['hostname'] or m['site']['id']} ({m['site']['id']}) "
        f"{r['from']}..{r['to']} ({r['timezone']}) to {out}"
    )
    for t in m["tables"].values():
        yield f"  {t['file']:<24} {t['rows']:>12,} rows {t['bytes'] / 1e6:>10.1f} MB"
    seconds = max(result.seconds, 1e-9)
    yield (
        f"  {result.rows:,} rows, {result.bytes / 1e6:.1f} MB in {result.seconds:.1f} s "
        f"({result.rows / seconds:,.0f} rows/s, {result.bytes / 1e6 / seconds:.1f} MB/s)"
    )


def cmd_export(args: argparse.Namespace) -> int:
    from trail.config import load

    config = load(args.config, flags={"data_dir": args.data_dir}, create_data_dir=False)
    out = Path(args.out)
    try:
        first = parse_date("from", args.from_date)
        last = parse_date("to", args.to_date)
        if first > last:
            raise ExportError("from", "must not be after --to")
        site = SiteInfo.of(lookup_site(config, args.site))
        if args.format == "plausible":
            from trail import export_plausible

            return export_plausible.cmd_plausible(args, config, site, first, last)
        progress = Progress("export", 0)
        result = export(
            config.data_dir, site, first, last, args.format, out,
            force=args.force, progress=progress,
        )  # fmt: skip
    except ExportError as e:
        return cli_error("export", e)
    if args.json:
        print(orjson.dumps({**result.manifest, "seconds": round(result.seconds, 3)}).decode())
    else:
        for line in summary_lines(result, out):
            print(line)
    return 0

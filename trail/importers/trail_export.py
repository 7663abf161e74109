"""`trail import trail`: an export of trail (trail.export, docs/export.md) into a site.

The rows come back as they were: the same visitor and session ids, times and every column, so
every report of the target site over the export's range answers exactly what the source site
answered. They are written through the storage layer, not the hit API (which would compute new
visitor ids): per (table, UTC day) directory, under the lock compaction takes, the day's files are
merged with the imported rows into one new compacted part with its rollups, and the manifest is
renamed into place (the steps of trail.tasks.compaction `compact_dir`). Readers see the day
before or after, never half of it, and the server may run meanwhile.

Idempotent: in each day directory, every stored row of a session (visitor_id, session_id) that
the import brings for that day is replaced by the imported rows. Importing the same export twice,
or an overlapping later export, leaves each session once; importing a site's export into the
site itself changes nothing it reports. Rows of other sessions are kept. An interrupted import
leaves whole days done and others untouched; running it again finishes it.

Refused before anything is written: a file that does not match its manifest (schema version,
columns, row counts, times outside the range), and rows that deleted statistics of the target
site (trail.storage.tombstones) would hide. A day whose segments a worker is still sealing and
that hold rows of imported sessions is retried for a while, then refused (run the import again).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from trail.export import (
    FILES,
    FORMAT,
    FORMATS,
    MANIFEST,
    SCHEMA_VERSION,
    ExportError,
    Progress,
    cli_error,
    columns_of,
    csv_schema,
    file_name,
    from_csv_frame,
    lookup_site,
    schema_of,
)
from trail.storage import layout, rollups, tombstones
from trail.storage.daydir import Manifest, locked, visible_files
from trail.storage.schema import TABLES
from trail.tasks import compaction
from trail.tasks.compaction import ROLLUPS

KEYS = ["visitor_id", "session_id"]
DAY_MS = layout.DAY_MS
# Stored tables in the order they are written: a day's page rollup reads the sessions rollup of
# that day and the page views part of the day before (trail.storage.page_rollups).
TABLE_ORDER = ("sessions", "page_views", "events")
# How long a day whose segments are still being sealed is retried.
BUSY_WAIT_S = float(os.environ.get("TRAIL_IMPORT_BUSY_WAIT_S", "30"))
# The expected sign of each file's session rows.
SIGNS = {"sessions": 1, "session_presence": 0}


class ImportProblem(ExportError):
    """An export that cannot be imported, or a target that cannot take it."""

    def __init__(self, problem: str, field: str = "") -> None:
        super().__init__(field, problem)


# -- reading an export --------------------------------------------------------------------------


@dataclass
class Source:
    """An export opened for reading: its manifest and one lazy frame per file."""

    manifest: dict[str, Any]
    frames: dict[str, pl.LazyFrame]
    start_ms: int
    end_ms: int

    @property
    def site(self) -> dict[str, Any]:
        return dict(self.manifest.get("site") or {})


def open_export(path: Path, scratch: Path) -> Source:
    """Read and check an export directory or zip (files extracted into `scratch`; CSV files
    are converted there to Parquet once, so each day reads only its rows)."""
    scratch.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        base = path
    elif path.is_file() and zipfile.is_zipfile(path):
        base = scratch / "unzipped"
        _unzip(path, base)
    elif not path.exists():
        raise ImportProblem(f"{path} does not exist", "source")
    else:
        raise ImportProblem(f"{path} is neither an export directory nor a zip file", "source")
    manifest = _manifest(base)
    fmt = manifest["file_format"]
    start_ms, end_ms = _range_ms(manifest)
    frames = {}
    for stem in FILES:
        entry = manifest["tables"][stem]
        name = str(entry.get("file", file_name(stem, fmt)))
        if name != file_name(stem, fmt):
            raise ImportProblem(f"manifest.json: tables.{stem}.file must be {file_name(stem, fmt)}")
        if [dict(c) for c in entry.get("columns", [])] != columns_of(stem):
            raise ImportProblem(f"{name}: its columns are not those of schema version 1")
        file = base / name
        if not file.is_file():
            raise ImportProblem(f"{name} is missing from {path}")
        frames[stem] = _frame(file, stem, fmt, scratch)
    return Source(manifest, frames, start_ms, end_ms)


def _unzip(path: Path, into: Path) -> None:
    """Only the export's own names, from the zip's root (no other member is ever written)."""
    allowed = {MANIFEST} | {file_name(s, f) for s in FILES for f in FORMATS}
    into.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(path) as z:
            for member in z.infolist():
                if member.filename in allowed and not member.is_dir():
                    with z.open(member) as src, open(into / member.filename, "wb") as dst:
                        while chunk := src.read(1 << 20):
                            dst.write(chunk)
    except (zipfile.BadZipFile, OSError) as e:
        raise ImportProblem(f"{path}: cannot read the zip ({e})", "source") from None


def _manifest(base: Path) -> dict[str, Any]:
    try:
        raw = orjson.loads((base / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise ImportProblem(f"no {MANIFEST} in {base}: not a trail export", "source") from None
    except orjson.JSONDecodeError as e:
        raise ImportProblem(f"{MANIFEST}: not JSON ({e})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ImportProblem(f'{MANIFEST}: "format" is not "{FORMAT}": not a trail export')
    version = raw.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise ImportProblem(f"{MANIFEST}: no valid schema_version")
    if version > SCHEMA_VERSION:
        raise ImportProblem(
            f"the export has schema version {version}, written by a newer trail "
            f"({raw.get('trail_version')}); this trail reads version {SCHEMA_VERSION}"
        )
    if raw.get("file_format") not in FORMATS:
        raise ImportProblem(f"{MANIFEST}: file_format must be parquet or csv")
    tables = raw.get("tables")
    if not isinstance(tables, dict) or any(not isinstance(tables.get(s), dict) for s in FILES):
        raise ImportProblem(f"{MANIFEST}: tables must describe {', '.join(FILES)}")
    return raw


def _range_ms(manifest: dict[str, Any]) -> tuple[int, int]:
    r = manifest.get("range") or {}
    try:
        start = datetime.fromisoformat(str(r["start"]))
        end = datetime.fromisoformat(str(r["end"]))
    except (KeyError, ValueError):
        raise ImportProblem(f"{MANIFEST}: range.start and range.end must be times") from None
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _frame(file: Path, stem: str, fmt: str, scratch: Path) -> pl.LazyFrame:
    schema = schema_of(stem)
    if fmt == "csv":
        with open(file, "rb") as f:
            header = f.readline().decode("utf-8", "replace").strip().split(",")
        if header != list(schema):
            raise ImportProblem(f"{file.name}: the header is not the columns of schema version 1")
        converted = scratch / f"{stem}.parquet"
        lf = from_csv_frame(pl.scan_csv(file, schema=csv_schema(stem)), stem)
        try:
            lf.sink_parquet(converted)
        except (pl.exceptions.PolarsError, OSError) as e:
            raise ImportProblem(f"{file.name}: cannot read it ({_short(e)})") from None
        file = converted
    try:
        names = pl.scan_parquet(file).collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as e:
        raise ImportProblem(f"{file.name}: cannot read it ({_short(e)})") from None
    missing = [c for c in schema if c not in names]
    if missing:
        raise ImportProblem(f"{file.name}: columns missing: {', '.join(missing)}")
    return pl.scan_parquet(file).select([pl.col(c).cast(t, strict=True) for c, t in schema.items()])


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


@dataclass
class Checked:
    """What checking the files found: rows per file and the UTC days of each stored table."""

    rows: dict[str, int]
    days: dict[str, list[date]]


def check(source: Source, data_dir: Path, site_id: str) -> Checked:
    """Every file against its manifest entry, and the rows against the target's deletions."""
    rows: dict[str, int] = {}
    days: dict[str, set[date]] = {t: set() for t in TABLE_ORDER}
    stones = tombstones.load(data_dir, site_id)
    t_ms = pl.col("time").cast(pl.Int64)
    for stem, lf in source.frames.items():
        name = source.manifest["tables"][stem].get("file", stem)
        table = FILES[stem]
        aggs = [
            pl.len().alias("n"),
            t_ms.min().alias("lo"),
            t_ms.max().alias("hi"),
            pl.any_horizontal(pl.col(KEYS + ["time"]).is_null()).sum().alias("nulls"),
        ]
        if stem in SIGNS:
            aggs.append((pl.col("sign") != SIGNS[stem]).sum().alias("bad_sign"))
        hidden = tombstones.keep_expr(
            tombstones.relevant(stones, table, source.start_ms, source.end_ms)
        )
        if hidden is not None:
            aggs.append((~hidden).sum().alias("hidden"))
        try:
            stats, day_numbers = pl.collect_all(
                [lf.select(aggs), lf.select((t_ms // DAY_MS).unique().alias("d"))]
            )
        except (pl.exceptions.PolarsError, OSError) as e:
            raise ImportProblem(f"{name}: cannot read it ({_short(e)})") from None
        s = stats.row(0, named=True)
        expected = source.manifest["tables"][stem].get("rows")
        if s["n"] != expected:
            raise ImportProblem(f"{name} holds {s['n']} rows, the manifest says {expected}")
        if s["nulls"]:
            raise ImportProblem(f"{name}: {s['nulls']} rows without visitor_id, session_id or time")
        if s["n"] and (s["lo"] < source.start_ms or s["hi"] >= source.end_ms):
            raise ImportProblem(f"{name}: rows outside the export's range")
        if s.get("bad_sign"):
            raise ImportProblem(f"{name}: {s['bad_sign']} rows whose sign is not {SIGNS[stem]}")
        if s.get("hidden"):
            raise ImportProblem(
                f"statistics of the target site were deleted over part of this range "
                f"(DELETE /api/v1/statistics): {s['hidden']} rows of {name} would stay hidden. "
                "Import into another site",
                "site",
            )
        rows[stem] = int(s["n"])
        days[table] |= {date(1970, 1, 1) + timedelta(days=int(d)) for d in day_numbers["d"]}
    return Checked(rows, {t: sorted(d) for t, d in days.items()})


# -- writing a day ------------------------------------------------------------------------------


@dataclass
class DayResult:
    rows_in: int = 0  # imported rows
    replaced: int = 0  # stored rows of the imported sessions, dropped
    kept: int = 0  # other stored rows of the day
    rows_out: int = 0
    bytes_out: int = 0


class Busy(Exception):
    """Segments of the day still belong to a worker's live WAL and hold imported sessions."""


def write_day(data_dir: Path, table: str, site_id: str, day: date, rows: pl.DataFrame) -> DayResult:
    """Merge `rows` (of one UTC day) into the site's day directory of `table`, as compaction
    merges segments: one new part with its rollup, the replaced files named in the manifest."""
    day_dir = layout.day_dir(data_dir, table, site_id, day)
    day_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        try:
            with locked(day_dir):
                return _merge(data_dir, table, site_id, day, day_dir, rows)
        except Busy:
            if time.monotonic() > deadline:
                raise ImportProblem(
                    f"{table} of {day}: a worker is still sealing segments with rows of imported "
                    "sessions; run the import again in a minute"
                ) from None
            time.sleep(0.5)


def _merge(
    data_dir: Path, table: str, site_id: str, day: date, day_dir: Path, rows: pl.DataFrame
) -> DayResult:
    now = time.time()
    result = DayResult(rows_in=rows.height)
    manifest = Manifest.read(day_dir)
    compaction._purge(day_dir, manifest, now, compaction.DEFAULT_GRACE)
    names = os.listdir(day_dir)
    pending = compaction.pending_generations(data_dir)  # listed after the directory
    compaction._remove_orphans(day_dir, names, manifest)
    arrow, parquet = visible_files(names, manifest)
    ready = [n for n in arrow if not compaction._is_pending(n, pending)]
    keys = rows.select(KEYS).unique()
    sealing = [n for n in arrow if n not in ready]
    if sealing:
        held = pl.concat([pl.scan_ipc(day_dir / n).select(KEYS) for n in sealing])
        if not held.join(keys.lazy(), on=KEYS, how="semi").head(1).collect().is_empty():
            raise Busy()
    stones = compaction._stones_for(data_dir, site_id, table, day)
    newest_stone = max((s.deleted_at_ms for s in stones), default=0)
    stored = compaction._read(day_dir, table, ready, parquet)
    kept = stored.join(keys, on=KEYS, how="anti")
    result.replaced, result.kept = stored.height - kept.height, kept.height
    schema = TABLES[table]
    df = pl.concat([kept, rows.select([pl.col(c).cast(t) for c, t in schema.items()])])
    df, _ = compaction.day_rows(df, table, day, stones)
    name = layout.part_name(compaction._next_part(names))
    result.bytes_out = compaction._write_parquet(df, day_dir / name)
    result.rows_out = df.height
    kind = ROLLUPS.get(table)
    rollup = kind.build(df, day_dir, day, name) if kind is not None else {}
    inputs = parquet + ready
    for old in rollups.files_of(manifest.rollup):
        manifest.replaced[old] = {"by": name, "at": now}
    manifest.rollup = rollup
    for entry in manifest.replaced.values():
        if entry.get("by") in inputs:
            entry["by"] = name
    for n in inputs:
        manifest.replaced[n] = {"by": name, "at": now}
    manifest.live = [name]
    manifest.tombstones_at = max(manifest.tombstones_at, newest_stone)
    manifest.day_only = True
    manifest.write(day_dir)
    return result


def refresh_page_rollups(data_dir: Path, site_id: str, first: date, last: date) -> int:
    """Rebuild the page rollups of the site's compacted page_views days first..last whose
    inputs changed (a day's sessions part, the part of the day before); the maintenance round
    would, later. Returns how many were rebuilt."""
    rebuilt = 0
    for day in layout.site_days(data_dir, "page_views", site_id):
        if not first <= day <= last:
            continue
        day_dir = layout.day_dir(data_dir, "page_views", site_id, day)
        with locked(day_dir):
            manifest = Manifest.read(day_dir)
            arrow, parquet = visible_files(os.listdir(day_dir), manifest)
            if arrow or len(parquet) != 1:
                continue
            if compaction._rollup_stale("page_views", day_dir, manifest, parquet[0]):
                compaction._add_rollup("page_views", day_dir, day, parquet[0], manifest)
                rebuilt += 1
    return rebuilt


# -- the import ---------------------------------------------------------------------------------


@dataclass
class Summary:
    source_site: dict[str, Any]
    site_id: str
    range: dict[str, Any]
    rows: dict[str, int] = field(default_factory=dict)
    days: int = 0
    replaced_rows: int = 0
    kept_rows: int = 0
    bytes_out: int = 0
    rollups_rebuilt: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_site": self.source_site,
            "site_id": self.site_id,
            "range": self.range,
            "rows": self.rows,
            "days_written": self.days,
            "replaced_rows": self.replaced_rows,
            "kept_rows": self.kept_rows,
            "bytes_written": self.bytes_out,
            "rollups_rebuilt": self.rollups_rebuilt,
            "seconds": round(self.seconds, 3),
        }


def import_export(
    data_dir: Path | str, site_id: str, path: Path, progress: Progress | None = None
) -> Summary:
    """Import the export at `path` (a directory or zip) into the site `site_id`."""
    began = time.monotonic()
    data_dir = Path(data_dir)
    with tempfile.TemporaryDirectory(prefix="trail-import-") as tmp:
        source = open_export(Path(path), Path(tmp))
        checked = check(source, data_dir, site_id)
        summary = Summary(source.site, site_id, dict(source.manifest.get("range") or {}))
        summary.rows = checked.rows
        written = write_tables(data_dir, site_id, source.frames, checked.days, progress)
    summary.days = written.days
    summary.replaced_rows = written.replaced
    summary.kept_rows = written.kept
    summary.bytes_out = written.bytes_out
    summary.rollups_rebuilt = written.rollups_rebuilt
    summary.seconds = time.monotonic() - began
    return summary


@dataclass
class Written:
    """What write_tables did."""

    days: int = 0  # day directories written
    replaced: int = 0
    kept: int = 0
    bytes_out: int = 0
    rollups_rebuilt: int = 0


def write_tables(
    data_dir: Path,
    site_id: str,
    frames: dict[str, pl.LazyFrame],
    days: dict[str, list[date]],
    progress: Progress | None = None,
) -> Written:
    """Write checked rows (export file stem -> rows with the stored columns; `days`: the UTC
    days of each stored table, as `check` finds them) into the site, day by day, replacing the
    stored rows of the sessions they bring; then refresh the page rollups they touched. Also
    the writing half of the importers of other tools' data (trail.importers)."""
    written = Written()
    if progress is None:
        progress = Progress("import", 0, io.StringIO())
    progress.steps = max(sum(len(d) for d in days.values()), 1)
    t_ms = pl.col("time").cast(pl.Int64)
    try:
        for table in TABLE_ORDER:
            stems = [s for s in FILES if FILES[s] == table and s in frames]
            for day in days.get(table, []):
                lo, hi = layout.day_span_ms(day)
                parts = [frames[s].filter((t_ms >= lo) & (t_ms < hi)) for s in stems]
                rows = pl.concat(pl.collect_all(parts))
                done = write_day(data_dir, table, site_id, day, rows)
                written.days += 1
                written.replaced += done.replaced
                written.kept += done.kept
                written.bytes_out += done.bytes_out
                progress.step(f"{table} {day}", done.rows_in, written.bytes_out)
    finally:
        progress.close()
    every = [d for table_days in days.values() for d in table_days]
    if every:
        written.rollups_rebuilt = refresh_page_rollups(
            data_dir, site_id, min(every), max(every) + timedelta(days=1)
        )
    return written


# -- the command --------------------------------------------------------------------------------


def cmd_import(args: argparse.Namespace) -> int:
    from trail.config import load

    config = load(args.config, flags={"data_dir": args.data_dir}, create_data_dir=False)
    try:
        site = lookup_site(config, args.site)
        summary = import_export(config.data_dir, site.id, Path(args.source), Progress("import", 0))
    except ExportError as e:
        return cli_error("import", e)
    source_tz = summary.source_site.get("timezone") or "UTC"
    if source_tz != (site.timezone or "UTC"):
        print(
            f"trail: import: note: the export's site used the time zone {source_tz}, this site "
            f"uses {site.timezone}: reports group the same rows by other local days",
            file=sys.stderr,
        )
    if args.json:
        print(orjson.dumps(summary.as_dict()).decode())
        return 0
    r = summary.range
    src = summary.source_site
    print(
        f"imported {src.get('hostname') or src.get('id')} {r.get('from')}..{r.get('to')} "
        f"into {site.hostname} ({site.id})"
    )
    for stem, n in summary.rows.items():
        print(f"  {stem:<18} {n:>12,} rows")
    print(
        f"  {summary.days} day directories written, {summary.replaced_rows:,} stored rows of "
        f"the imported sessions replaced, {summary.kept_rows:,} other rows kept, "
        f"{summary.bytes_out / 1e6:.1f} MB in {summary.seconds:.1f} s"
    )
    return 0

"""Compaction: merge a closed UTC day's segments into one zstd Parquet file per day directory.

For every (table, site, day) directory whose UTC day closed more than `delay` seconds ago, the
`*.arrow` segments (and an earlier `part-<n>.parquet`, when late rows arrived after a first round)
are merged into `part-<n+1>.parquet`: written to a temp name, fsynced, renamed; then the manifest
`compacted.json` is renamed into place naming the files it replaces (see trail.storage.daydir for
the rules readers follow). Replaced files are deleted after `grace` seconds, so a query that
listed them keeps working.

Session rows are collapsed (reference section 1): per state (visitor_id, session_id, version) the
+1 and -1 rows cancel, and each live state keeps its one +1 row. Cancelled states still decide
which visitors a time window or time bucket sees (a visitor is any visitor_id with a row of sign
>= 0 in the window, see trail.stats.metrics), so of the cancelled states of a session only the
earliest one of each UTC minute is kept, and only when no live state of that minute is earlier.
It is kept as one "presence" row with sign 0 instead of its +1/-1 pair: it adds nothing to any
sum and still counts its visitor (this halves those rows; ~18 % fewer session bytes). Every
window the query layer uses starts on a minute, so each statistic reads the same before and
after. Sums over `sign` (sessions, views, bounces, durations) are unchanged by construction; a -1
whose +1 has not arrived yet is kept as it is, and a presence row read back from an earlier part
is a state with net 0 like any cancelled pair.

Rows deleted through tombstones (trail.storage.tombstones) are dropped while merging.

Segments whose write-ahead log file still exists are left alone: the WAL sealer may rewrite them
on replay, which would duplicate rows already merged. They are merged by a later round.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from trail.storage import page_rollups, rollups, tombstones
from trail.storage.daydir import MANIFEST, Manifest, fsync_dir, locked, visible_files
from trail.storage.schema import TABLES

log = logging.getLogger("trail.compaction")

DAY_MS = 86_400_000
# Seconds after a UTC midnight before the closed day is compacted: the session timeout (a cancel
# row of a state stamped 23:59 can be written until 00:29) plus the seal interval and a margin.
# Rows that arrive even later are merged by the next round.
DEFAULT_DELAY = float(os.environ.get("TRAIL_COMPACTION_DELAY_S", "2400"))
DEFAULT_GRACE = float(os.environ.get("TRAIL_COMPACTION_GRACE_S", "60"))
DEFAULT_INTERVAL = float(os.environ.get("TRAIL_COMPACTION_INTERVAL_S", "60"))
# zstd 15 with 128Ki-row groups: ~7 % fewer bytes than zstd 10 with Polars' default groups, for
# ~3x the compaction CPU (~10 s per 330k page views), paid once per closed day in the background.
ZSTD_LEVEL = 15
ROW_GROUP_ROWS = 131_072

_DAY_DIR = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")
_PART = re.compile(r"^part-(\d+)\.parquet$")
_WAL = re.compile(r"^worker-(\d+)-(\d+)\.wal$")
_SEGMENT_GEN = re.compile(r"^(w\d+-g\d+-)")

# Sort keys per table: rows of one session together make the session-level columns long runs
# (dictionary + RLE in Parquet), and time-ordered within a session.
SORT_KEYS: dict[str, list[str]] = {
    "sessions": ["visitor_id", "session_id", "version", "sign"],
    "page_views": ["visitor_id", "session_id", "time"],
    "events": ["visitor_id", "session_id", "time"],
    "requests": ["time"],
}


@dataclass
class DirResult:
    table: str
    site: str
    day: str
    action: str  # "compacted", "rolled_up" (rollup added to a compacted file), "skipped", "clean"
    files_in: int = 0
    rows_in: int = 0
    rows_out: int = 0
    bytes_out: int = 0
    deferred: int = 0  # arrow files left for a later round (their WAL still exists)
    purged: int = 0


@dataclass
class Summary:
    dirs: list[DirResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        done = [d for d in self.dirs if d.action == "compacted"]
        return {
            "compacted_dirs": len(done),
            "files_replaced": sum(d.files_in for d in done),
            "rows_in": sum(d.rows_in for d in done),
            "rows_out": sum(d.rows_out for d in done),
            "bytes_out": sum(d.bytes_out for d in done),
            "deferred_files": sum(d.deferred for d in self.dirs),
            "purged_files": sum(d.purged for d in self.dirs),
        }


# -- entry points -----------------------------------------------------------------------------


def compact_day(
    data_dir: Path | str,
    day: date,
    *,
    now: float | None = None,
    delay: float = DEFAULT_DELAY,
    grace: float = DEFAULT_GRACE,
    force: bool = False,
) -> dict[str, Any]:
    """Compact every table and site of one UTC day; returns counts (see Summary.as_dict).

    Without `force`, a day that has not closed `delay` seconds ago is left alone (reason given).
    """
    now = time.time() if now is None else now
    if not force and not day_closed(day, now, delay):
        return {"date": day.isoformat(), "skipped": "day not closed yet", **Summary().as_dict()}
    summary = Summary()
    for table, site, day_dir in _day_dirs(Path(data_dir), only_day=day):
        summary.dirs.append(compact_dir(Path(data_dir), table, site, day_dir, now=now, grace=grace))
    return {"date": day.isoformat(), **summary.as_dict()}


def run_round(
    data_dir: Path | str,
    *,
    now: float | None = None,
    delay: float = DEFAULT_DELAY,
    grace: float = DEFAULT_GRACE,
) -> Summary:
    """One maintenance round over every closed day directory."""
    now = time.time() if now is None else now
    summary = Summary()
    for table, site, day_dir in _day_dirs(Path(data_dir)):
        day = _day_of(day_dir)
        if day is None or not day_closed(day, now, delay):
            continue
        if not _needs_work(Path(data_dir), site, table, day_dir, now, grace):
            continue
        summary.dirs.append(compact_dir(Path(data_dir), table, site, day_dir, now=now, grace=grace))
    return summary


def maintenance_task(state: Any) -> None:
    """The maintenance Task body (trail.tasks.maintenance)."""
    summary = run_round(Path(state.config.data_dir)).as_dict()
    if summary["compacted_dirs"] or summary["purged_files"]:
        log.info("compaction: %s", summary)


def day_closed(day: date, now: float, delay: float) -> bool:
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    return now >= end + delay


# -- one directory ----------------------------------------------------------------------------


def compact_dir(
    data_dir: Path, table: str, site: str, day_dir: Path, *, now: float, grace: float
) -> DirResult:
    result = DirResult(table, site, day_dir.name.removeprefix("day="), "clean")
    with locked(day_dir):
        manifest = Manifest.read(day_dir)
        result.purged = _purge(day_dir, manifest, now, grace)
        names = os.listdir(day_dir)
        pending = pending_generations(data_dir)  # listed after the directory, see module doc
        _remove_orphans(day_dir, names, manifest)
        arrow, parquet = visible_files(names, manifest)
        ready = [n for n in arrow if not _is_pending(n, pending)]
        result.deferred = len(arrow) - len(ready)
        stones = _stones_for(data_dir, site, table, day_dir)
        newest_stone = max((s.deleted_at_ms for s in stones), default=0)
        stale_stones = newest_stone > manifest.tombstones_at
        if not ready and not (parquet and (len(parquet) > 1 or stale_stones)):
            if (
                len(parquet) == 1
                and not arrow
                and _rollup_stale(table, day_dir, manifest, parquet[0])
            ):
                _add_rollup(table, day_dir, parquet[0], manifest)
                result.action = "rolled_up"
            return result
        inputs = parquet + ready
        df = _read(day_dir, table, ready, parquet)
        result.files_in, result.rows_in = len(inputs), df.height
        keep = tombstones.keep_expr(stones)
        if keep is not None:
            df = df.filter(keep)
        if table == "sessions":
            df = collapse_sessions(df)
        df = df.sort(SORT_KEYS[table])
        name = f"part-{_next_part(names)}.parquet"
        result.bytes_out = _write_parquet(df, day_dir / name)
        result.rows_out = df.height
        day = _day_of(day_dir)
        rollup = rollups.build(table, df, day_dir, day, name) if day is not None else {}
        for old in rollups.files_of(manifest.rollup):  # they go with the files they described
            manifest.replaced[old] = {"by": name, "at": now}
        manifest.rollup = rollup
        for entry in manifest.replaced.values():
            if entry.get("by") in inputs:  # files an input had replaced now point at the new part
                entry["by"] = name
        for n in inputs:
            manifest.replaced[n] = {"by": name, "at": now}
        manifest.live = [name]
        manifest.tombstones_at = max(manifest.tombstones_at, newest_stone)
        manifest.write(day_dir)
        result.action = "compacted"
        if grace <= 0:
            result.purged += _purge(day_dir, manifest, now, grace)
    return result


def _read(day_dir: Path, table: str, arrow: list[str], parquet: list[str]) -> pl.DataFrame:
    schema = TABLES[table]
    frames = [pl.read_parquet(day_dir / n) for n in parquet]
    frames += [pl.read_ipc(day_dir / n) for n in arrow]
    frames = [f.select([pl.col(c).cast(t) for c, t in schema.items()]) for f in frames]
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames, how="vertical_relaxed")


# Column encodings of compacted files, chosen per column by measuring each option over 30 days of
# generated traffic (bench/RESULTS-stats.md, "Encodings"). Identifiers are close to unique per
# session: a dictionary stores each value once *and* an index per row, while PLAIN rows sorted by
# session repeat the value and zstd keeps one copy (-40 % on those columns). Millisecond times
# and small counters compress best split into byte planes. Strings and low-cardinality
# dimensions keep dictionaries. Polars' writer cannot choose encodings, so pyarrow writes.
PLAIN_COLUMNS = frozenset({"visitor_id", "session_id", "start"})
SPLIT_COLUMNS = frozenset({"time", "duration_seconds", "page_views", "version"})


def _encodings(columns: list[str]) -> dict[str, str]:
    enc = {c: "PLAIN" for c in columns if c in PLAIN_COLUMNS}
    enc |= {c: "BYTE_STREAM_SPLIT" for c in columns if c in SPLIT_COLUMNS}
    return enc


def _write_parquet(df: pl.DataFrame, path: Path) -> int:
    tmp = path.with_name(f".{path.name}.tmp")
    encodings = _encodings(df.columns)
    pq.write_table(
        df.to_arrow(),
        tmp,
        compression="zstd",
        compression_level=ZSTD_LEVEL,
        write_statistics=True,
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=[c for c in df.columns if c not in encodings],
        column_encoding=encodings or None,
    )
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return path.stat().st_size


def collapse_sessions(df: pl.DataFrame) -> pl.DataFrame:
    """Session rows with cancelled states removed (see the module doc for what is kept)."""
    if df.is_empty():
        return df
    state = ["visitor_id", "session_id", "version"]
    columns = df.columns
    # One representative row per state (the rows of a state are equal except for the sign).
    reps = (
        df.sort([*state, "sign"], descending=[False, False, False, True])
        .with_columns(net=pl.col("sign").cast(pl.Int64).sum().over(state))
        .unique(subset=state, keep="first", maintain_order=True)
    )
    minute = (pl.col("time").dt.epoch("ms") // 60_000).alias("minute")
    present = reps.filter(pl.col("net") >= 0).with_columns(minute, ghost=pl.col("net") == 0)
    # Earliest state of each (session, minute); a live state wins a tie.
    present = present.sort(["visitor_id", "session_id", "minute", "time", "ghost", "version"])
    first = pl.int_range(pl.len()).over(["visitor_id", "session_id", "minute"]) == 0
    ghosts = present.filter(pl.col("ghost") & first).select(columns)
    live = reps.filter(pl.col("net") != 0)
    copies = live.with_columns(
        sign=pl.when(pl.col("net") > 0).then(1).otherwise(-1).cast(pl.Int8),
        n=pl.int_ranges(0, pl.col("net").abs()),
    ).explode("n")
    return pl.concat([copies.select(columns), ghosts.with_columns(sign=pl.lit(0, pl.Int8))])


# -- housekeeping -----------------------------------------------------------------------------


def _purge(day_dir: Path, manifest: Manifest, now: float, grace: float) -> int:
    """Delete replaced files older than the grace period; rewrite the manifest if any went."""
    expired = [n for n, e in manifest.replaced.items() if now - float(e.get("at", 0)) >= grace]
    if not expired:
        return 0
    removed = 0
    for n in expired:
        try:
            (day_dir / n).unlink()
            removed += 1
        except FileNotFoundError:
            pass
        del manifest.replaced[n]
    manifest.write(day_dir)
    return removed


def _remove_orphans(day_dir: Path, names: list[str], manifest: Manifest) -> None:
    """Parquet files and temp files an interrupted compaction left (never listed as live)."""
    for n in names:
        orphan_part = _PART.match(n) and n not in manifest.live and n not in manifest.replaced
        orphan_tmp = n.startswith((".part-", ".rollup-")) and n.endswith(".tmp")
        orphan_rollup = (
            n.startswith("rollup-")
            and n not in rollups.files_of(manifest.rollup)
            and n not in manifest.replaced
        )
        if orphan_part or orphan_tmp or orphan_rollup:
            try:
                (day_dir / n).unlink()
            except FileNotFoundError:
                pass


def _next_part(names: list[str]) -> int:
    numbers = [int(m.group(1)) for n in names if (m := _PART.match(n))]
    return max(numbers, default=0) + 1


def pending_generations(data_dir: Path) -> set[str]:
    """Segment name prefixes (`w<worker>-g<gen>-`) whose WAL file still exists."""
    try:
        names = os.listdir(Path(data_dir) / "wal")
    except FileNotFoundError:
        return set()
    return {f"w{m.group(1)}-g{m.group(2)}-" for n in names if (m := _WAL.match(n))}


def _is_pending(name: str, pending: set[str]) -> bool:
    m = _SEGMENT_GEN.match(name)
    return m is not None and m.group(1) in pending


def _stones_for(data_dir: Path, site: str, table: str, day_dir: Path) -> list[tombstones.Tombstone]:
    day = _day_of(day_dir)
    if day is None:
        return []
    start = int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)
    return tombstones.relevant(tombstones.load(data_dir, site), table, start, start + DAY_MS)


def _rollup_stale(table: str, day_dir: Path, manifest: Manifest, part: str) -> bool:
    """A compacted file from before rollups existed (or an older rollup version), or a page
    rollup whose inputs (the sessions rollup, the previous day's part) have changed."""
    if table not in rollups.TABLES:
        return False
    r = manifest.rollup
    if r.get("version") != rollups.version(table) or r.get("part") != part:
        return True
    if table == "page_views":
        day = _day_of(day_dir)
        current = page_rollups.inputs(day_dir, day) if day is not None else {}
        return any(r.get(k) != v for k, v in current.items())
    return False


def _add_rollup(table: str, day_dir: Path, part: str, manifest: Manifest) -> None:
    """Write the rollup of an already compacted file (the rows are final: no rewrite needed)."""
    day = _day_of(day_dir)
    if day is None:
        return
    df = pl.read_parquet(day_dir / part, columns=rollups.COLUMNS[table])
    old = rollups.files_of(manifest.rollup)
    manifest.rollup = rollups.build(table, df, day_dir, day, part)
    for name in set(old) - set(rollups.files_of(manifest.rollup)):
        manifest.replaced[name] = {"by": part, "at": time.time()}
    manifest.write(day_dir)


def _needs_work(
    data_dir: Path, site: str, table: str, day_dir: Path, now: float, grace: float
) -> bool:
    """Cheap check before taking the lock: new segments, expired replaced files, new tombstones."""
    try:
        names = os.listdir(day_dir)
    except FileNotFoundError:
        return False
    if MANIFEST not in names:
        return any(n.endswith(".arrow") for n in names)
    manifest = Manifest.read(day_dir)
    arrow, parquet = visible_files(names, manifest)
    if arrow and any(not _is_pending(n, pending_generations(data_dir)) for n in arrow):
        return True
    if len(parquet) > 1:
        return True
    if len(parquet) == 1 and not arrow and _rollup_stale(table, day_dir, manifest, parquet[0]):
        return True
    if any(now - float(e.get("at", 0)) >= grace for e in manifest.replaced.values()):
        return True
    stones = _stones_for(data_dir, site, table, day_dir)
    return max((s.deleted_at_ms for s in stones), default=0) > manifest.tombstones_at


def _day_of(day_dir: Path) -> date | None:
    m = _DAY_DIR.match(day_dir.name)
    if m is None:
        return None
    try:
        return date.fromisoformat(m.group(1))
    except ValueError:
        return None


def _day_dirs(data_dir: Path, only_day: date | None = None) -> list[tuple[str, str, Path]]:
    out = []
    root = data_dir / "segments"
    wanted = f"day={only_day.isoformat()}" if only_day else None
    for table in TABLES:
        tdir = root / table
        if not tdir.is_dir():
            continue
        for site_dir in sorted(tdir.iterdir()):
            if not site_dir.name.startswith("site="):
                continue
            site = site_dir.name.removeprefix("site=")
            if wanted is not None:
                d = site_dir / wanted
                if d.is_dir():
                    out.append((table, site, d))
                continue
            for d in sorted(site_dir.iterdir()):
                if d.is_dir() and _DAY_DIR.match(d.name):
                    out.append((table, site, d))
    return out

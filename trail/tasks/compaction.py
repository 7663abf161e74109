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

Parts a live merge wrote while the day was open (trail.tasks.live_merge, the manifest says
`provisional`) are rewritten with the rest into the final part.

Segments whose write-ahead log file still exists are left alone: the WAL sealer may rewrite them
on replay, which would duplicate rows already merged. They are merged by a later round.

Rows outside the directory's UTC day (only a damaged segment has them; no scan reads them) are
dropped while merging, and the manifest says so (`day_only`), so a scan of the whole day needs no
time test. A part written before that is checked once: its times are read, and the flag is set
or the part rewritten.

One directory that cannot be compacted (an unreadable file, a full disk) is logged with the
error and skipped; the round goes on with the others. It is tried again once its files change
(or the process restarts), not every round.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl
import pyarrow.parquet as pq

from trail.storage import layout, page_rollups, rollups, time_rollups, tombstones
from trail.storage.daydir import MANIFEST, Manifest, fsync_dir, locked, visible_files
from trail.storage.schema import TABLES

log = logging.getLogger("trail.compaction")

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
# Parts compacted before `day_only` existed, checked per round (each reads one day's times): the
# first rounds after an upgrade must not hold up the other maintenance tasks for long.
CHECKS_PER_ROUND = 200
UNCHECKED = "unchecked"

# Sort keys per table: rows of one session together make the session-level columns long runs
# (dictionary + RLE in Parquet), and time-ordered within a session.
SORT_KEYS: dict[str, list[str]] = {
    "sessions": ["visitor_id", "session_id", "version", "sign"],
    "page_views": ["visitor_id", "session_id", "time"],
    "events": ["visitor_id", "session_id", "time"],
    "requests": ["time"],
}


class Rollup(NamedTuple):
    """The pre-aggregate compaction writes next to a table's parts."""

    version: int
    columns: list[str]  # the columns `build` reads
    build: Callable[[pl.DataFrame, Path, date, str], dict[str, Any]]


ROLLUPS: dict[str, Rollup] = {
    "sessions": Rollup(rollups.VERSION, rollups.COLUMNS, rollups.build),
    "page_views": Rollup(page_rollups.VERSION, page_rollups.COLUMNS, page_rollups.build),
}


@dataclass
class DirResult:
    table: str
    site: str
    day: str
    # "compacted", "rolled_up" (rollup added to a compacted file), "checked" (an older part was
    # found to hold only rows of its day), "clean", or "failed" (see `error`)
    action: str
    files_in: int = 0
    rows_in: int = 0
    rows_out: int = 0
    bytes_out: int = 0
    deferred: int = 0  # arrow files left for a later round (their WAL still exists)
    purged: int = 0
    out_of_day: int = 0  # rows dropped because their time is not in the directory's day
    error: str = ""


@dataclass
class Summary:
    dirs: list[DirResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        done = [d for d in self.dirs if d.action == "compacted"]
        failed = [d for d in self.dirs if d.action == "failed"]
        out: dict[str, Any] = {
            "compacted_dirs": len(done),
            "files_replaced": sum(d.files_in for d in done),
            "rows_in": sum(d.rows_in for d in done),
            "rows_out": sum(d.rows_out for d in done),
            "bytes_out": sum(d.bytes_out for d in done),
            "deferred_files": sum(d.deferred for d in self.dirs),
            "purged_files": sum(d.purged for d in self.dirs),
            "out_of_day_rows": sum(d.out_of_day for d in self.dirs),
            "failed_dirs": len(failed),
        }
        if failed:
            out["failures"] = [
                {"table": d.table, "site": d.site, "day": d.day, "error": d.error} for d in failed
            ]
        return out


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
    A directory that fails is tried even if it failed before, and reported under `failures`.
    """
    now = time.time() if now is None else now
    if not force and not day_closed(day, now, delay):
        return {"date": day.isoformat(), "skipped": "day not closed yet", **Summary().as_dict()}
    summary = Summary()
    for table, site, day_dir in _day_dirs(Path(data_dir), only_day=day):
        summary.dirs.append(_isolated(Path(data_dir), table, site, day_dir, now=now, grace=grace))
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
    checks = 0
    for table, site, day_dir in _day_dirs(Path(data_dir)):
        day = layout.day_of(day_dir.name)
        if day is None or not day_closed(day, now, delay) or _still_broken(day_dir):
            continue
        try:
            needed = _needs_work(Path(data_dir), site, table, day_dir, now, grace)
        except Exception as e:  # noqa: BLE001  one directory must not stop the round
            summary.dirs.append(_failed(table, site, day_dir, e))
            continue
        if needed == UNCHECKED:
            checks += 1
            needed = checks <= CHECKS_PER_ROUND
        if needed:
            summary.dirs.append(
                _isolated(Path(data_dir), table, site, day_dir, now=now, grace=grace)
            )
    # A sessions day's time rollup reads the day's page views and events, which this round may
    # have compacted after it: roll those days up again (trail.storage.time_rollups.current).
    for done in [d for d in summary.dirs if d.table == "sessions" and d.action != "failed"]:
        day_dir = layout.day_dir(
            Path(data_dir), "sessions", done.site, date.fromisoformat(done.day)
        )
        again = _isolated(Path(data_dir), "sessions", done.site, day_dir, now=now, grace=grace)
        if again.action == "failed":
            summary.dirs.append(again)
    return summary


def maintenance_task(state: Any) -> None:
    """The maintenance Task body (trail.tasks.maintenance)."""
    summary = run_round(Path(state.config.data_dir)).as_dict()
    if summary["compacted_dirs"] or summary["purged_files"] or summary["failed_dirs"]:
        log.info("compaction: %s", summary)


def day_closed(day: date, now: float, delay: float) -> bool:
    if day == date.max:
        return False  # its end is past what a date can say: never closed
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    return now >= end + delay


# -- failures ---------------------------------------------------------------------------------

# Day directories whose compaction failed -> the directory's mtime then. A directory's mtime
# changes when a file is added, renamed or removed in it, so it is tried again once something
# there changed (a late segment, a file an operator replaced or removed).
_broken: dict[str, int] = {}


def _mtime(day_dir: Path) -> int:
    try:
        return os.stat(day_dir).st_mtime_ns
    except OSError:
        return -1


def _still_broken(day_dir: Path) -> bool:
    failed_at = _broken.get(str(day_dir))
    return failed_at is not None and failed_at == _mtime(day_dir)


def _failed(table: str, site: str, day_dir: Path, error: Exception) -> DirResult:
    _broken[str(day_dir)] = _mtime(day_dir)
    log.error("compaction of %s failed (skipped until its files change): %r", day_dir, error)
    return DirResult(table, site, day_dir.name.removeprefix("day="), "failed", error=repr(error))


def _isolated(
    data_dir: Path, table: str, site: str, day_dir: Path, *, now: float, grace: float
) -> DirResult:
    """compact_dir, with a failure logged and returned instead of raised."""
    try:
        result = compact_dir(data_dir, table, site, day_dir, now=now, grace=grace)
    except Exception as e:  # noqa: BLE001  one directory must not stop the round
        return _failed(table, site, day_dir, e)
    _broken.pop(str(day_dir), None)
    return result


# -- one directory ----------------------------------------------------------------------------


def day_result(table: str, site: str, day_dir: Path) -> tuple[date, DirResult]:
    """The day of a day directory and the result of a round over it, "clean" so far."""
    day = layout.day_of(day_dir.name)
    if day is None:
        raise ValueError(f"{day_dir.name} is not a day directory")
    return day, DirResult(table, site, day.isoformat(), "clean")


def list_ready(
    data_dir: Path,
    day_dir: Path,
    manifest: Manifest,
    result: DirResult,
    *,
    now: float,
    grace: float,
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Under the directory's lock: purge what the grace period lets go, remove orphans, and list
    the directory: (every name, visible segments, visible parts, the segments whose WAL
    generation is no longer pending). Counts the purged and the deferred files in `result`."""
    result.purged = _purge(day_dir, manifest, now, grace)
    names = os.listdir(day_dir)
    pending = pending_generations(data_dir)  # listed after the directory, see module doc
    _remove_orphans(day_dir, names, manifest)
    arrow, parquet = visible_files(names, manifest)
    ready = [n for n in arrow if not _is_pending(n, pending)]
    result.deferred = len(arrow) - len(ready)
    return names, arrow, parquet, ready


def compact_dir(
    data_dir: Path, table: str, site: str, day_dir: Path, *, now: float, grace: float
) -> DirResult:
    day, result = day_result(table, site, day_dir)
    with locked(day_dir):
        manifest = Manifest.read(day_dir)
        names, arrow, parquet, ready = list_ready(
            data_dir, day_dir, manifest, result, now=now, grace=grace
        )
        stones = _stones_for(data_dir, site, table, day)
        newest_stone = max((s.deleted_at_ms for s in stones), default=0)
        stale_stones = newest_stone > manifest.tombstones_at
        one_part = len(parquet) == 1 and not arrow
        if one_part and not ready and not stale_stones and not manifest.day_only:
            if _rows_in_day(day_dir / parquet[0], day):
                manifest.day_only = True
                manifest.write(day_dir)
                result.action = "checked"
            else:
                stale_stones = True  # rewrite the part without the rows outside the day
        rewrite = len(parquet) > 1 or stale_stones or manifest.provisional
        if not ready and not (parquet and rewrite):
            if one_part and _rollup_stale(table, day_dir, manifest, parquet[0]):
                _add_rollup(table, day_dir, day, parquet[0], manifest)
                result.action = "rolled_up"
            return result
        inputs = parquet + ready
        df = _read(day_dir, table, ready, parquet)
        result.files_in, result.rows_in = len(inputs), df.height
        df, result.out_of_day = day_rows(df, table, day, stones)
        if result.out_of_day:
            log.warning(
                "%s: dropped %d rows whose time is not in the directory's day",
                day_dir,
                result.out_of_day,
            )
        name = layout.part_name(_next_part(names))
        result.bytes_out = _write_parquet(df, day_dir / name)
        result.rows_out = df.height
        kind = ROLLUPS.get(table)
        rollup = kind.build(df, day_dir, day, name) if kind is not None else {}
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
        manifest.day_only = True
        manifest.provisional = False
        manifest.write(day_dir)
        result.action = "compacted"
        if grace <= 0:
            result.purged += _purge(day_dir, manifest, now, grace)
    return result


def _time_ms() -> pl.Expr:
    return pl.col("time").cast(pl.Int64)


def day_rows(
    df: pl.DataFrame, table: str, day: date, stones: list[tombstones.Tombstone]
) -> tuple[pl.DataFrame, int]:
    """What a day directory's part holds of `df`: its rows in the UTC `day` that no tombstone
    deletes, session rows collapsed, in part order; and how many rows were outside the day."""
    df, out_of_day = _only_day(df, day)
    keep = tombstones.keep_expr(stones)
    if keep is not None:
        df = df.filter(keep)
    if table == "sessions":
        df = collapse_sessions(df)
    # Stable: rows of one session sharing a time keep the order they were written in, the
    # order time on page pairs them in (trail.stats.kernels.with_time_on_page).
    return df.sort(SORT_KEYS[table], maintain_order=True), out_of_day


def _only_day(df: pl.DataFrame, day: date) -> tuple[pl.DataFrame, int]:
    """The rows of `df` whose time is in the UTC `day`, and how many others were dropped."""
    start, end = layout.day_span_ms(day)
    kept = df.filter((_time_ms() >= start) & (_time_ms() < end))
    return kept, df.height - kept.height


def _rows_in_day(part: Path, day: date) -> bool:
    """Whether every row of a compacted part has a time in the UTC `day`."""
    start, end = layout.day_span_ms(day)
    t = pl.scan_parquet(part).select(lo=_time_ms().min(), hi=_time_ms().max()).collect()
    lo, hi = t.row(0)
    return lo is None or (start <= lo and hi < end)


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


def _write_parquet(df: pl.DataFrame, path: Path, level: int = ZSTD_LEVEL) -> int:
    tmp = path.with_name(layout.temp_name(path.name))
    encodings = _encodings(df.columns)
    pq.write_table(
        df.to_arrow(),
        tmp,
        compression="zstd",
        compression_level=level,
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
        orphan_part = (
            layout.part_number(n) is not None
            and n not in manifest.live
            and n not in manifest.replaced
        )
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
    numbers = [n for name in names if (n := layout.part_number(name)) is not None]
    return max(numbers, default=0) + 1


def pending_generations(data_dir: Path) -> set[str]:
    """Segment name prefixes (`w<worker>-g<gen>-`) whose WAL file still exists."""
    try:
        names = os.listdir(layout.wal_dir(data_dir))
    except FileNotFoundError:
        return set()
    return {layout.wal_generation_prefix(*w) for n in names if (w := layout.wal_file(n))}


def _is_pending(name: str, pending: set[str]) -> bool:
    prefix = layout.segment_generation_prefix(name)
    return prefix is not None and prefix in pending


def _stones_for(data_dir: Path, site: str, table: str, day: date) -> list[tombstones.Tombstone]:
    start, end = layout.day_span_ms(day)
    return tombstones.relevant(tombstones.load(data_dir, site), table, start, end)


def _rollup_stale(table: str, day_dir: Path, manifest: Manifest, part: str) -> bool:
    """A compacted file from before rollups existed (or an older rollup version), or a page
    rollup whose inputs (the sessions rollup, the previous day's part) have changed."""
    kind = ROLLUPS.get(table)
    if kind is None:
        return False
    r = manifest.rollup
    if r.get("version") != kind.version or r.get("part") != part:
        return True
    day = layout.day_of(day_dir.name)
    if table == "page_views" and day is not None:
        current = page_rollups.inputs(day_dir, day)
        return any(r.get(k) != v for k, v in current.items())
    if table == "sessions" and r.get("time_file"):
        return not time_rollups.current(day_dir, r)
    return False


def _add_rollup(table: str, day_dir: Path, day: date, part: str, manifest: Manifest) -> None:
    """Write the rollup of an already compacted file (the rows are final: no rewrite needed)."""
    kind = ROLLUPS[table]
    df = pl.read_parquet(day_dir / part, columns=kind.columns)
    old = rollups.files_of(manifest.rollup)
    manifest.rollup = kind.build(df, day_dir, day, part)
    for name in set(old) - set(rollups.files_of(manifest.rollup)):
        manifest.replaced[name] = {"by": part, "at": time.time()}
    manifest.write(day_dir)


def _needs_work(
    data_dir: Path, site: str, table: str, day_dir: Path, now: float, grace: float
) -> bool | str:
    """Cheap check before taking the lock: new segments, expired replaced files, new tombstones,
    or (UNCHECKED) only a part not known to hold only rows of its day."""
    day = layout.day_of(day_dir.name)
    try:
        names = os.listdir(day_dir)
    except FileNotFoundError:
        return False
    if day is None:
        return False
    if MANIFEST not in names:
        return any(n.endswith(".arrow") for n in names)
    manifest = Manifest.read(day_dir)
    arrow, parquet = visible_files(names, manifest)
    if arrow and any(not _is_pending(n, pending_generations(data_dir)) for n in arrow):
        return True
    if len(parquet) > 1 or (parquet and manifest.provisional):
        return True
    if len(parquet) == 1 and not arrow and _rollup_stale(table, day_dir, manifest, parquet[0]):
        return True
    if any(now - float(e.get("at", 0)) >= grace for e in manifest.replaced.values()):
        return True
    stones = _stones_for(data_dir, site, table, day)
    if max((s.deleted_at_ms for s in stones), default=0) > manifest.tombstones_at:
        return True
    return UNCHECKED if len(parquet) == 1 and not arrow and not manifest.day_only else False


def _day_dirs(data_dir: Path, only_day: date | None = None) -> list[tuple[str, str, Path]]:
    """(table, site, day directory) of every site and day, or of one day."""
    out = []
    for table in TABLES:
        for site in layout.site_ids(data_dir, table):
            if only_day is not None:
                d = layout.day_dir(data_dir, table, site, only_day)
                if d.is_dir():
                    out.append((table, site, d))
                continue
            site_dir = layout.site_dir(data_dir, table, site)
            try:  # the site may be removed meanwhile
                names = sorted(os.listdir(site_dir))
            except (FileNotFoundError, NotADirectoryError):
                continue
            out += [(table, site, site_dir / n) for n in names if layout.is_day_name(n)]
    return out

"""Per-day pre-aggregates written by compaction next to each compacted parquet file.

A 30-day unfiltered total reads ~24M session rows at 10M page views, most of the time going to
decoding `visitor_id` and counting distinct values. Compaction already holds the final rows of a
closed day in memory, so it also writes, for the `sessions` table:

- into the manifest (`compacted.json`, key "rollup"): the day's sums over live states
  (sessions, views, bounces, duration) and the number of distinct visitors;
- `rollup-<n>.u64`: the sorted distinct `visitor_id` of the day's rows with sign >= 0 as raw little-endian
  u64 (no header: reading is one `numpy.fromfile`; ~1 id per visitor and day, ~2.7 B per page
  view at the benchmark's 1.2 sessions per visitor and day).

The sessions rollup also holds the dimension rollup (`rollup-<n>-dims.parquet` and its
visitors file: per combination of dimension values, sums and visitor positions in the id list;
see trail.storage.dim_rollups) and the time rollup (`rollup-<n>-time.parquet` and its visitors
file: page views by UTC hour for the hours and weekdays reports; see trail.storage.time_rollups).
For the `page_views` table, `rollup-<n>.parquet` holds one row per path of the day (views,
sessions, the latest title and the day's visitors of the path as positions in the sessions
rollup's id list); see trail.storage.page_rollups, which builds on this module (never the other
way round), and writes the tag rollup beside it (trail.storage.tag_rollups). Reading a day's rollup (`day_rollup`, `days_for`) is the same for both kinds: the
caller names the format version it can read.

Exactness: the ids are exact, and the union over days is counted exactly (trail.stats.kernels),
so every number is the one the rows give. A day's rollup is used only when it still describes
exactly what a scan would read: the manifest names it for the live parquet, no other segment is
visible in the directory, and no tombstone newer than the compaction touches the day. A window
whose ends are not UTC midnights (a day of a site whose zone is not UTC) is split by
`window_parts` into its whole UTC days, which may use their rollups, and the slices of the UTC
days at its ends, which are read from rows: the sums and the visitor sets of the slices of a day
are those of their rows, so they add up with the whole days' exactly.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trail.storage import dim_rollups, layout, memory, time_rollups, tombstones
from trail.storage.daydir import MANIFEST, Manifest, visible_files

# Of the sessions rollup. 4: the dimension rollup (trail.storage.dim_rollups). 5: the time
# rollup (trail.storage.time_rollups).
VERSION = 6
# The columns `build` reads.
_OWN = ["time", "sign", "visitor_id", "page_views", "is_bounce", "duration_seconds", "entry_path"]
COLUMNS = list(dict.fromkeys([*_OWN, *dim_rollups.COLUMNS, *time_rollups.COLUMNS]))
# TRAIL_ROLLUPS=off: every report reads rows (the differential tests run both ways).
ENABLED = os.environ.get("TRAIL_ROLLUPS", "on").lower() not in ("off", "0", "false", "no")
# Days of a window a report may read from rows beside the others' rollups (the live day, a
# day whose compaction is due); past that the rows of the whole window are read once instead.
MAX_OPEN_DAYS = 2
FILE_KEYS = ("file", "visitors_file", "dims_file", "dims_visitors_file", "time_file",
             "time_visitors_file", "tags_file", "tags_visitors_file")  # fmt: skip


def files_of(entry: dict[str, Any]) -> list[str]:
    """The files a manifest rollup entry names."""
    return [str(entry[k]) for k in FILE_KEYS if entry.get(k)]


def build(df: pl.DataFrame, day_dir: Path, day: date, part: str) -> dict[str, Any]:
    """Write the sessions rollup file of `part` (the final rows `df` of one day) and return its
    manifest entry."""
    start, end = layout.day_span_ms(day)
    t = pl.col("time").cast(pl.Int64)
    rows = df.lazy().filter((t >= start) & (t < end))
    sums, ids, day_rows, time_rows = pl.collect_all(
        [*summarize(rows), rows.select(dim_rollups.COLUMNS), rows.select(time_rollups.COLUMNS)]
    )
    name = layout.rollup_name(part)
    tmp = day_dir / layout.temp_name(name)
    with open(tmp, "wb") as f:
        f.write(ids["visitor_id"].to_numpy().astype("<u8").tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, day_dir / name)
    entry: dict[str, Any] = {"version": VERSION, "part": part, "file": name}
    entry.update({k: int(v or 0) for k, v in sums.row(0, named=True).items()})
    entry["visitors"] = ids.height
    entry.update(dim_rollups.build(day_rows, ids["visitor_id"].to_numpy(), day_dir, part))
    entry.update(time_rollups.build(time_rows, ids["visitor_id"].to_numpy(), day_dir, day, part))
    return entry


def summarize(rows: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """The sums (one row: sessions, views, bounces, duration) and the sorted distinct visitor
    ids of rows with sign >= 0 of session rows (with SUM_COLUMNS): what a day's rollup holds."""
    sign = pl.col("sign").cast(pl.Int64)
    sums = rows.select(
        sessions=sign.sum(),
        views=(pl.col("page_views").cast(pl.Int64) * sign).sum(),
        bounces=(pl.col("is_bounce").cast(pl.Int64) * sign).sum(),
        duration=(pl.col("duration_seconds").cast(pl.Int64) * sign).sum(),
        # the sessions with a duration: the denominator of the average session duration
        duration_sessions=pl.when(pl.col("duration_seconds") > 0).then(sign).otherwise(0).sum(),
    )
    ids = rows.filter(pl.col("sign") >= 0).select(pl.col("visitor_id").unique().sort())
    return sums, ids


SUM_COLUMNS = ["sign", "visitor_id", "page_views", "is_bounce", "duration_seconds"]


@dataclass(frozen=True)
class DayRollup:
    day: date
    file: str  # the rollup file: the visitor ids for sessions, a parquet for page views
    sums: dict[str, int]
    entry: dict[str, Any]  # the manifest's rollup entry as written

    def visitor_ids(self) -> np.ndarray:
        """The day's sorted distinct visitor ids (uint64, read-only: shared through a cache)."""
        return _visitor_ids(self.file)


def _visitor_ids(path: str) -> np.ndarray:
    """A day's visitor id file, kept under the statistics' memory budget (trail.storage.memory):
    a 30-day report reads ~30 of them and the next report of the same site reads them again.
    Files are replaced by rename, so a changed file has a new (inode, mtime, size)."""
    st = os.stat(path)
    key = ("ids", path, st.st_ino, st.st_mtime_ns, st.st_size)
    return memory.KEPT.get_or_make(key, lambda: _read_ids(path))


def _read_ids(path: str) -> np.ndarray:
    ids = np.fromfile(path, dtype="<u8")
    ids.flags.writeable = False  # shared by the reports that read it
    return ids


# (day dir, version) -> (dir mtime_ns, rollup or None); trusted like trail.storage.daydir's
# listing cache.
_cache: dict[tuple[str, int], tuple[int, DayRollup | None]] = {}
_SETTLED_NS = 2_000_000_000


def day_rollup(day_dir: Path, day: date, version: int = VERSION) -> DayRollup | None:
    """The usable rollup of one day directory, made in format `version`, or None (see the
    module doc)."""
    key = str(day_dir)
    try:
        mtime = os.stat(key).st_mtime_ns
        cached = _cache.get((key, version))
        if cached is not None and cached[0] == mtime:
            return cached[1]
        names = os.listdir(key)
    except (FileNotFoundError, NotADirectoryError):
        return None
    result = None
    if MANIFEST in names:
        manifest = Manifest.read(day_dir)
        arrow, parquet = visible_files(names, manifest)
        r = manifest.rollup
        if (
            not arrow
            and r.get("version") == version
            and parquet == [r.get("part")]
            and r.get("file")
            and all(n in names for n in files_of(r))
        ):
            sums = {k: int(v) for k, v in r.items() if isinstance(v, int)}
            sums["tombstones_at"] = manifest.tombstones_at
            result = DayRollup(day, f"{key}/{r['file']}", sums, r)
    if time.time_ns() - mtime > _SETTLED_NS:
        if len(_cache) > 50_000:
            _cache.clear()
        _cache[(key, version)] = (mtime, result)
    return result


def whole_days(start: datetime, end: datetime) -> list[date] | None:
    """The UTC days of [start, end) when both ends are UTC midnights, else None."""
    s, e = start.astimezone(UTC), end.astimezone(UTC)
    midnight = datetime.min.time()
    if s.time() != midnight or e.time() != midnight or e <= s:
        return None
    return [s.date() + timedelta(days=i) for i in range((e.date() - s.date()).days)]


def days_for(
    data_dir: Path,
    table: str,
    site_id: str,
    start: datetime,
    end: datetime,
    version: int = VERSION,
) -> list[DayRollup] | None:
    """Rollups (in format `version`) of every UTC day of the window that has rows, or None
    unless all of them are usable."""
    days = days_or_gaps(data_dir, table, site_id, start, end, version)
    if days is None or any(r is None for _, r in days):
        return None
    return [r for _, r in days if r is not None]


def days_or_gaps(
    data_dir: Path,
    table: str,
    site_id: str,
    start: datetime,
    end: datetime,
    version: int = VERSION,
) -> list[tuple[date, DayRollup | None]] | None:
    """Every UTC day of the window that has rows, with its usable rollup (in format `version`)
    or None (a gap: the live day, a day not compacted yet, a deletion the compacted file does
    not reflect yet); None unless the window is made of whole UTC days."""
    if not ENABLED or whole_days(start, end) is None or not layout.is_site_id(site_id):
        return None
    first, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    stones = tombstones.load(Path(data_dir), site_id)
    out: list[tuple[date, DayRollup | None]] = []
    for day in layout.site_days(data_dir, table, site_id):  # days without a directory add nothing
        if not first <= day < last:
            continue
        r = day_rollup(layout.day_dir(data_dir, table, site_id, day), day, version)
        if r is not None:
            lo, hi = layout.day_span_ms(day)
            newest = max(
                (s.deleted_at_ms for s in tombstones.relevant(stones, table, lo, hi)), default=0
            )
            if newest > r.sums["tombstones_at"]:
                r = None  # a deletion the compacted file does not reflect yet
        out.append((day, r))
    return out


@dataclass(frozen=True)
class DayPart:
    """One UTC day of a window that has rows, and the part [start, end) of it in the window:
    the whole day, or at either end of a window that is not made of whole UTC days, a slice."""

    day: date
    rollup: DayRollup | None  # usable and for the whole day; None: read [start, end) from rows
    start: datetime
    end: datetime

    @property
    def whole(self) -> bool:
        return (self.end - self.start) == timedelta(days=1)


def window_parts(
    data_dir: Path,
    table: str,
    site_id: str,
    start: datetime,
    end: datetime,
    version: int = VERSION,
) -> list[DayPart] | None:
    """Every UTC day of [start, end) that has rows, as the part of it in the window: the whole
    days with their usable rollup (in format `version`) or None, like days_or_gaps; the slices
    at the ends (when an end is not a UTC midnight) without one. None when rollups are off or
    a whole day lacks a rollup beyond MAX_OPEN_DAYS of them (the rows of the window are then
    read once instead)."""
    s, e = start.astimezone(UTC), end.astimezone(UTC)
    if not ENABLED or e <= s or not layout.is_site_id(site_id):
        return None
    first = datetime.combine(s.date(), datetime.min.time(), UTC)
    last = datetime.combine(e.date(), datetime.min.time(), UTC)
    last += timedelta(days=0 if e == last else 1)
    whole = days_or_gaps(data_dir, table, site_id, first, last, version)
    if whole is None:
        return None
    out = []
    for day, r in whole:
        lo = datetime.combine(day, datetime.min.time(), UTC)
        part = DayPart(day, r, max(s, lo), min(e, lo + timedelta(days=1)))
        out.append(part if part.whole else replace(part, rollup=None))
    if sum(p.rollup is None and p.whole for p in out) > MAX_OPEN_DAYS:
        return None
    return out

"""Unfiltered session totals from per-day rollups (trail.storage.rollups), when they apply.

The unfiltered totals of a window (visitors, sessions, views, bounces, duration) are what
/statistics/total answers without a filter and the denominator of every relative value and cr.
When the window is made of whole UTC days that all have a usable rollup, they come from the
rollups: sums add up over days and visitors are counted exactly over the union of the per-day
id lists. Up to rollups.MAX_OPEN_DAYS days without one (the live day, a day whose compaction is
due) are summed from their rows the way compaction sums a day, and their ids join the union.
Otherwise None, and the caller reads rows.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from trail.stats import index_files, kernels, open_days, rollup_visitors
from trail.stats.scan import scan
from trail.stats.sources import Rows
from trail.storage import rollups

COLUMNS = ("visitors", "sessions", "views", "bounces", "duration", "duration_sessions")
# Distinct visitors over a set of days, by the identity of the days' id files: the unfiltered
# visitors of a window are the denominator of most reports a dashboard load asks for.
_UNIONS_KEPT = 64
_unions: OrderedDict[tuple[tuple[str, int, int, int], ...], int] = OrderedDict()
_unions_lock = threading.Lock()
# The ids themselves of a few sets of closed days (~2M ids, 16 MB, for 30 days at 10M page
# views), for windows that end on the live day.
_UNION_IDS_KEPT = 2
_union_ids: OrderedDict[tuple[tuple[str, int, int, int], ...], np.ndarray] = OrderedDict()


@dataclass(frozen=True)
class OpenDay:
    """A day of the window without a usable rollup (the live day, a day not compacted yet),
    summed from its rows as compaction would (rollups.summarize)."""

    day: date
    sums: dict[str, int]
    ids: np.ndarray


Day = rollups.DayRollup | OpenDay


def window_days(rows: Rows) -> list[Day] | None:
    """The days of an unfiltered window of whole UTC days: from their rollups, at most
    rollups.MAX_OPEN_DAYS of them from rows; else None."""
    f = rows.f
    if not f.is_unfiltered or f.visitor_id is not None or f.session_id is not None:
        return None
    days = rollups.days_or_gaps(rows.data_dir, "sessions", f.site_id, rows.start, rows.end)
    if days is None or sum(r is None for _, r in days) > rollups.MAX_OPEN_DAYS:
        return None
    return [r if r is not None else _open_day(rows, day) for day, r in days]


def _open_day(rows: Rows, day: date) -> OpenDay:
    """The day summed from its rows, once per set of its files (trail.stats.open_days)."""
    site = rows.f.site_id
    return open_days.of_day(
        "sums", rows.data_dir, site, ("sessions",), day, lambda: _summed_day(rows, day)
    )


def _summed_day(rows: Rows, day: date) -> OpenDay:
    start = datetime.combine(day, time(0), UTC)
    lf = scan(rows.data_dir, "sessions", rows.f.site_id, start, start + timedelta(days=1),
              rollups.SUM_COLUMNS)  # fmt: skip
    sums, ids = pl.collect_all(rollups.summarize(lf))
    totals = {k: int(v or 0) for k, v in sums.row(0, named=True).items()}
    totals["visitors"] = ids.height
    day_ids = ids["visitor_id"].to_numpy()
    day_ids.flags.writeable = False  # shared by the reports that remember it
    return OpenDay(day, totals, day_ids)


def session_totals(rows: Rows) -> dict[str, int] | None:
    """The unfiltered totals of `rows`' window, or None when rollups cannot answer."""
    days = window_days(rows)
    if days is None:
        return None
    out: dict[str, Any] = {k: sum(d.sums.get(k, 0) for d in days) for k in COLUMNS[1:]}
    out["visitors"] = visitors_of(days)
    return out


def bucket_totals(rows: Rows, starts: list[date], tz: ZoneInfo) -> dict[int, dict[str, int]] | None:
    """Unfiltered totals per time bucket (bucket index -> totals; empty buckets absent), when
    every bucket starts on a UTC midnight and rollups cover the window; else None."""
    instants = [datetime.combine(d, time(0), tz).astimezone(UTC) for d in starts]
    if any(i.time() != time(0) for i in instants):
        return None
    days = window_days(rows)
    if days is None:
        return None
    bounds = [i.date() for i in instants]
    grouped: dict[int, list[Day]] = {}
    for d in days:
        grouped.setdefault(bisect_right(bounds, d.day) - 1, []).append(d)
    out = {}
    for bucket, members in grouped.items():
        t: dict[str, int] = {k: sum(d.sums.get(k, 0) for d in members) for k in COLUMNS[1:]}
        t["visitors"] = visitors_of(members)
        out[bucket] = t
    return out


def visitors_of(days: list[Day]) -> int:
    """Distinct visitors over `days`: of closed days, their id files' union (remembered); the
    open days' ids that are not in it are added."""
    if len(days) == 1:
        return days[0].sums.get("visitors", 0)
    closed = [d for d in days if isinstance(d, rollups.DayRollup)]
    opened = [d.ids for d in days if isinstance(d, OpenDay)]
    if not opened:
        return distinct_visitors(closed)
    if not closed:
        return kernels.distinct_count(opened)
    union = closed_union(closed)
    extra = rollup_visitors.distinct(np.concatenate(opened))
    found = np.searchsorted(union, extra)
    inside = found < len(union)
    inside[inside] = union[found[inside]] == extra[inside]
    return len(union) + int((~inside).sum())


def closed_union(days: list[rollups.DayRollup]) -> np.ndarray:
    """The sorted distinct ids of closed days, remembered for the latest few sets of files (a
    window that ends today asks for the same closed days in every report of a load; the
    breakdowns' visitor index, trail.stats.rollup_visitors, is built on it)."""
    if not days:
        return np.zeros(0, dtype=np.uint64)
    key = identity(days)
    with _unions_lock:
        hit = _union_ids.get(key)
        if hit is not None:
            _union_ids.move_to_end(key)
            return hit

    def union() -> dict[str, np.ndarray]:
        return {"ids": rollup_visitors.distinct(np.concatenate([d.visitor_ids() for d in days]))}

    ids = index_files.shared(index_files.directory_of(days[0].file), ("union", key), union)["ids"]
    if identity(days) == key:
        with _unions_lock:
            _union_ids[key] = ids
            while len(_union_ids) > _UNION_IDS_KEPT:
                _union_ids.popitem(last=False)
    return ids


def distinct_visitors(days: list[rollups.DayRollup]) -> int:
    """How many distinct visitors the days hold together (their id files' union), remembered
    while those files stay the same (files are replaced by rename: a new inode or mtime)."""
    if len(days) == 1:
        return days[0].sums.get("visitors", 0)
    key = identity(days)
    with _unions_lock:
        count = _unions.get(key)
        if count is not None:
            _unions.move_to_end(key)
            return count
    count = len(closed_union(days))  # (built once per machine: trail.stats.index_files)
    if identity(days) == key:  # not replaced while read
        with _unions_lock:
            _unions[key] = count
            while len(_unions) > _UNIONS_KEPT:
                _unions.popitem(last=False)
    return count


def identity(days: list[rollups.DayRollup]) -> tuple[tuple[str, int, int, int], ...]:
    stats = [(d.file, os.stat(d.file)) for d in days]
    return tuple((f, st.st_ino, st.st_mtime_ns, st.st_size) for f, st in stats)


def totals_frame(rows: Rows, columns: list[str]) -> pl.LazyFrame | None:
    """One row with `columns` of session_totals, or None (see there)."""
    t = session_totals(rows)
    if t is None:
        return None
    return pl.LazyFrame({c: [t[c]] for c in columns}, schema={c: pl.Int64 for c in columns})

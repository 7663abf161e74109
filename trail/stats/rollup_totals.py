"""Unfiltered session totals from per-day rollups (trail.storage.rollups), when they apply.

The unfiltered totals of a window (visitors, sessions, views, bounces, duration) are what
/statistics/total answers without a filter and the denominator of every relative value and cr.
The whole UTC days of the window that have a usable rollup answer from it: sums add up over
days and visitors are counted exactly over the union of the per-day id lists. Up to
rollups.MAX_OPEN_DAYS whole days without one (the live day, a day whose compaction is due), and
the slices of the UTC days at the ends of a window that is not made of whole UTC days (a site
whose zone is not UTC), are summed from their rows the way compaction sums a day, and their ids
join the union. Otherwise None, and the caller reads rows.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from trail.stats import index_files, kernels, open_days, rollup_visitors
from trail.stats.scan import scan
from trail.stats.sources import Rows
from trail.storage import memory, rollups

COLUMNS = ("visitors", "sessions", "views", "bounces", "duration", "duration_sessions")
# Distinct visitors over a set of days, by the identity of the days' id files: the unfiltered
# visitors of a window are the denominator of most reports a dashboard load asks for.
_UNIONS_KEPT = 64
_unions: OrderedDict[tuple[tuple[str, int, int, int], ...], int] = OrderedDict()
_unions_lock = threading.Lock()


@dataclass(frozen=True)
class OpenDay:
    """A day of the window without a usable rollup (the live day, a day not compacted yet, the
    slice of a day at an end of the window), summed from its rows as compaction would
    (rollups.summarize)."""

    day: date
    sums: dict[str, int]
    ids: np.ndarray


Day = rollups.DayRollup | OpenDay


def window_days(rows: Rows) -> list[Day] | None:
    """The UTC days of an unfiltered window: from their rollups, at most
    rollups.MAX_OPEN_DAYS whole days and the slices at the window's ends from rows (see
    rollups.window_parts); else None."""
    days = window_days_cut(rows, [])
    return None if days is None else [d for _, d in days]


def _open_day(rows: Rows, part: rollups.DayPart) -> OpenDay:
    """The day (or its slice) summed from its rows, once per set of its files
    (trail.stats.open_days)."""
    site = rows.f.site_id
    span = None if part.whole else (part.start, part.end)
    return open_days.of_day(
        "sums", rows.data_dir, site, ("sessions",), part.day,
        lambda: _summed_day(rows, part), span,
    )  # fmt: skip


def _summed_day(rows: Rows, part: rollups.DayPart) -> OpenDay:
    lf = scan(rows.data_dir, "sessions", rows.f.site_id, part.start, part.end,
              rollups.SUM_COLUMNS)  # fmt: skip
    sums, ids = pl.collect_all(rollups.summarize(lf))
    totals = {k: int(v or 0) for k, v in sums.row(0, named=True).items()}
    totals["visitors"] = ids.height
    day_ids = ids["visitor_id"].to_numpy()
    day_ids.flags.writeable = False  # shared by the reports that remember it
    return OpenDay(part.day, totals, day_ids)


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
    rollups cover the window and every bucket holds a whole UTC day; else None.

    A bucket that does not start on a UTC midnight (a local midnight of a zone that is not UTC)
    splits the UTC day it starts in: both slices of that day are read from rows. A bucket
    without a whole UTC day (a local day) would be read from rows entirely: the rows answer."""
    instants = [datetime.combine(d, time(0), tz).astimezone(UTC) for d in starts]
    spans = zip([max(i, rows.start) for i in instants], [*instants[1:], rows.end], strict=True)
    if any(a < b and not _holds_whole_day(a, b) for a, b in spans):
        return None
    days = window_days_cut(rows, instants[1:])
    if days is None:
        return None
    grouped: dict[int, list[Day]] = {}
    for start, d in days:
        grouped.setdefault(bisect_right(instants, start) - 1, []).append(d)
    out = {}
    for bucket, members in grouped.items():
        t: dict[str, int] = {k: sum(d.sums.get(k, 0) for d in members) for k in COLUMNS[1:]}
        t["visitors"] = visitors_of(members)
        out[bucket] = t
    return out


def _holds_whole_day(start: datetime, end: datetime) -> bool:
    """Whether [start, end) holds a whole UTC day."""
    s = start.astimezone(UTC)
    first = datetime.combine(s.date(), time(0), UTC)
    if first < s:
        first += timedelta(days=1)
    return first + timedelta(days=1) <= end


def window_days_cut(rows: Rows, cuts: list[datetime]) -> list[tuple[datetime, Day]] | None:
    """window_days, with every UTC day that an instant of `cuts` falls inside (not on its
    midnight) read from rows as the slices on either side of it; each with where it starts."""
    f = rows.f
    if not f.is_unfiltered or f.visitor_id is not None or f.session_id is not None:
        return None
    parts = rollups.window_parts(rows.data_dir, "sessions", f.site_id, rows.start, rows.end)
    if parts is None:
        return None
    pieces = []
    for p in parts:
        edges = [p.start, *sorted(c for c in cuts if p.start < c < p.end), p.end]
        if len(edges) == 2:
            pieces.append(p)
            continue
        pieces += [replace(p, rollup=None, start=a, end=b) for a, b in pairwise(edges)]
    return [(p.start, p.rollup or _open_day(rows, p)) for p in pieces]


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
    found = kernels.search_sorted(union, extra)
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
    hit = memory.KEPT.get(("union", key))
    if hit is not memory.MISSING:
        return hit  # type: ignore[no-any-return]

    def union() -> dict[str, np.ndarray]:
        return {"ids": rollup_visitors.distinct(np.concatenate([d.visitor_ids() for d in days]))}

    ids = index_files.shared(index_files.directory_of(days[0].file), ("union", key), union)["ids"]
    if identity(days) == key:  # kept under the statistics' budget (~16 MB at 10M page views)
        memory.KEPT.put(("union", key), ids)
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

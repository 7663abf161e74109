"""Unfiltered session totals from per-day rollups (trail.storage.rollups), when they apply.

The unfiltered totals of a window (visitors, sessions, views, bounces, duration) are what
/statistics/total answers without a filter and the denominator of every relative value and cr.
When the window is made of whole UTC days that all have a usable rollup, they come from the
rollups: sums add up over days and visitors are counted exactly over the union of the per-day
id lists. Otherwise None, and the caller reads rows.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from collections import OrderedDict
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from trail.stats import kernels
from trail.stats.sources import Rows
from trail.storage import rollups

COLUMNS = ("visitors", "sessions", "views", "bounces", "duration")
# Distinct visitors over a set of days, by the identity of the days' id files: the unfiltered
# visitors of a window are the denominator of most reports a dashboard load asks for.
_UNIONS_KEPT = 64
_unions: OrderedDict[tuple[tuple[str, int, int, int], ...], int] = OrderedDict()
_unions_lock = threading.Lock()


def session_totals(rows: Rows) -> dict[str, int] | None:
    """The unfiltered totals of `rows`' window, or None when rollups cannot answer."""
    f = rows.f
    if not f.is_unfiltered or f.visitor_id is not None or f.session_id is not None:
        return None
    days = rollups.days_for(rows.data_dir, "sessions", f.site_id, rows.start, rows.end)
    if days is None:
        return None
    out: dict[str, Any] = {k: sum(d.sums.get(k, 0) for d in days) for k in COLUMNS[1:]}
    if len(days) == 1:
        out["visitors"] = days[0].sums.get("visitors", 0)
    else:
        out["visitors"] = distinct_visitors(days)
    return out


def bucket_totals(rows: Rows, starts: list[date], tz: ZoneInfo) -> dict[int, dict[str, int]] | None:
    """Unfiltered totals per time bucket (bucket index -> totals; empty buckets absent), when
    every bucket starts on a UTC midnight and rollups cover the window; else None."""
    f = rows.f
    if not f.is_unfiltered or f.visitor_id is not None or f.session_id is not None:
        return None
    instants = [datetime.combine(d, time(0), tz).astimezone(UTC) for d in starts]
    if any(i.time() != time(0) for i in instants):
        return None
    days = rollups.days_for(rows.data_dir, "sessions", f.site_id, rows.start, rows.end)
    if days is None:
        return None
    bounds = [i.date() for i in instants]
    grouped: dict[int, list[rollups.DayRollup]] = {}
    for d in days:
        grouped.setdefault(bisect_right(bounds, d.day) - 1, []).append(d)
    out = {}
    for bucket, members in grouped.items():
        t: dict[str, int] = {k: sum(d.sums.get(k, 0) for d in members) for k in COLUMNS[1:]}
        if len(members) == 1:
            t["visitors"] = members[0].sums.get("visitors", 0)
        else:
            t["visitors"] = distinct_visitors(members)
        out[bucket] = t
    return out


def distinct_visitors(days: list[rollups.DayRollup]) -> int:
    """How many distinct visitors the days hold together (their id files' union), remembered
    while those files stay the same (files are replaced by rename: a new inode or mtime)."""
    key = _identity(days)
    with _unions_lock:
        count = _unions.get(key)
        if count is not None:
            _unions.move_to_end(key)
            return count
    count = kernels.distinct_count([d.visitor_ids() for d in days])
    if _identity(days) == key:  # not replaced while read
        with _unions_lock:
            _unions[key] = count
            while len(_unions) > _UNIONS_KEPT:
                _unions.popitem(last=False)
    return count


def _identity(days: list[rollups.DayRollup]) -> tuple[tuple[str, int, int, int], ...]:
    stats = [(d.file, os.stat(d.file)) for d in days]
    return tuple((f, st.st_ino, st.st_mtime_ns, st.st_size) for f, st in stats)


def totals_frame(rows: Rows, columns: list[str]) -> pl.LazyFrame | None:
    """One row with `columns` of session_totals, or None (see there)."""
    t = session_totals(rows)
    if t is None:
        return None
    return pl.LazyFrame({c: [t[c]] for c in columns}, schema={c: pl.Int64 for c in columns})

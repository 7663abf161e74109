"""/statistics/goals from the rollups, when the report has no filter of its own, exactly.

A goal is a filter run through the total report (trail.stats.goals). Without any other filter,
over whole UTC days, two kinds of goal have their numbers in the rollups:

- a path pattern: the page views whose path the regex matches. Views add up over the matching
  paths of the days' page rollups (trail.storage.page_rollups), visitors are the distinct ids
  over their per-day visitor lists. The rows of a day without a current page rollup (the live
  day, a day not compacted yet, a replaced sessions rollup; up to rollups.MAX_OPEN_DAYS of
  them) are read: their matching page views' visitors join the same count.
- an event name without metadata: the events report's row for that name (its visitors and the
  views of the sessions that fired it, trail.stats.rollup_events), which is what the total
  report reads under an event name filter.

cr divides by the window's visitors (trail.stats.rollup_totals). Anything else (both a pattern
and an event, metadata, a custom metric, a filter, a window that is not whole UTC days, a day
the rollups cannot describe) gives None and the rows answer. tests/stats/test_goal_rollups.py
compares both ways.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trail.stats import kernels, rollup_events, rollup_pages, rollup_totals, rollup_visitors
from trail.stats import metrics as m
from trail.stats.filters import Filter
from trail.stats.scan import scan
from trail.stats.sources import Rows, rows_for
from trail.storage import rollups


def goal_totals(data_dir: Path, f: Filter, goal: dict[str, Any]) -> dict[str, Any] | None:
    """visitors, views, cr and the (zero) custom metrics of `goal` over the report's unfiltered
    window, as trail.stats.goals reads them from rows, or None."""
    if not f.is_unfiltered or f.visitor_id is not None or f.session_id is not None:
        return None
    pattern, name = goal.get("pattern"), goal.get("event_name")
    custom = name and (goal.get("custom_metric_key") or f.custom_metric_key)
    if bool(pattern) == bool(name) or custom:
        return None
    if name and goal.get("event_meta_key") and goal.get("event_meta_value") is not None:
        return None
    rows = rows_for(data_dir, f)
    if rollups.whole_days(rows.start, rows.end) is None:
        return None
    counted = _pattern_totals(rows, str(pattern)) if pattern else _event_totals(rows, str(name))
    everyone = rollup_totals.session_totals(rows) if counted is not None else None
    if counted is None or everyone is None:
        return None
    visitors, views = counted
    return {
        "visitors": visitors,
        "views": views,
        "cr": m.rate(visitors, everyone["visitors"] or 0),
        "custom_metric_avg": 0.0,
        "custom_metric_total": 0.0,
    }


def _event_totals(rows: Rows, name: str) -> tuple[int, int] | None:
    """Visitors and views of the event `name` (0 and 0 when it did not fire), or None."""
    stats = rollup_events.event_stats(rows)
    if stats is None:
        return None
    row = stats.filter(pl.col("name") == name)
    if row.is_empty():
        return 0, 0
    return int(row["visitors"][0]), int(row["views"][0])


def _pattern_totals(rows: Rows, pattern: str) -> tuple[int, int] | None:
    """Visitors and views of the page views whose path matches `pattern`, or None."""
    found = rollup_pages.indexed_days(rows)
    if found is None:
        return None
    days, current, ids_of = found
    closed = list(current.values())
    opened = [day for day in days if day not in current]
    try:
        parts = _closed_days(closed, ids_of, pattern)
        parts += [_open_day(rows, day, pattern) for day in opened]
    except (OSError, pl.exceptions.PolarsError):
        return None  # replaced and purged since listed, damaged, or a bad regex: the rows say
    views = sum(v for _, v in parts)
    return kernels.distinct_count([ids for ids, _ in parts]), views


def _closed_days(
    closed: list[rollups.DayRollup], ids_of: dict[date, rollups.DayRollup], pattern: str
) -> list[tuple[np.ndarray, int]]:
    """Per day, the visitor ids (with repeats) and the views of its paths matching `pattern`.
    One scan reads the days' path tables; of each day's visitor lists only the deltas from the
    first matching path's to the last one's are read (Polars reads the files in parallel)."""
    if not closed:
        return []
    match = pl.col("path").str.contains(pattern).fill_null(False)
    scanned = pl.scan_parquet([r.file for r in closed], include_file_paths="src")
    table = scanned.select("src", "views", "visitors", match.alias("match")).collect()
    per_day = table.partition_by("src", maintain_order=True, include_key=False, as_dict=True)
    empty = table.clear().drop("src")
    days = [per_day.get((r.file,), empty) for r in closed]
    queries, spans = [], []
    for r, day in zip(closed, days, strict=True):
        lens = day["visitors"].cast(pl.Int64).to_numpy()
        rows = np.flatnonzero(day["match"].to_numpy())
        if len(rows):
            span = slice(int(rows[0]), int(rows[-1]) + 1)
            first = int(lens[: span.start].sum())
            visitors_file = os.path.join(os.path.dirname(r.file), r.entry["visitors_file"])
            lf = pl.scan_parquet(visitors_file).slice(first, int(lens[span].sum()))
            queries.append(lf)
            spans.append(span)
    deltas_of = iter(zip(pl.collect_all(queries), spans, strict=True))
    out = []
    for r, day in zip(closed, days, strict=True):
        views = int(day["views"].filter(day["match"]).cast(pl.Int64).sum())
        if not day["match"].any():
            out.append((np.zeros(0, dtype=np.uint64), views))
            continue
        deltas, span = next(deltas_of)
        lens = day["visitors"].cast(pl.Int64).to_numpy()[span]
        positions = rollup_visitors.positions(deltas["deltas"].to_numpy(), lens)
        keep = np.repeat(day["match"].to_numpy()[span], lens)
        out.append((ids_of[r.day].visitor_ids()[positions[keep]], views))
    return out


def _open_day(rows: Rows, day: date, pattern: str) -> tuple[np.ndarray, int]:
    """The visitor ids and the views of the day's page views whose path matches, from rows."""
    start = datetime.combine(day, time(0), UTC)
    pv = scan(rows.data_dir, "page_views", rows.f.site_id, start, start + timedelta(days=1),
              ["visitor_id", "path"])  # fmt: skip
    matched = pv.filter(pl.col("path").str.contains(pattern)).collect()
    return matched["visitor_id"].to_numpy(), matched.height

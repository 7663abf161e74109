"""/statistics/events from the rollups (trail.storage.time_rollups, kind EVENTS), exactly.

Without a filter: per event name, count and the durations' sum and number
add up over days (the average is their quotient, truncated as the rows' mean is), the metadata
keys are the union of the days', visitors are the distinct ids over the days' visitor lists.
`views` are the views of the sessions that fired the event, each session once per name: a
session with rows on one day only adds its views to that day's `session_views`; the others
(sessions carried over midnight, or with rows late in a day) are the days' specials, whose
views and event names are summed per session over the window first. A day without a usable
rollup (the live day), and the slice of a UTC day at an end of a window that is not made of
whole UTC days (a site whose zone is not UTC: the start's slice runs to the day's end, so the
sessions it carries into the next day have rows in its last hour and are its specials, and the
end's slice starts at the day's start), is described from its rows by the same function (see
trail.stats.rollup_time.window_days); anything else (a
filter, a deletion in the window, a carried session that is not a special of the day before)
gives None: the rows answer. tests/stats/test_time_rollups.py compares both ways.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from trail.stats import kernels, rollup_time, rollup_visitors
from trail.stats.sources import Rows
from trail.storage import tombstones
from trail.storage.time_rollups import CELLS, EVENTS, HOUR_MS, DayTime

_KEYS = ["visitor_id", "session_id"]
SCHEMA = pl.Schema(
    {
        "name": pl.String(),
        "count": pl.Int64(),
        "visitors": pl.Int64(),
        "views": pl.Int64(),
        "average_duration_seconds": pl.Int64(),
        "meta_keys": pl.List(pl.String()),
    }
)


def event_stats(rows: Rows) -> pl.DataFrame | None:
    """name, count, visitors, views, average_duration_seconds and meta_keys per event name
    over an unfiltered window (no search: the caller applies it), or None."""
    f = rows.f
    if not f.is_unfiltered or f.visitor_id is not None or f.session_id is not None:
        return None
    ws, we = int(rows.start.timestamp() * 1000), int(rows.end.timestamp() * 1000)
    if we <= ws:
        return None
    stones = tombstones.load(rows.data_dir, f.site_id)
    if any(tombstones.relevant(stones, t, ws, we) for t in ("sessions", "events")):
        return None  # the rollup does not apply deletions
    days = rollup_time.window_days(rows, ws, we, sliced=True)
    if days is None:
        return None
    if not days:
        return pl.DataFrame(schema=SCHEMA)
    return rollup_time.remembered(days, ("events",), lambda read: _answer(read, ws // HOUR_MS))


def _answer(days: list[DayTime], h0: int) -> pl.DataFrame | None:
    sp = rollup_time.specials_of(days)
    if not rollup_time.carried_ok(sp, h0):
        return None
    tables, ids = [], []
    for d in days:
        n_cells = int(d.kind(CELLS)["visitors"].cast(pl.Int64).sum())
        names = d.kind(EVENTS)
        lens = names["visitors"].to_numpy().astype(np.int64)
        ids.append(d.ids[rollup_visitors.positions(d.deltas[n_cells:], lens)])
        tables.append(names.select("name", "count", "duration_sum", "duration_n", "meta_keys",
                                   "session_views", "visitors"))  # fmt: skip
    table = pl.concat(tables)
    if table["name"].null_count():
        return None  # (events are named: trail.validation; imports might not be)
    groups = table.select(pl.col("name").rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()
    return _combine(table, np.concatenate(ids), groups, sp)


def _combine(
    table: pl.DataFrame, flat: np.ndarray, groups: np.ndarray, sp: pl.DataFrame
) -> pl.DataFrame:
    """The days' per-name rows (`groups`: each row's name as a number; `flat`: the rows'
    visitor ids in order) summed per name, with the specials' views."""
    lens = table["visitors"].to_numpy().astype(np.int64)
    owner = np.repeat(groups, lens)
    order = np.argsort(owner, kind="stable")
    owner, flat = owner[order], flat[order]
    keys = table.with_columns(group=pl.Series(groups, dtype=pl.Int64))
    per_group = (
        keys.group_by("group")
        .agg(
            pl.col("name").first(),
            pl.col("count").sum(),
            pl.col("duration_sum").sum(),
            pl.col("duration_n").sum(),
            pl.col("meta_keys").list.explode(keep_nulls=False, empty_as_null=False).unique().sort(),
            pl.col("session_views").sum(),
        )
        .sort("group")
    )
    bounds = np.searchsorted(owner, per_group["group"].to_numpy(), side="left")
    ends = np.searchsorted(owner, per_group["group"].to_numpy(), side="right")
    visitors = [kernels.distinct_count([flat[a:b]]) for a, b in zip(bounds, ends, strict=True)]
    extra = _special_views(sp)
    avg = [
        int(s / n) if n else 0
        for s, n in zip(per_group["duration_sum"], per_group["duration_n"], strict=True)
    ]
    out = per_group.with_columns(
        visitors=pl.Series(visitors, dtype=pl.Int64),
        average_duration_seconds=pl.Series(avg, dtype=pl.Int64),
    ).join(extra, on="name", how="left")
    return out.select(
        "name",
        "count",
        "visitors",
        (pl.col("session_views") + pl.col("extra").fill_null(0)).alias("views"),
        "average_duration_seconds",
        pl.col("meta_keys").fill_null(pl.lit([], pl.List(pl.String))),
    ).cast(SCHEMA)


def _special_views(sp: pl.DataFrame) -> pl.DataFrame:
    """Per event name, the views of the specials that fired it: per session summed over the
    window's days, once per name."""
    per_session = sp.group_by(_KEYS).agg(
        pl.col("session_views").sum(),
        pl.col("event_names").list.explode(keep_nulls=False, empty_as_null=False).unique(),
    )
    return (
        per_session.explode("event_names")
        .filter(pl.col("event_names").is_not_null())  # a session without events here
        .group_by(pl.col("event_names").alias("name"))
        .agg(extra=pl.col("session_views").sum())
    )

"""Event reports: events, event/meta, event/list, event/page.

Event rows answer count, visitors and durations; `views` are the live page views of the sessions
that fired the event (reference section 5: "event fields read events with the session's views
and bounces joined"). `cr` divides by the unfiltered visitors of the period.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trail.stats import metrics as m
from trail.stats import rollup_events, rollup_totals
from trail.stats.filters import Filter, FilterError
from trail.stats.pages import _time_on_page, _unfiltered_totals, latest, sort_and_page
from trail.stats.predicates import pair_value
from trail.stats.sources import KEYS, Rows, rows_for

EVENT_SORTS = ("name", "count", "visitors", "views", "cr", "average_duration_seconds")
_META_KEYS = pl.col("event_meta_keys").list.explode(keep_nulls=False, empty_as_null=False)


def _search(lf: pl.LazyFrame, f: Filter, column: str) -> pl.LazyFrame:
    if not f.search:
        return lf
    return lf.filter(pl.col(column).str.to_lowercase().str.contains(f.search.lower(), literal=True))


def _session_stats(rows: Rows) -> pl.LazyFrame:
    """Live views and bounce of each session that has a matching event (callers join it inner
    and sum, so a session whose rows all have sign 0, which add nothing, may be left out)."""
    keys = rows.event_keys()
    sess = rows.unfiltered().sessions([*KEYS, "sign", "page_views", "is_bounce"])
    sess = sess.filter(pl.col("sign") != 0).join(keys, on=KEYS, how="semi")
    return sess.group_by(KEYS).agg(
        m.views().alias("session_views"), m.bounces().alias("session_bounces")
    )


def _event_stats(
    rows: Rows, keys: list[pl.Expr], extra: list[pl.Expr] | None = None
) -> pl.DataFrame:
    """count, visitors, views, cr, average_duration_seconds per `keys` over matching events."""
    f = rows.f
    cols = ["event_name", *KEYS, "duration_seconds", "event_meta_keys", "event_meta_values"]
    ev = _search(rows.events(cols), f, "event_name").with_columns(keys)
    names = [k.meta.output_name() for k in keys]
    stats = ev.group_by(names).agg(
        pl.len().cast(pl.Int64).alias("count"),
        pl.col("visitor_id").n_unique().cast(pl.Int64).alias("visitors"),
        # Pirsch truncates the average event duration (section 5).
        pl.col("duration_seconds")
        .mean()
        .fill_null(0)
        .cast(pl.Int64)
        .alias("average_duration_seconds"),
        *(extra or []),
    )
    views = (
        ev.select([*names, *KEYS])
        .unique()
        .join(_session_stats(rows), on=KEYS, how="inner")
        .group_by(names)
        .agg(pl.col("session_views").sum().alias("views"))
    )
    all_visitors = rollup_totals.totals_frame(rows.unfiltered(), ["visitors"])
    if all_visitors is None:
        all_visitors = rows.unfiltered().sessions(["visitor_id", "sign"]).select(m.visitors())
    df, total = pl.collect_all([stats.join(views, on=names, how="left"), all_visitors])
    df = df.with_columns(pl.col("views").fill_null(0).cast(pl.Int64))
    return with_cr(df, int(total["visitors"][0] or 0))


def with_cr(df: pl.DataFrame, everyone: int) -> pl.DataFrame:
    """`df` with cr = visitors / the unfiltered visitors (`everyone`), each quotient rounded
    once: Polars divides a column by a scalar through its reciprocal on some frame layouts
    (3 / 5 -> 0.6000000000000001), which would make the answer depend on how the frame was built
    (and differ between the engines, trail.clickhouse.reports)."""
    denominator = max(float(everyone), 1.0)
    cr = df["visitors"].to_numpy().astype(np.float64) / denominator
    return df.with_columns(cr=pl.Series(cr, dtype=pl.Float64))


def events(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/events: one entry per event name with its metadata keys."""
    rows = rows_for(data_dir, f)
    rolled = rollup_events.event_stats(rows)
    if rolled is not None:
        all_visitors = rollup_totals.totals_frame(rows.unfiltered(), ["visitors"])
        if all_visitors is None:
            all_visitors = rows.unfiltered().sessions(["visitor_id", "sign"]).select(m.visitors())
        df, total = pl.collect_all([_search(rolled.lazy(), f, "name"), all_visitors])
        df = with_cr(df, int(total["visitors"][0] or 0))
    else:
        meta_keys = _META_KEYS.unique().sort().alias("meta_keys")
        df = _event_stats(rows, [pl.col("event_name").alias("name")], [meta_keys])
    df = sort_and_page(df, f, EVENT_SORTS, "visitors", "name")
    return df.select("name", "count", "visitors", "views", "cr", "average_duration_seconds",
                     "meta_keys").to_dicts()  # fmt: skip


def event_meta(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/event/meta: one event's values of one metadata key."""
    if "event_name" not in f.fields:
        raise FilterError("event", "required: the event to break down")
    if not f.event_meta_key:
        raise FilterError("event_meta_key", "required: the metadata key to break down")
    rows = rows_for(data_dir, f)
    value = pair_value("event_meta_keys", "event_meta_values", f.event_meta_key)
    df = _event_stats(rows, [pl.col("event_name").alias("name"), value.alias("meta_value")])
    df = sort_and_page(df, f, (*EVENT_SORTS, "meta_value"), "visitors", "meta_value")
    return df.select("name", "count", "visitors", "views", "cr", "average_duration_seconds",
                     "meta_value").to_dicts()  # fmt: skip


def event_list(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/event/list: events grouped by name and full metadata, by count."""
    rows = rows_for(data_dir, f)
    ev = rows.events(["event_name", "visitor_id", "event_meta_keys", "event_meta_values"])
    df = (
        _search(ev, f, "event_name")
        .group_by("event_name", "event_meta_keys", "event_meta_values")
        .agg(
            pl.col("visitor_id").n_unique().cast(pl.Int64).alias("visitors"),
            pl.len().cast(pl.Int64).alias("count"),
        )
        .collect()
    )
    return event_list_answer(df, f)


def event_list_answer(df: pl.DataFrame, f: Filter) -> list[dict[str, Any]]:
    """event/list's answer from its grouped rows (event_name, event_meta_keys,
    event_meta_values, visitors, count), sorted and paged; shared with trail.clickhouse."""
    # Ties (same count, visitors and name) are ordered by the metadata, so pages are stable.
    meta = pl.concat_str(
        pl.col("event_meta_keys").list.join("\x1f"),
        pl.col("event_meta_values").list.join("\x1f"),
        separator="\x1e",
    )
    df = df.sort(
        [pl.col("count"), pl.col("visitors"), pl.col("event_name"), meta],
        descending=[True, True, False, False],
    )
    df = df.slice(f.offset, f.limit)
    return [
        {
            "name": r["event_name"],
            "meta": dict(zip(r["event_meta_keys"], r["event_meta_values"], strict=False)),
            "visitors": r["visitors"],
            "count": r["count"],
        }
        for r in df.iter_rows(named=True)
    ]


def event_pages(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/event/page: the pages an event was fired on, with page-style metrics."""
    if "event_name" not in f.fields:
        raise FilterError("event", "required: the event whose pages to list")
    rows = rows_for(data_dir, f)
    ev = _search(rows.events([*KEYS, "path", "title", "time"]), f, "path")
    pairs = ev.select([*KEYS, "path"]).unique()
    stats = ev.group_by("path").agg(
        latest(pl.col("title")),  # the latest event's (of equal times, the greatest title)
        pl.col("visitor_id").n_unique().cast(pl.Int64).alias("visitors"),
        m.session_key().n_unique().cast(pl.Int64).alias("sessions"),
    )
    views = (
        rows.unfiltered()
        .page_views([*KEYS, "path"])
        .join(pairs, on=[*KEYS, "path"], how="semi")
        .group_by("path")
        .agg(pl.len().cast(pl.Int64).alias("views"))
    )
    bounces = (
        pairs.join(_session_stats(rows), on=KEYS, how="inner")
        .group_by("path")
        .agg(pl.col("session_bounces").sum().alias("bounces"))
    )
    queries = [
        stats.join(views, on="path", how="left").join(bounces, on="path", how="left"),
        _unfiltered_totals(rows),
    ]
    if f.include_avg_time_on_page:
        queries.append(_time_on_page(rows, ["path"]))
    frames = pl.collect_all(queries)
    tot = frames[1].row(0, named=True)
    df = frames[0].with_columns(
        pl.col("views").fill_null(0).cast(pl.Int64), pl.col("bounces").fill_null(0)
    )
    df = df.with_columns(
        relative_visitors=m.rate_expr(pl.col("visitors"), tot["visitors"] or 0),
        relative_views=m.rate_expr(pl.col("views"), tot["views"] or 0),
        bounce_rate=m.rate_expr(pl.col("bounces"), pl.col("sessions")),
    )
    if f.include_avg_time_on_page:
        df = df.join(frames[2], on="path", how="left")
    else:
        df = df.with_columns(average_time_spent_seconds=pl.lit(0, pl.Int64))
    df = df.with_columns(pl.col("average_time_spent_seconds").fill_null(0))
    cols = ["path", "title", "visitors", "views", "sessions", "bounces", "relative_visitors",
            "relative_views", "bounce_rate", "average_time_spent_seconds"]  # fmt: skip
    df = sort_and_page(df, f, tuple(cols), "visitors", "path")
    return df.select(cols).to_dicts()

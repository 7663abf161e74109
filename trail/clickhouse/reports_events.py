"""Event pages, tags, goals, funnels and filter options as ClickHouse SQL, answering as
trail.stats.events, trail.stats.tags, trail.stats.goals and trail.stats.options answer.

Rows and conditions come from trail.clickhouse.rows, the metrics and the shape of each answer
from trail.clickhouse.reports and the embedded engine's own sorting functions. Goals and funnels
take their definitions as read from the meta store (trail.services.statistics passes them where
the other reports get the site).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from trail.clickhouse import reports
from trail.clickhouse.reports import (
    _SESSION_ID,
    _average_times,
    _frame,
    _rows,
    _search,
    _unfiltered_totals,
)
from trail.clickhouse.rows import KEYS, Params, Rows
from trail.stats import goals as goal_reports
from trail.stats import metrics as m
from trail.stats.filters import Filter, FilterError
from trail.stats.options import MAX_OPTIONS, OPTIONS
from trail.stats.pages import sort_and_page
from trail.stats.tags import _sort_and_page as sort_tags

_EVENT_PAGE_COLUMNS = ("path", "title", "visitors", "views", "sessions", "bounces",
                       "relative_visitors", "relative_views", "bounce_rate",
                       "average_time_spent_seconds")  # fmt: skip


# -- event/page -------------------------------------------------------------------------------


def event_pages(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/event/page: the pages an event was fired on (trail.stats.events.event_pages):
    visitors and sessions of the matching events per path, the views of the path in those
    sessions, and the bounces of those sessions."""
    if "event_name" not in f.fields:
        raise FilterError("event", "required: the event whose pages to list")
    r = Rows(f, database)
    times = _average_times(client, r, ("path",))
    ev = (
        f"SELECT {KEYS}, path, title, time FROM {r.table('events')} "
        f"WHERE {r.events()} AND {_search(r.p, f, 'path')}"
    )
    pairs = f"SELECT DISTINCT {KEYS}, path FROM ({ev})"
    stats_sql = (
        f"SELECT path, argMax(title, (time, title)) AS title, uniqExact(visitor_id) AS visitors, "
        f"uniqExact({_SESSION_ID}) AS sessions FROM ({ev}) GROUP BY path"
    )
    # the path's views (any filter aside) in the sessions that fired the event there
    views_sql = (
        f"SELECT path, count() AS views FROM {r.table('page_views')} "
        f"WHERE {r.window} AND ({KEYS}, path) IN ({pairs}) GROUP BY path"
    )
    # each session's bounces (its live state's), once per path it fired the event on
    bounced = (
        f"SELECT {KEYS}, sum(is_bounce * sign) AS b FROM {r.table('sessions')} "
        f"WHERE {r.window} AND ({KEYS}) IN ({r.event_keys()}) GROUP BY {KEYS}"
    )
    bounces_sql = (
        f"SELECT path, sum(b) AS bounces FROM ({pairs}) AS e "
        f"INNER JOIN ({bounced}) AS s USING ({KEYS}) GROUP BY path"
    )
    stats = _rows(client, stats_sql, r.p)
    views = {row["path"]: int(row["views"]) for row in _rows(client, views_sql, r.p)}
    bounces = {row["path"]: int(row["bounces"]) for row in _rows(client, bounces_sql, r.p)}
    t = _unfiltered_totals(client, r)
    rows = [
        {**row, "views": views.get(row["path"], 0), "bounces": bounces.get(row["path"], 0),
         "average_time_spent_seconds": times.get((row["path"],), 0)}
        for row in stats
    ]  # fmt: skip
    schema = {"path": pl.String, "title": pl.String, "visitors": pl.Int64, "sessions": pl.Int64,
              "views": pl.Int64, "bounces": pl.Int64,
              "average_time_spent_seconds": pl.Int64}  # fmt: skip
    df = _frame(rows, schema).with_columns(
        relative_visitors=m.rate_expr(pl.col("visitors"), t["visitors"] or 0),
        relative_views=m.rate_expr(pl.col("views"), t["views"] or 0),
        bounce_rate=m.rate_expr(pl.col("bounces"), pl.col("sessions")),
    )
    df = sort_and_page(df, f, _EVENT_PAGE_COLUMNS, "visitors", "path")
    return df.select(_EVENT_PAGE_COLUMNS).to_dicts()


# -- tags -------------------------------------------------------------------------------------


def _tag_stats(client: Any, r: Rows, keys: list[str]) -> list[dict[str, Any]]:
    """visitors and views per `keys` (key, or key and value) over one row per (matching page
    view, tag), as trail.stats.tags._by: a view counts once for each of its tags."""
    f = r.f
    with_values = "value" in keys
    columns = "visitor_id, tag_keys, tag_values" if with_values else "visitor_id, tag_keys"
    lists = "tag_keys AS key, tag_values AS value" if with_values else "tag_keys AS key"
    conditions = [_search(r.p, f, keys[-1])]
    if with_values and f.tag:
        conditions.append(f"key = {r.p.bind(f.tag, 'String')}")
    group = ", ".join(keys)
    sql = (
        f"SELECT {group}, uniqExact(visitor_id) AS visitors, count() AS views FROM "
        f"(SELECT {columns} FROM {r.table('page_views')} "
        f"WHERE {r.page_views()} AND notEmpty(tag_keys)) ARRAY JOIN {lists} "
        f"WHERE {' AND '.join(conditions)} GROUP BY {group}"
    )
    stats = _rows(client, sql, r.p)
    t = _unfiltered_totals(client, r)
    schema = {**dict.fromkeys(keys, pl.String), "visitors": pl.Int64, "views": pl.Int64}
    df = _frame(stats, schema).with_columns(
        relative_visitors=m.rate_expr(pl.col("visitors"), t["visitors"] or 0),
        relative_views=m.rate_expr(pl.col("views"), t["views"] or 0),
    )
    df = sort_tags(df, f, keys)
    return df.select(*keys, "visitors", "views", "relative_visitors", "relative_views").to_dicts()


def tags(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/tags: visitors and views per tag key."""
    return _tag_stats(client, Rows(f, database), ["key"])


def tag_details(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/tag/details: per value of the tag `tag`, or per (key, value) without it."""
    return _tag_stats(client, Rows(f, database), ["key", "value"])


# -- goals and funnels ------------------------------------------------------------------------

_GOAL_STATS = ("visitors", "views", "cr", "custom_metric_avg", "custom_metric_total")


def goal_stats(
    client: Any, database: str, f: Filter, goals: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """/statistics/goals: each goal's total (trail.stats.goals.goal_stats), with its custom
    metric (the goal's own, else the query's) under the goal's filter."""
    out = []
    for goal in goals:
        t = reports.total(client, database, goal_reports.goal_filter(f, goal))
        out.append({"page_goal": goal, "stats": {k: t[k] for k in _GOAL_STATS}})
    return goal_reports.ranked(f, out)


def _step_keys(r: Rows) -> str:
    """The sessions (visitor_id, session_id) that match a funnel step, as
    trail.stats.goals._step_keys: with page conditions, those of the matching page views; else
    those whose live state matches, and that have a matching event under event conditions."""
    if r.f.page_level:
        return f"SELECT DISTINCT {KEYS} FROM {r.table('page_views')} WHERE {r.page_views()}"
    if r.f.event_level:
        return f"SELECT {KEYS} FROM ({r.live_keys()}) WHERE ({KEYS}) IN ({r.event_keys()})"
    return r.live_keys()


def funnel(client: Any, database: str, f: Filter, definition: dict[str, Any]) -> dict[str, Any]:
    """/statistics/funnel: the visitors of the sessions that match step 1, steps 1 and 2, ...
    (trail.stats.goals.funnel), in one query: each session with the bit of every step it
    matches, step i counting the visitors of the sessions with the first i bits set."""
    p = Params()
    steps = [
        _step_keys(Rows(goal_reports.step_filter(f, step), database, p))
        for step in definition.get("steps", [])
    ]
    if not steps:
        return {"definition": definition, "data": goal_reports.funnel_steps([])}
    matched = " UNION ALL ".join(
        f"SELECT {KEYS}, toUInt32({1 << i}) AS bit FROM ({sql})" for i, sql in enumerate(steps)
    )
    masks = f"SELECT visitor_id, groupBitOr(bit) AS mask FROM ({matched}) GROUP BY {KEYS}"
    counts = ", ".join(
        f"uniqExactIf(visitor_id, bitAnd(mask, {(1 << (i + 1)) - 1}) = {(1 << (i + 1)) - 1}) "
        f"AS s{i}"
        for i in range(len(steps))
    )
    row = _rows(client, f"SELECT {counts} FROM ({masks})", p)[0]
    visitors = [int(row[f"s{i}"] or 0) for i in range(len(steps))]
    return {"definition": definition, "data": goal_reports.funnel_steps(visitors)}


# -- options ----------------------------------------------------------------------------------


def options(client: Any, database: str, f: Filter, name: str) -> list[str]:
    """/statistics/options/<name> (trail.stats.options.options): the 200 most frequent
    non-empty values of a column in the window, sorted: a page view's or event's value counted
    once per row, a session column's value once per session with a state in the window (in
    `session_states`, which holds every state, as the embedded engine's rows of sign >= 0)."""
    table, column = OPTIONS[name]
    if name == "tag/value" and not f.tag:
        raise FilterError("tag", "required: the tag whose values to list")
    r = Rows(f.without_dims(), database)
    count = "count()"
    if name == "tag/value":
        source = (
            f"SELECT value AS v FROM {r.table('page_views')} "
            "ARRAY JOIN tag_keys AS key, tag_values AS value "
            f"WHERE {r.window} AND key = {r.p.bind(f.tag, 'String')}"
        )
    elif column in ("event_meta_keys", "tag_keys"):
        source = f"SELECT v FROM {r.table(table)} ARRAY JOIN {column} AS v WHERE {r.window}"
    elif table == "sessions":
        source = (
            f"SELECT {column} AS v, {_SESSION_ID} AS session FROM {r.table('session_states')} "
            f"WHERE {r.window}"
        )
        count = "uniqExact(session)"
    else:
        source = f"SELECT {column} AS v FROM {r.table(table)} WHERE {r.window}"
    sql = (
        f"SELECT v, {count} AS n FROM ({source}) WHERE v != '' AND {_search(r.p, f, 'v')} "
        f"GROUP BY v ORDER BY n DESC, v ASC LIMIT {MAX_OPTIONS}"
    )
    return sorted(row["v"] for row in _rows(client, sql, r.p))


# -- the reports, as backend.SQL_REPORTS takes them --------------------------------------------


# (client, database, filter, site), as trail.clickhouse.backend.SqlReport (which imports this
# module); for goals and funnel the fourth argument is what they read from the meta store.
SqlReport = Callable[[Any, str, Filter, Any], Any]


def _options_report(name: str) -> SqlReport:
    return lambda c, d, f, s: options(c, d, f, name)


SQL_REPORTS: dict[str, SqlReport] = {
    "event/page": lambda c, d, f, s: event_pages(c, d, f),
    "tags": lambda c, d, f, s: tags(c, d, f),
    "tag/details": lambda c, d, f, s: tag_details(c, d, f),
    "goals": lambda c, d, f, goals: goal_stats(c, d, f, goals),
    "funnel": lambda c, d, f, definition: funnel(c, d, f, definition),
    **{f"options/{name}": _options_report(name) for name in OPTIONS},
}

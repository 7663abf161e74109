"""Reports as ClickHouse SQL, one query shape per report, answering as trail.stats answers.

Rows and conditions come from trail.clickhouse.rows (the filter compiled once, every value a
bound parameter). The metrics are trail's (trail.stats.metrics):

- over session rows: visitors are the distinct visitor ids of `session_states` (every state,
  never collapsed), sessions `sum(sign)`, views `sum(page_views * sign)`, bounces
  `sum(is_bounce * sign)` over `sessions`;
- over page views (page conditions, time of day, pages): visitors and sessions are distinct
  ids, views the rows, bounces the distinct sessions among the views whose live state in the
  window bounced.

Sorting, paging and the shape of each answer are the embedded engine's own functions
(trail.stats.pages.sort_and_page and friends), applied to the grouped rows, so both backends
order ties and divide floats the same way. The time on a page pairs each view with the next one
of its session (trail.clickhouse.reports_sessions.average_times), views of one instant in
trail.stats.kernels.TIE_ORDER as in the embedded engine. Custom metrics parse an event metadata
value as the embedded engine does (custom_metrics below).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from trail.clickhouse.rows import BUCKETS, KEYS, Params, Rows, Unsupported, pair_value
from trail.stats import metrics as m
from trail.stats.breakdowns import DIMENSIONS, HOSTNAME_SORTS, _filled, _platform
from trail.stats.buckets import bucket_label, bucket_start, series_starts
from trail.stats.events import EVENT_SORTS, event_list_answer, with_cr
from trail.stats.filters import Filter, FilterError
from trail.stats.pages import PAGE_SORTS, sort_and_page

__all__ = ["Unsupported"]

_SUMS = "sum(sign) AS sessions, sum(page_views * sign) AS views, sum(is_bounce * sign) AS bounces"
_COUNTS = ("visitors", "views", "sessions", "bounces")
_CUSTOM = ("custom_metric_avg", "custom_metric_total")
_SESSION = f"tuple({KEYS})"
# One session as one UInt128 (visitor_id << 32 | session_id): exact, and distinct counts over it
# are several times cheaper than over a tuple.
_SESSION_ID = "bitOr(bitShiftLeft(toUInt128(visitor_id), 32), toUInt128(session_id))"


def _rows(client: Any, sql: str, p: Params) -> list[dict[str, Any]]:
    return list(client.query(sql, parameters=p.values).named_results())


def _one(client: Any, sql: str, p: Params) -> Any:
    return client.query(sql, parameters=p.values).result_rows[0][0]


def _search(p: Params, f: Filter, column: str) -> str:
    """The `search` condition on `column` (case-insensitive contains), "1" without one."""
    if not f.search:
        return "1"
    return f"position(lowerUTF8({column}), {p.bind(f.search.lower(), 'String')}) > 0"


# -- the metrics, grouped by `keys` (SQL expressions AS names) ------------------------------------


def _metrics_by(r: Rows, keys: list[str], where: str = "1", *, views: bool = False) -> str:
    """visitors, sessions, views, bounces per `keys` (trail.stats.sources.metrics_by): over
    page views with page conditions or `views` (time of day), else over session rows. With
    `r.bucket`, keys are its buckets and a bounce counts in the bucket of its live state."""
    group = ", ".join(k.rsplit(" AS ", 1)[-1] for k in keys)
    select = ", ".join(keys)
    select = select + ", " if select else ""
    by = f" GROUP BY {group}" if keys else ""
    if r.f.page_level or views:
        bucketed = r.bucket is not None
        on = f"({BUCKETS[r.bucket]}, {KEYS})" if bucketed and r.bucket else f"({KEYS})"
        bounced = r.bounced_keys(bucketed=bucketed)
        return (
            f"SELECT {select}uniqExact(visitor_id) AS visitors, uniqExact({_SESSION_ID}) AS sessions, "
            f"count() AS views, uniqExactIf({_SESSION_ID}, {on} IN ({bounced})) AS bounces "
            f"FROM {r.table('page_views')} WHERE {r.page_views()} AND {where}{by}"
        )
    states = (
        f"SELECT {select}uniqExact(visitor_id) AS visitors FROM {r.table('session_states')} "
        f"WHERE {r.sessions()} AND {where}{by}"
    )
    sums = f"SELECT {select}{_SUMS} FROM {r.table('sessions')} WHERE {r.sessions()} AND {where}{by}"
    if not keys:
        return f"SELECT * FROM ({sums}) AS s CROSS JOIN ({states}) AS v"
    columns = f"{group}, visitors, sessions, views, bounces"
    # a group of cancel rows alone has sums but no visitor: the outer join keeps both sides
    return f"SELECT {columns} FROM ({sums}) AS s FULL OUTER JOIN ({states}) AS v USING ({group})"


def _unfiltered(r: Rows, what: str = "uniqExact(visitor_id)", table: str = "session_states") -> str:
    return f"SELECT {what} FROM {r.table(table)} WHERE {r.window}"


# -- custom metrics ---------------------------------------------------------------------------

# What Polars' non-strict cast from a string reads as a number (trail.stats.sources.custom_metrics:
# values that do not parse are left out): optional sign and decimal digits for integers, within
# Int64 (toInt64OrNull refuses the rest); for floats decimals with an optional exponent, and
# inf, infinity and nan in any case. ClickHouse reads a few more spellings (`nan(1)`, `1e+`), so
# a value must match first; `precise_float_parsing` rounds every decimal as Polars does.
_NUMBERS = {
    "integer": ("^[+-]?[0-9]+$", "toInt64OrNull"),
    "float": (
        "^[+-]?(([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?|(?i:inf|infinity|nan))$",
        "toFloat64OrNull",
    ),
}
_PRECISE = " SETTINGS precise_float_parsing = 1"


def custom_metrics(r: Rows, keys: list[str]) -> str | None:
    """`total`, `float_total` and `n` of the custom metric's values per `keys` (SQL AS names,
    over event columns) among the matching events, as trail.stats.sources.custom_metrics reads
    them; None without an event name, custom_metric_key and custom_metric_type."""
    f = r.f
    if not (f.custom_metric_key and f.custom_metric_type and "event_name" in f.fields):
        return None
    pattern, parse = _NUMBERS[f.custom_metric_type]
    raw = pair_value(r.p, "event_meta_keys", "event_meta_values", f.custom_metric_key)
    value = f"if(match(raw, {r.p.bind(pattern, 'String')}), {parse}(raw), NULL) AS v"
    where = f"{r.events()} AND has(event_meta_keys, {r.p.bind(f.custom_metric_key, 'String')})"
    select = ", ".join([*keys, f"{raw} AS raw", value])
    group = ", ".join(k.rsplit(" AS ", 1)[-1] for k in keys)
    sums = "sum(v) AS total, sum(toFloat64(v)) AS float_total, count(v) AS n"
    return (
        f"SELECT {group + ', ' if keys else ''}{sums} "
        f"FROM (SELECT {select} FROM {r.table('events')} WHERE {where})"
        f"{f' GROUP BY {group}' if keys else ''}{_PRECISE}"
    )


def custom_values(row: dict[str, Any]) -> dict[str, float]:
    """custom_metric_avg and custom_metric_total of a `custom_metrics` row: the mean of the
    values summed as floats (as Polars' mean), the total summed in the type, as floats."""
    n = int(row.get("n") or 0)
    return {
        "custom_metric_avg": float(row["float_total"]) / n if n else 0.0,
        "custom_metric_total": float(row.get("total") or 0.0),
    }


# -- totals and the visitor series ------------------------------------------------------------


def total(client: Any, database: str, f: Filter) -> dict[str, Any]:
    """/statistics/total, as trail.stats.reports.total answers it."""
    r = Rows(f, database)
    sql = _metrics_by(r, [])
    if not f.is_unfiltered:  # cr's denominator
        sql = f"SELECT *, ({_unfiltered(r.unfiltered())}) AS everyone FROM ({sql})"
    t = _rows(client, sql, r.p)
    row = t[0] if t else {}
    out: dict[str, Any] = {k: int(row.get(k) or 0) for k in _COUNTS}
    all_visitors = out["visitors"] if f.is_unfiltered else int(row.get("everyone") or 0)
    out["bounce_rate"] = m.rate(out["bounces"], out["sessions"])
    out["cr"] = m.rate(out["visitors"], all_visitors)
    return {**out, **custom_totals(client, r)}


def custom_totals(client: Any, r: Rows) -> dict[str, float]:
    """custom_metric_avg and custom_metric_total over `r`'s window (0.0 without a metric)."""
    sql = custom_metrics(r, [])
    return custom_values(_rows(client, sql, r.p)[0] if sql else {})


def visitor(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/visitor: one object per bucket of `f.scale`, empty buckets as zeros."""
    assert f.from_date is not None and f.to_date is not None
    starts = series_starts(f.from_date, f.to_date, f.scale)
    # page and event conditions hold inside each bucket (trail.stats.sources.Rows.by_bucket)
    held = f.scale if (f.page_level or f.event_level) else None
    r = Rows(f, database, bucket=held)
    bucket = f"{BUCKETS[f.scale]} AS bucket"
    by_bucket = _by_start(_rows(client, _metrics_by(r, [bucket]), r.p), f.scale)
    # the matching events of each bucket, their conditions over the whole window (as
    # trail.stats.reports.visitor reads them)
    c = Rows(f, database)
    custom_sql = custom_metrics(c, [bucket])
    custom = _by_start(_rows(client, custom_sql, c.p), f.scale) if custom_sql else {}
    all_by_bucket = by_bucket
    if not f.is_unfiltered:  # cr's denominators
        u = Rows(f.without_dims(), database)
        everyone = f"SELECT {bucket}, uniqExact(visitor_id) AS visitors FROM "
        everyone += f"{u.table('session_states')} WHERE {u.window} GROUP BY bucket"
        all_by_bucket = _by_start(_rows(client, everyone, u.p), f.scale)
    out = []
    for start in starts:
        row = by_bucket.get(start, {})
        item: dict[str, Any] = {"day": None, "week": None, "month": None, "year": None}
        item[f.scale] = bucket_label(start)
        for k in _COUNTS:
            item[k] = int(row.get(k) or 0)
        item["bounce_rate"] = m.rate(item["bounces"], item["sessions"])
        item["cr"] = m.rate(item["visitors"], all_by_bucket.get(start, {}).get("visitors") or 0)
        item.update(custom_values(custom.get(start, {})))
        out.append(item)
    return out


def _by_start(rows: list[dict[str, Any]], scale: str) -> dict[date, dict[str, Any]]:
    return {bucket_start(row["bucket"], scale): row for row in rows}


# -- breakdowns -------------------------------------------------------------------------------


def _frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(
        {c: [row[c] for row in rows] for c in schema}, schema=schema
    )  # one chunk, as the embedded reports divide


def dimension(client: Any, database: str, f: Filter, name: str) -> list[dict[str, Any]]:
    """os, browser, country, ..., utm_*: {visitors, relative_visitors, <fields>}."""
    columns = DIMENSIONS[name]
    r = Rows(f, database)
    group = ", ".join(columns)
    search = _search(r.p, f, columns[-1])
    if f.page_level:
        source, where = "page_views", r.page_views()
    else:
        source, where = "session_states", r.sessions()
    sql = (
        f"SELECT {group}, uniqExact(visitor_id) AS visitors, ({_unfiltered(r.unfiltered())}) "
        f"AS everyone FROM {r.table(source)} WHERE {where} AND {search} GROUP BY {group}"
    )
    rows = _rows(client, sql, r.p)
    everyone = int(rows[0]["everyone"]) if rows else _one(client, _unfiltered(r), r.p)
    df = _frame(rows, {"visitors": pl.Int64, **dict.fromkeys(columns, pl.String)})
    df = df.with_columns(relative_visitors=m.rate_expr(pl.col("visitors"), everyone or 0))
    df = sort_and_page(df, f, ("visitors", "relative_visitors", *columns), "visitors", columns[-1])
    return df.select("visitors", "relative_visitors", *columns).to_dicts()


def platform(client: Any, database: str, f: Filter) -> dict[str, Any]:
    """Desktop and mobile visitors; unknown = total minus both."""
    r = Rows(f, database)
    source, where = (
        ("page_views", r.page_views()) if f.page_level else ("session_states", r.sessions())
    )
    everyone = "0" if f.is_unfiltered else f"({_unfiltered(r.unfiltered())})"
    # The aliases are not column names: ClickHouse would read `desktop` in the WHERE (a
    # platform filter) as the aggregate.
    sql = (
        "SELECT uniqExact(visitor_id) AS n_total, uniqExactIf(visitor_id, desktop) AS n_desktop, "
        f"uniqExactIf(visitor_id, mobile) AS n_mobile, {everyone} AS everyone "
        f"FROM {r.table(source)} WHERE {where}"
    )
    c = _rows(client, sql, r.p)[0]
    total_, desktop, mobile = (int(c[k] or 0) for k in ("n_total", "n_desktop", "n_mobile"))
    return _platform(total_, desktop, mobile, total_ if f.is_unfiltered else int(c["everyone"]))


def referrer(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """Grouped by referrer name with an example referrer (the smallest), by full referrer under
    a referrer filter (trail.stats.breakdowns.referrer)."""
    r = Rows(f, database)
    key = "referrer" if "referrer" in f.fields else "referrer_name"
    other = "referrer" if key == "referrer_name" else "referrer_name"
    search = _search(r.p, f, key)
    counted = _rows(client, _metrics_by(r, [key], search), r.p)
    source, where = (
        ("page_views", r.page_views()) if f.page_level else ("session_states", r.sessions())
    )
    examples_sql = (
        f"SELECT {key}, min({other}) AS example FROM {r.table(source)} "
        f"WHERE {where} AND {search} GROUP BY {key}"
    )
    examples = {row[key]: row["example"] for row in _rows(client, examples_sql, r.p)}
    everyone = _one(client, _unfiltered(r), r.p)
    rows = [
        {**row, other: examples.get(row[key])} for row in counted if int(row["visitors"] or 0) > 0
    ]
    schema = {key: pl.String, other: pl.String, **dict.fromkeys(_COUNTS, pl.Int64)}
    df = _frame(rows, schema).with_columns(
        referrer_icon=pl.lit(""),
        relative_visitors=m.rate_expr(pl.col("visitors"), everyone or 0),
        bounce_rate=m.rate_expr(pl.col("bounces"), pl.col("sessions")),
    )
    allowed = ("visitors", "sessions", "relative_visitors", "bounces", "bounce_rate",
               "referrer", "referrer_name")  # fmt: skip
    df = sort_and_page(df, f, allowed, "visitors", key)
    cols = ["referrer", "referrer_name", "referrer_icon", "visitors", "sessions",
            "relative_visitors", "bounces", "bounce_rate"]  # fmt: skip
    return df.select(cols).to_dicts()


def hostname(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/hostname: visitors, views, sessions and bounces per hostname."""
    r = Rows(f, database)
    counted = _rows(client, _metrics_by(r, ["hostname"], _search(r.p, f, "hostname")), r.p)
    t = _unfiltered_totals(client, r)
    rows = [row for row in counted if int(row["visitors"] or 0) > 0]
    df = _frame(rows, {"hostname": pl.String, **dict.fromkeys(_COUNTS, pl.Int64)})
    df = df.with_columns(
        relative_visitors=m.rate_expr(pl.col("visitors"), t["visitors"] or 0),
        relative_views=m.rate_expr(pl.col("views"), t["views"] or 0),
        bounce_rate=m.rate_expr(pl.col("bounces"), pl.col("sessions")),
    )
    df = sort_and_page(df, f, HOSTNAME_SORTS, "visitors", "hostname")
    return df.select(*HOSTNAME_SORTS).to_dicts()


def _unfiltered_totals(client: Any, r: Rows) -> dict[str, int]:
    u = r.unfiltered()
    sql = (
        f"SELECT ({_unfiltered(u)}) AS visitors, "
        f"({_unfiltered(u, 'sum(page_views * sign)', 'sessions')}) AS views"
    )
    row = _rows(client, sql, r.p)[0]
    return {k: int(row[k] or 0) for k in ("visitors", "views")}


# -- time of day ------------------------------------------------------------------------------

_HOUR = "toHour(time, {tz:String}) AS hour"
_MINUTE = "toMinute(time, {tz:String}) AS minute"
_SLOT = "(toDayOfWeek(time, 0, {tz:String}) - 1) * 24 + toHour(time, {tz:String}) AS slot"


def _by_time(
    client: Any, database: str, f: Filter, key: str, size: int, *, custom: bool = True
) -> list[dict[str, Any]]:
    """The metrics per time part `key` (0..size-1 all present); with `custom`, the custom
    metrics too (weekdays' answer has none)."""
    r = Rows(f, database)
    name = key.rsplit(" AS ", 1)[-1]
    got = _rows(client, _metrics_by(r, [key], views=True), r.p)
    everyone = _one(client, _unfiltered(r), r.p)
    df = _frame(got, {name: pl.Int64, **dict.fromkeys(_COUNTS, pl.Int64)})
    custom_sql = custom_metrics(r, [key]) if custom else None
    per_part = None
    if custom_sql:  # per time part of the matching events (trail.stats.breakdowns._by_time)
        rows = [{name: row[name], **custom_values(row)} for row in _rows(client, custom_sql, r.p)]
        per_part = _frame(rows, {name: pl.Int64, **dict.fromkeys(_CUSTOM, pl.Float64)})
    return _filled(df, [name], [(i,) for i in range(size)], everyone or 0, per_part)


def hours(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """Visitors by local hour, 0..23 all present."""
    return _by_time(client, database, f, _HOUR, 24)


def minutes(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """Visitors by local minute of the hour, 0..59 all present."""
    return _by_time(client, database, f, _MINUTE, 60)


def weekdays(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """Visitors by local weekday (Monday = 0) and hour, 7 x 24 entries."""
    out = _by_time(client, database, f, _SLOT, 7 * 24, custom=False)
    return [
        {"weekday": r["slot"] // 24, "hour": r["slot"] % 24, **{k: r[k] for k in _COUNTS}}
        for r in out
    ]


# -- pages ------------------------------------------------------------------------------------


def page(
    client: Any, database: str, f: Filter, *, group_by_title: bool = False
) -> list[dict[str, Any]]:
    """/statistics/page: per path (and title), sorted, searched and paged."""
    r = Rows(f, database)
    keys = ("path", "title") if group_by_title else ("path",)
    times = _average_times(client, r, keys)
    search = _search(r.p, f, "path")
    where = f"{r.page_views()} AND {search}"
    bounces = f"uniqExactIf({_SESSION_ID}, {_SESSION} IN ({r.bounced_keys()})) AS bounces"
    counts = (
        f"uniqExact(visitor_id) AS visitors, uniqExact({_SESSION_ID}) AS sessions, count() AS views"
    )
    if group_by_title:  # a path's bounces on each of its titles' rows, as the embedded engine
        sql = (
            f"SELECT path, title AS label, {counts} FROM {r.table('page_views')} "
            f"WHERE {where} GROUP BY path, title"
        )
        by_path = f"SELECT path, {bounces} FROM {r.table('page_views')} WHERE {where} GROUP BY path"
        per_path = {row["path"]: int(row["bounces"]) for row in _rows(client, by_path, r.p)}
        stats = [
            {**row, "bounces": per_path.get(row["path"], 0)} for row in _rows(client, sql, r.p)
        ]
    else:
        sql = (
            f"SELECT path, argMax(title, (time, title)) AS label, {counts}, {bounces} "
            f"FROM {r.table('page_views')} WHERE {where} GROUP BY path"
        )
        stats = _rows(client, sql, r.p)
    t = _unfiltered_totals(client, r)
    rows = [{**row, "title": row["label"]} for row in stats]
    for row in rows:
        row["average_time_spent_seconds"] = times.get(tuple(row[k] for k in keys), 0)
    schema = {"path": pl.String, "title": pl.String,
              **dict.fromkeys((*_COUNTS, "average_time_spent_seconds"), pl.Int64)}  # fmt: skip
    df = _frame(rows, schema).with_columns(
        relative_visitors=m.rate_expr(pl.col("visitors"), t["visitors"] or 0),
        relative_views=m.rate_expr(pl.col("views"), t["views"] or 0),
        bounce_rate=m.rate_expr(pl.col("bounces"), pl.col("sessions")),
    )
    df = sort_and_page(df, f, PAGE_SORTS, "visitors", "path")
    cols = ["path", "title", "visitors", "views", "sessions", "bounces", *PAGE_SORTS[6:]]
    return df.select(cols).to_dicts()


def entry_pages(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/page/entry: sessions by entry path; visitors/sessions are the page's totals."""
    return _entry_exit(client, database, f, "entry")


def exit_pages(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/page/exit: sessions by exit path."""
    return _entry_exit(client, database, f, "exit")


def _entry_exit(client: Any, database: str, f: Filter, kind: str) -> list[dict[str, Any]]:
    r = Rows(f, database)
    count, rate_name = ("entries", "entry_rate") if kind == "entry" else ("exits", "exit_rate")
    path, title = f"{kind}_path", f"{kind}_title"
    # live states: a +1 row no -1 row of the same version cancelled (a merge drops both)
    live = (
        f"SELECT any({path}) AS listed, any({title}) AS label, any(time) AS at "
        f"FROM {r.table('sessions')} WHERE {r.sessions()} "
        f"GROUP BY {KEYS}, version HAVING sum(sign) > 0"
    )
    search = _search(r.p, f, "listed")
    counts_sql = (
        f"SELECT listed AS path, argMax(label, (at, label)) AS title, count() AS {count} "
        f"FROM ({live}) WHERE {search} GROUP BY listed"
    )
    counts = _rows(client, counts_sql, r.p)
    # the listed pages' own totals: their views without the page and entry/exit conditions
    pr = Rows(_without_pages(f), database, r.p)
    pages_sql = (
        f"SELECT path, uniqExact(visitor_id) AS visitors, uniqExact({_SESSION_ID}) AS sessions "
        f"FROM {pr.table('page_views')} WHERE {pr.page_views()} GROUP BY path"
    )
    pages = {row["path"]: row for row in _rows(client, pages_sql, r.p)}
    all_sessions = _one(client, _unfiltered(r, "sum(sign)", "sessions"), r.p)
    rows = [
        {
            **row,
            **{k: int(pages.get(row["path"], {}).get(k) or 0) for k in ("visitors", "sessions")},
        }
        for row in counts
    ]
    schema = {"path": pl.String, "title": pl.String, "visitors": pl.Int64,
              "sessions": pl.Int64, count: pl.Int64}  # fmt: skip
    df = _frame(rows, schema).with_columns(
        m.rate_expr(pl.col(count), all_sessions or 0).alias(rate_name)
    )
    cols = ["path", "title", "visitors", "sessions", count, rate_name]
    if kind == "entry":  # the time on the listed page, of the views that pass the filter
        times = _average_times(client, r, ("path",))
        spent = [times.get((path,), 0) for path in df["path"]]
        df = df.with_columns(average_time_spent_seconds=pl.Series(spent, dtype=pl.Int64))
        cols.append("average_time_spent_seconds")
    df = sort_and_page(df, f, tuple(cols), count, "path")
    return df.select(cols).to_dicts()


def _average_times(client: Any, r: Rows, keys: tuple[str, ...]) -> dict[tuple[Any, ...], int]:
    """reports_sessions.average_times with include_avg_time_on_page, else nothing (0 each)."""
    if not r.f.include_avg_time_on_page:
        return {}
    from trail.clickhouse.reports_sessions import average_times  # which imports this module

    return average_times(client, r, keys)


def _without_pages(f: Filter) -> Filter:
    """trail.stats.sources.Rows.without_pages."""
    from dataclasses import replace

    fields = {k: v for k, v in f.fields.items() if k not in ("path", "entry_path", "exit_path")}
    return replace(f, fields=fields, pattern=None, tags={}, tag=None)


# -- events -----------------------------------------------------------------------------------


def _event_stats(
    client: Any, r: Rows, keys: dict[str, str], extra: dict[str, tuple[str, Any]]
) -> pl.DataFrame:
    """count, visitors, views, cr, average_duration_seconds per `keys` (name -> SQL) over the
    matching events (trail.stats.events._event_stats); `extra`: name -> (aggregate, type)."""
    f = r.f
    names = ", ".join(keys)
    ev = (
        f"SELECT {', '.join(f'{sql} AS {name}' for name, sql in keys.items())}, {KEYS}, "
        f"duration_seconds, event_meta_keys FROM {r.table('events')} "
        f"WHERE {r.events()} AND {_search(r.p, f, 'event_name')}"
    )
    more = "".join(f", {sql} AS {name}" for name, (sql, _) in extra.items())
    stats_sql = (
        f"SELECT {names}, count() AS count, uniqExact(visitor_id) AS visitors, "
        f"toInt64(avg(duration_seconds)) AS average_duration_seconds{more} "
        f"FROM ({ev}) GROUP BY {names}"
    )
    stats = _rows(client, stats_sql, r.p)
    # the live views of the sessions that fired a matching event, once per (group, session)
    views_of = (
        f"SELECT {KEYS}, sum(page_views * sign) AS v FROM {r.table('sessions')} "
        f"WHERE {r.window} AND ({KEYS}) IN ({r.event_keys()}) GROUP BY {KEYS}"
    )
    views_sql = (
        f"SELECT {names}, sum(v) AS views FROM (SELECT DISTINCT {names}, {KEYS} FROM ({ev})) "
        f"AS e INNER JOIN ({views_of}) AS s USING ({KEYS}) GROUP BY {names}"
    )
    views = {
        tuple(row[k] for k in keys): int(row["views"]) for row in _rows(client, views_sql, r.p)
    }
    everyone = _one(client, _unfiltered(r), r.p)
    rows = [{**row, "views": views.get(tuple(row[k] for k in keys), 0)} for row in stats]
    schema = {**dict.fromkeys(keys, pl.String), "count": pl.Int64, "visitors": pl.Int64,
              "views": pl.Int64, "average_duration_seconds": pl.Int64,
              **{name: kind for name, (_, kind) in extra.items()}}  # fmt: skip
    return with_cr(_frame(rows, schema), int(everyone or 0))


def events(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/events: one entry per event name with its metadata keys."""
    r = Rows(f, database)
    meta_keys = ("arraySort(groupUniqArrayArray(event_meta_keys))", pl.List(pl.String))
    df = _event_stats(client, r, {"name": "event_name"}, {"meta_keys": meta_keys})
    df = sort_and_page(df, f, EVENT_SORTS, "visitors", "name")
    return df.select("name", "count", "visitors", "views", "cr", "average_duration_seconds",
                     "meta_keys").to_dicts()  # fmt: skip


def event_meta(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/event/meta: one event's values of one metadata key."""
    if "event_name" not in f.fields:
        raise FilterError("event", "required: the event to break down")
    if not f.event_meta_key:
        raise FilterError("event_meta_key", "required: the metadata key to break down")
    r = Rows(f, database)
    value = pair_value(r.p, "event_meta_keys", "event_meta_values", f.event_meta_key)
    df = _event_stats(client, r, {"name": "event_name", "meta_value": value}, {})
    df = sort_and_page(df, f, (*EVENT_SORTS, "meta_value"), "visitors", "meta_value")
    return df.select("name", "count", "visitors", "views", "cr", "average_duration_seconds",
                     "meta_value").to_dicts()  # fmt: skip


def event_list(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/event/list: events grouped by name and full metadata, by count."""
    r = Rows(f, database)
    group = "event_name, event_meta_keys, event_meta_values"
    sql = (
        f"SELECT {group}, uniqExact(visitor_id) AS visitors, count() AS count "
        f"FROM {r.table('events')} WHERE {r.events()} AND {_search(r.p, f, 'event_name')} "
        f"GROUP BY {group}"
    )
    strings = pl.List(pl.String)
    schema = {"event_name": pl.String, "event_meta_keys": strings, "event_meta_values": strings,
              "visitors": pl.Int64, "count": pl.Int64}  # fmt: skip
    df = _frame(_rows(client, sql, r.p), schema)
    return event_list_answer(df, f)

"""Session and comparison reports as ClickHouse SQL: growth, overview, active visitors, the
average session and page durations, the session list and one session's details.

Each answers as its embedded counterpart (trail.stats.reports, trail.stats.pages,
trail.stats.sessions) answers: the rows come from trail.clickhouse.rows, the metrics from
trail.clickhouse.reports, and the last steps (averaging days, sorting, stamping times) are the
embedded engine's own functions.

The time on a page is the duration of the next page view of its session; views of a session
at one instant follow each other in trail.stats.kernels.TIE_ORDER (their duration, path,
title and tags), in both engines. A session's details order the rows at one instant by their
columns too (trail.stats.sessions.details_in_order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from trail.clickhouse import reports
from trail.clickhouse.reports import _metrics_by, _rows, _search, _unfiltered
from trail.clickhouse.rows import KEYS, Rows, field_sql
from trail.stats import metrics as m
from trail.stats.buckets import bucket_starts, series_starts
from trail.stats.filters import Filter, FilterError
from trail.stats.kernels import TIE_ORDER
from trail.stats.reports import _scaled_averages, dates_of, overview_filter
from trail.stats.sessions import _PV_FIELDS, SESSION_FIELDS, _stamp, details_in_order

SqlReport = Callable[[Any, str, Filter, Any], Any]  # as trail.clickhouse.backend.SqlReport
_DAY = "toDate(time, {tz:String})"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _at_ms(value: datetime) -> datetime:
    """`value` cut to the millisecond as the embedded scans cut it (trail.stats.scan._ms)."""
    return _EPOCH + timedelta(milliseconds=int(value.timestamp() * 1000))


def _int(client: Any, sql: str, r: Rows) -> int:
    return int(client.query(sql, parameters=r.p.values).result_rows[0][0] or 0)


# -- totals of a window: growth and overview ---------------------------------------------------


def _total(client: Any, r: Rows, *, custom: bool = True) -> dict[str, Any]:
    """trail.stats.reports.total_for_rows over `r`'s window (reports.total, any window); without
    `custom` no custom metrics (overview's answer has none)."""
    sql = _metrics_by(r, [])
    if not r.f.is_unfiltered:  # cr's denominator
        sql = f"SELECT *, ({_unfiltered(r.unfiltered())}) AS everyone FROM ({sql})"
    got = _rows(client, sql, r.p)
    row = got[0] if got else {}
    out: dict[str, Any] = {k: int(row.get(k) or 0) for k in reports._COUNTS}
    everyone = out["visitors"] if r.f.is_unfiltered else int(row.get("everyone") or 0)
    out["bounce_rate"] = m.rate(out["bounces"], out["sessions"])
    out["cr"] = m.rate(out["visitors"], everyone)
    return {**out, **reports.custom_totals(client, r)} if custom else out


def _previous(f: Filter, database: str, now: datetime | None = None) -> Rows:
    """The window growth compares with (trail.stats.reports.previous_rows): the previous range
    of equal length, or for one day the same weekday a week earlier, up to the current time of
    day while the day is today."""
    first, last = dates_of(f)
    days = (last - first).days + 1
    shift = timedelta(days=7 if days == 1 else days)
    previous = replace(f, from_date=first - shift, to_date=last - shift)
    start, end = previous.window()
    cur_start, cur_end = f.window()
    now = now or datetime.now(UTC)
    if days == 1 and cur_start <= now < cur_end:
        end = _at_ms(now - timedelta(days=7))
    return Rows(previous, database, start=start, end=end)


def _spent(r: Rows, columns: tuple[str, ...] = ()) -> str:
    """Per page view the time on it (`spent`, the next view's duration in its session among
    the window's views, those of one instant in TIE_ORDER) and `kept` (it matches the page
    conditions), with the view's `columns`: the page views of
    trail.stats.pages.times_on_page, before its filter."""
    f, where, kept = r.f, r.page_views(with_paths=False), "1"
    if f.page_level:  # the next view may be of any page: every view of the matching sessions
        where += f" AND ({KEYS}) IN ({r.page_keys()})"
        parts = r.page_parts("tag_keys", "tag_values")
        if "path" in f.fields:
            parts.append(field_sql(r.p, "path", f.fields["path"]))
        kept = " AND ".join(f"({p})" for p in parts) or "1"
    following = f"PARTITION BY visitor_id, session_id ORDER BY time, {', '.join(TIE_ORDER)}"
    selected = "".join(f"{c}, " for c in columns)
    return (
        f"SELECT time, {selected}leadInFrame(duration_seconds, 1, toUInt32(0)) OVER ({following} "
        f"ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS spent, {kept} AS kept "
        f"FROM {r.table('page_views')} WHERE {where}"
    )


def average_times(client: Any, r: Rows, keys: tuple[str, ...]) -> dict[tuple[Any, ...], int]:
    """average_time_spent_seconds per `keys` (the path, or path and title) of the matching
    views whose path contains the search (trail.stats.pages._time_on_page): the mean of their
    non-zero times on page, rounded half to even (trail.stats.metrics.average_seconds)."""
    group = ", ".join(keys)
    counted = f"kept AND spent > 0 AND {_search(r.p, r.f, 'path')}"
    sql = (
        f"SELECT {group}, sumIf(spent, {counted}) AS total, countIf({counted}) AS n "
        f"FROM ({_spent(r, keys)}) GROUP BY {group}"
    )
    got = _rows(client, sql, r.p)
    return {
        tuple(row[k] for k in keys): round(int(row["total"]) / int(row["n"]))
        for row in got
        if int(row["n"])
    }


def _time_spent(client: Any, r: Rows) -> int:
    """The time behind time_spent_growth (trail.stats.reports._time_spent): the matching
    events' durations under an event name filter, else the time on the matching pages under a
    path filter, else the durations of the sessions that pass."""
    f = r.f
    if "event_name" in f.fields:
        return _int(client, f"SELECT sum(duration_seconds) FROM {r.table('events')} "
                            f"WHERE {r.events()}", r)  # fmt: skip
    if "path" in f.fields:
        sql = f"SELECT sumIf(spent, kept AND spent > 0) FROM ({_spent(r)})"
        return _int(client, sql, r)
    sql = f"SELECT sum(duration_seconds * sign) FROM {r.table('sessions')} WHERE {r.sessions()}"
    return _int(client, sql, r)


def growth(client: Any, database: str, f: Filter, now: datetime | None = None) -> dict[str, Any]:
    """/statistics/growth: this range against the previous one."""
    cur_rows, prev_rows = Rows(f, database), _previous(f, database, now)
    cur, prev = _total(client, cur_rows), _total(client, prev_rows)
    spent = _time_spent(client, cur_rows), _time_spent(client, prev_rows)
    return {
        "visitors_growth": m.growth(cur["visitors"], prev["visitors"]),
        "views_growth": m.growth(cur["views"], prev["views"]),
        "sessions_growth": m.growth(cur["sessions"], prev["sessions"]),
        "bounces_growth": m.growth(cur["bounce_rate"], prev["bounce_rate"]),
        "time_spent_growth": m.growth(*spent),
        "cr_growth": m.growth(cur["cr"], prev["cr"]),
        "custom_metric_avg_growth": m.growth(cur["custom_metric_avg"], prev["custom_metric_avg"]),
        "custom_metric_total_growth": m.growth(
            cur["custom_metric_total"], prev["custom_metric_total"]
        ),
    }


def overview(client: Any, database: str, f: Filter, now: datetime | None = None) -> dict[str, Any]:
    """/statistics/overview: totals, growth and the daily series (default: the last 7 days)."""
    f = overview_filter(f, now)
    series_starts(*dates_of(f), "day")  # a series too long for an answer fails before any query
    t = _total(client, Rows(f, database), custom=False)
    prev = _total(client, _previous(f, database, now), custom=False)
    visitors_growth = m.growth(t["visitors"], prev["visitors"])
    return {
        "visitors": t["visitors"],
        "views": t["views"],
        "visitors_growth": visitors_growth,
        "visitor_growth": visitors_growth,
        "views_growth": m.growth(t["views"], prev["views"]),
        "visitors_time_series": reports.visitor(client, database, replace(f, scale="day")),
    }


# -- active visitors ----------------------------------------------------------------------------


def active_window(f: Filter, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of /statistics/active: the last `start` seconds."""
    end = (now or datetime.now(UTC)) + timedelta(seconds=1)
    return end - timedelta(seconds=(f.start or 600) + 1), end


def active_dates(f: Filter, now: datetime | None = None) -> Filter:
    """`f` with the local dates its active window spans (with a minute to spare), which
    trail.clickhouse.backend checks deletions over: active ignores `from` and `to`."""
    start, end = active_window(f, now)
    first = start.astimezone(f.tz).date()
    last = (end + timedelta(minutes=1)).astimezone(f.tz).date()
    return replace(f, from_date=first, to_date=last, from_time=None, to_time=None)


def active(client: Any, database: str, f: Filter, now: datetime | None = None) -> dict[str, Any]:
    """/statistics/active: visitors of the last `start` seconds, per page and per country."""
    start, end = active_window(f, now)
    r = Rows(f, database, start=_at_ms(start), end=_at_ms(end))
    pages_sql = (
        f"SELECT path, argMax(title, (time, title)) AS label, uniqExact(visitor_id) AS visitors "
        f"FROM {r.table('page_views')} WHERE {r.page_views()} GROUP BY path"
    )
    listed = [{**row, "title": row["label"]} for row in _rows(client, pages_sql, r.p)]
    schema = {"path": pl.String, "title": pl.String, "visitors": pl.Int64}
    pages = reports._frame(listed, schema)
    pages = pages.sort(["visitors", "path"], descending=[True, False])
    by_country = _rows(client, _metrics_by(r, ["country_code"]), r.p)
    countries = reports._frame(by_country, {"country_code": pl.String, "visitors": pl.Int64})
    countries = countries.filter(pl.col("visitors") > 0).sort(
        ["visitors", "country_code"], descending=[True, False]
    )
    total = _rows(client, _metrics_by(r, []), r.p)
    visitors = int(total[0]["visitors"] or 0) if total else 0
    return {
        "stats": pages.select("path", "title", "visitors").to_dicts(),
        "countries": [
            {
                "visitors": c["visitors"],
                "relative_visitors": m.rate(c["visitors"], visitors),
                "country_code": c["country_code"],
            }
            for c in countries.iter_rows(named=True)
        ],
        "visitors": visitors,
    }


# -- durations ----------------------------------------------------------------------------------


def _daily(rows: list[dict[str, Any]], days: list[date]) -> pl.DataFrame:
    """`day`, `total`, `n` rows as the frame _scaled_averages reads: `bucket`, the day's index."""
    index = {d: i for i, d in enumerate(days)}
    kept = [r for r in rows if r["day"] in index]
    return pl.DataFrame(
        {
            "bucket": [index[r["day"]] for r in kept],
            "total": [int(r["total"]) for r in kept],
            "n": [int(r["n"]) for r in kept],
        },
        schema={"bucket": pl.Int64, "total": pl.Int64, "n": pl.Int64},
    )


def session_duration(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/duration/session: per bucket, the average session duration in seconds (per
    day sum(duration * sign) / sum(sign) of the sessions with a duration, then averaged)."""
    first, last = dates_of(f)
    starts, days = series_starts(first, last, f.scale), bucket_starts(first, last, "day")
    # page and event conditions hold inside each day (trail.stats.sources.Rows.by_bucket)
    r = Rows(f, database, bucket="day" if (f.page_level or f.event_level) else None)
    sql = (
        f"SELECT {_DAY} AS day, sum(duration_seconds * sign) AS total, sum(sign) AS n "
        f"FROM {r.table('sessions')} WHERE {r.sessions()} AND duration_seconds > 0 GROUP BY day"
    )
    return _scaled_averages(f, _daily(_rows(client, sql, r.p), days), days, starts)


def page_duration(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/duration/page: per bucket, the average time on the filtered pages (per day
    of the view, then averaged over the days of each bucket)."""
    first, last = dates_of(f)
    starts, days = series_starts(first, last, f.scale), bucket_starts(first, last, "day")
    r = Rows(f, database)
    sql = (
        f"SELECT {_DAY} AS day, sumIf(spent, kept AND spent > 0) AS total, "
        f"countIf(kept AND spent > 0) AS n FROM ({_spent(r)}) GROUP BY day"
    )
    daily = _rows(client, sql, r.p)
    ff = f.fields.get("path")
    path = ff.eq[0] if ff is not None and len(ff.eq) == 1 and not ff.neq else ""
    return _scaled_averages(f, _daily(daily, days), days, starts, path=path)


# -- sessions -----------------------------------------------------------------------------------

_STATE = f"{KEYS}, version"


def session_list(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/session/list: live sessions matching the filter, latest first (a live state:
    a (visitor, session, version) whose rows in the window sum `sign` to more than 0)."""
    r = Rows(f, database)
    page = (
        f"SELECT {_STATE}, any(time) AS at FROM {r.table('sessions')} "
        f"WHERE {r.sessions()} AND {_search(r.p, f, 'exit_path')} "
        f"GROUP BY {_STATE} HAVING sum(sign) > 0 "
        f"ORDER BY at DESC, visitor_id DESC, session_id DESC "
        f"LIMIT {r.p.bind(f.limit, 'UInt64')} OFFSET {r.p.bind(f.offset, 'UInt64')}"
    )
    sql = (
        f"SELECT {', '.join(SESSION_FIELDS)} FROM {r.table('sessions')} "
        f"WHERE {r.window} AND sign > 0 AND ({_STATE}, time) IN (SELECT * FROM ({page})) "
        f"LIMIT 1 BY {_STATE}"
    )
    got = sorted(
        _rows(client, sql, r.p),
        key=lambda s: (s["time"], s["visitor_id"], s["session_id"]),
        reverse=True,
    )
    out = []
    for s in got:
        item = {k: s[k] for k in SESSION_FIELDS}
        item["visitor_id"] = str(s["visitor_id"])  # u64 does not survive a JS number
        item["time"], item["start"] = _stamp(s["time"]), _stamp(s["start"])
        item["referrer_icon"] = ""
        out.append(item)
    return out


def session_details(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/session/details: page views and events of one session, put in order as the
    embedded engine does (trail.stats.sessions.details_in_order)."""
    if f.visitor_id is None:
        raise FilterError("visitor_id", "required together with session_id")
    if f.session_id is None:
        raise FilterError("session_id", "required together with visitor_id")
    r = Rows(f.without_dims(), database)
    one = (
        f"{r.window} AND visitor_id = {r.p.bind(f.visitor_id, 'UInt64')} "
        f"AND session_id = {r.p.bind(f.session_id, 'UInt32')}"
    )
    pv_sql = (
        f"SELECT {', '.join(_PV_FIELDS)}, tag_keys, tag_values FROM {r.table('page_views')} "
        f"WHERE {one} ORDER BY time"
    )
    ev_sql = (
        f"SELECT {', '.join(_PV_FIELDS)}, event_name, event_meta_keys, event_meta_values "
        f"FROM {r.table('events')} WHERE {one} ORDER BY time"
    )
    return details_in_order(_rows(client, pv_sql, r.p), _rows(client, ev_sql, r.p))


SQL_REPORTS: dict[str, SqlReport] = {
    "growth": lambda c, d, f, s: growth(c, d, f),
    "overview": lambda c, d, f, s: overview(c, d, f),
    "active": lambda c, d, f, s: active(c, d, f),
    "duration/session": lambda c, d, f, s: session_duration(c, d, f),
    "duration/page": lambda c, d, f, s: page_duration(c, d, f),
    "session/list": lambda c, d, f, s: session_list(c, d, f),
    "session/details": lambda c, d, f, s: session_details(c, d, f),
}

"""TinyTrail's reports as ClickHouse SQL, answering as trail.stats.tinytrail_reports answers.

Each function mirrors the one of the same name there, with (client, database) in place of the
data directory. Where a TinyTrail report reshapes a Pirsch report (totals, pages, entry and exit
pages, the visitor series, events), it calls that report's SQL (trail.clickhouse.reports); what
TinyTrail adds (average session duration, coarse channels, referrer domains, device groups,
ordered funnels, realtime counts, unique page views per day, bot counts from `requests`) is
written here over the same compiled filter (trail.clickhouse.rows). Sorting and rounding are
the embedded functions' own, applied to the grouped rows.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from trail.clickhouse import reports
from trail.clickhouse.reports import _SESSION_ID, _metrics_by, _one, _rows
from trail.clickhouse.rows import BUCKETS, KEYS, Rows, field_sql
from trail.core import coarse_channel
from trail.stats.buckets import series_starts
from trail.stats.filters import FieldFilter, Filter
from trail.stats.tinytrail_reports import (
    _HOST,
    ALL,
    BUILTIN_EVENTS,
    NOT_BOT_REASONS,
    REALTIME_SECONDS,
    _with_field,
)

_DAY = BUCKETS["day"] + " AS day"


def _by_day(rows: list[dict[str, Any]], days: list[date], value: str) -> list[int]:
    got = {row["day"]: int(row[value] or 0) for row in rows}
    return [got.get(d, 0) for d in days]


def _days(f: Filter) -> list[date]:
    assert f.from_date is not None and f.to_date is not None
    return series_starts(f.from_date, f.to_date, "day", field="start_date")


# -- bots -------------------------------------------------------------------------------------


def bot_requests(r: Rows) -> str:
    """WHERE of the bot rows of `requests` in the window, with the path conditions
    (trail.stats.tinytrail_reports.bot_requests)."""
    f, p = r.f, r.p
    parts = [
        r.window,
        "bot",
        f"NOT has({p.bind(list(NOT_BOT_REASONS), 'Array(String)')}, bot_reason)",
        "NOT startsWith(bot_reason, 'filter_')",
    ]
    if "path" in f.fields:
        parts.append(field_sql(p, "path", f.fields["path"]))
    if f.pattern:
        parts.append(f"match(path, {p.bind(f.pattern, 'String')})")
    return " AND ".join(f"({part})" for part in parts)


# -- summary ----------------------------------------------------------------------------------


def average_session_seconds(client: Any, r: Rows) -> int:
    """Average duration of the sessions that lasted, over the whole range."""
    sql = (
        f"SELECT sum(duration_seconds * sign) AS t, sum(sign) AS n FROM {r.table('sessions')} "
        f"WHERE {r.sessions()} AND duration_seconds > 0"
    )
    row = _rows(client, sql, r.p)[0]
    n = int(row["n"] or 0)
    return round(int(row["t"] or 0) / n) if n else 0


def summary(client: Any, database: str, f: Filter, include_bots: bool = False) -> dict[str, float]:
    """visits, unique_visitors, pageviews, bounce_rate (%), avg_session_duration_sec."""
    t = reports.total(client, database, f)
    r = Rows(f, database)
    out: dict[str, float] = {
        "visits": t["sessions"],
        "unique_visitors": t["visitors"],
        "pageviews": t["views"],
        "bounce_rate": round(t["bounce_rate"] * 100, 2),
        "avg_session_duration_sec": average_session_seconds(client, r),
    }
    if include_bots:
        sql = (
            "SELECT uniqExact(visitor_id) AS visitors, countIf(event_name = '') AS views "
            f"FROM {r.table('requests')} WHERE {bot_requests(r)}"
        )
        b = _rows(client, sql, r.p)[0]
        out["visits"] += int(b["visitors"] or 0)
        out["unique_visitors"] += int(b["visitors"] or 0)
        out["pageviews"] += int(b["views"] or 0)
    return out


# -- pages ------------------------------------------------------------------------------------


def pages(
    client: Any, database: str, f: Filter, offset: int, limit: int, include_bots: bool = False
) -> list[dict[str, Any]]:
    """Per path: pageviews and unique pageviews (sessions), by pageviews desc then path."""
    if not include_bots:
        g = replace(f, sort="views", direction="desc", offset=offset, limit=limit)
        return [
            {"path": r["path"], "pageviews": r["views"], "uniquePageviews": r["sessions"]}
            for r in reports.page(client, database, g)
        ]
    g = replace(f, sort="views", direction="desc", offset=0, limit=ALL)
    counts = {r["path"]: [r["views"], r["sessions"]] for r in reports.page(client, database, g)}
    r = Rows(f, database)
    sql = (
        f"SELECT path, count() AS n, uniqExact(visitor_id) AS v FROM {r.table('requests')} "
        f"WHERE {bot_requests(r)} AND event_name = '' GROUP BY path"
    )
    for row in _rows(client, sql, r.p):
        c = counts.setdefault(row["path"], [0, 0])
        c[0] += int(row["n"])
        c[1] += int(row["v"])
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return [
        {"path": p, "pageviews": c[0], "uniquePageviews": c[1]}
        for p, c in ordered[offset : offset + limit]
    ]


# -- sources and devices --------------------------------------------------------------------------


def _sessions_by(
    client: Any, r: Rows, keys: list[str], *, positive: bool = True
) -> list[dict[str, Any]]:
    """Rows of (key names..., sessions) (trail.stats.sources.metrics_by), with `positive` only
    those with sessions > 0."""
    names = [k.rsplit(" AS ", 1)[-1] for k in keys]
    got = [
        {**{n: row[n] for n in names}, "sessions": int(row["sessions"] or 0)}
        for row in _rows(client, _metrics_by(r, keys), r.p)
    ]
    return [row for row in got if row["sessions"] > 0 or not positive]


def _ranked(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """By sessions desc, then the keys (strings, in code point order as Polars sorts them)."""
    return sorted(rows, key=lambda row: (-row["sessions"], *(row[k] for k in keys)))


def sources(
    client: Any, database: str, f: Filter, group_by: str, offset: int, limit: int
) -> list[dict[str, Any]]:
    """Visits by coarse channel, by referring domain, or by (utm source, medium, campaign)."""
    r = Rows(f, database)
    if group_by == "channel":
        totals: dict[str, int] = {}
        for row in _sessions_by(client, r, ["channel"], positive=False):
            name = coarse_channel(row["channel"] or "")
            totals[name] = totals.get(name, 0) + row["sessions"]
        ordered = sorted((kv for kv in totals.items() if kv[1] > 0), key=lambda kv: (-kv[1], kv[0]))
        return [{"channel": k, "visits": v} for k, v in ordered[offset : offset + limit]]
    if group_by == "domain":
        host = f"lowerUTF8(extract(referrer, {r.p.bind(_HOST, 'String')})) AS domain"
        got = [
            {"referrer": row["domain"], "sessions": row["sessions"]}
            for row in _sessions_by(client, r, [host])
            if row["domain"]
        ]
        keys = ["referrer"]
    else:
        keys = ["utm_source", "utm_medium", "utm_campaign"]
        got = [row for row in _sessions_by(client, r, keys) if any(row[k] for k in keys)]
    names = {"utm_source": "utmSource", "utm_medium": "utmMedium", "utm_campaign": "utmCampaign"}
    return [
        {**{names.get(k, k): row[k] for k in keys}, "visits": row["sessions"]}
        for row in _ranked(got, keys)[offset : offset + limit]
    ]


_DEVICES = {
    "device_types": "multiIf(mobile, 'mobile', desktop, 'desktop', 'unknown') AS deviceType",
    "browsers": "if(browser = '', 'unknown', browser) AS browserFamily",
    "os_families": "if(os = '', 'unknown', os) AS osFamily",
    "screen_resolutions": (
        "multiIf(screen_width <= 0, 'unknown', screen_width <= 375, '320-375', "
        "screen_width <= 768, '376-768', screen_width <= 1024, '769-1024', "
        "screen_width <= 1440, '1025-1440', '1441+') AS bucket"
    ),
}


def devices(client: Any, database: str, f: Filter) -> dict[str, list[dict[str, Any]]]:
    """Visits by device type, browser, OS and screen bucket, each by visits desc then name."""
    out = {}
    for key, expr in _DEVICES.items():
        r = Rows(f, database)
        name = expr.rsplit(" AS ", 1)[-1]
        got = _ranked(_sessions_by(client, r, [expr]), [name])
        out[key] = [{name: row[name], "visits": row["sessions"]} for row in got]
    return out


# -- flow and funnel ------------------------------------------------------------------------------


def flow(
    client: Any, database: str, f: Filter, offset: int, limit: int
) -> dict[str, list[dict[str, Any]]]:
    """Landing pages by entries and exit pages by exits (sessions), each paged."""
    entry = reports.entry_pages(
        client, database, replace(f, sort="entries", direction="desc", offset=offset, limit=limit)
    )
    exits = reports.exit_pages(
        client, database, replace(f, sort="exits", direction="desc", offset=offset, limit=limit)
    )
    return {
        "landing_pages": [{"path": r["path"], "entries": r["entries"]} for r in entry],
        "exit_pages": [{"path": r["path"], "exits": r["exits"]} for r in exits],
    }


def _step_hits(r: Rows, step: str) -> str:
    """(visitor_id, session_id, time) of the hits that reach `step` (a path, or an event name)."""
    if step == "page_view" or step.startswith("/"):
        where = r.page_views(with_paths=False)
        if step != "page_view":
            where += f" AND path = {r.p.bind(step, 'String')}"
        return f"SELECT {KEYS}, time FROM {r.table('page_views')} WHERE {where}"
    where = f"{r.events()} AND event_name = {r.p.bind(step, 'String')}"
    return f"SELECT {KEYS}, time FROM {r.table('events')} WHERE {where}"


def funnel(client: Any, database: str, f: Filter, steps: list[str]) -> list[dict[str, Any]]:
    """Sessions reaching each step in order (step n at or after step n-1, same session)."""
    r = Rows(f.without_dims(), database)
    counts = []
    reached = ""
    for step in steps:
        hits = _step_hits(r, step)
        if reached:
            hits = (
                f"SELECT {KEYS}, time FROM ({hits}) AS h INNER JOIN ({reached}) AS s "
                f"USING ({KEYS}) WHERE time >= reached"
            )
        reached = f"SELECT {KEYS}, min(time) AS reached FROM ({hits}) GROUP BY {KEYS}"
        counts.append(int(_one(client, f"SELECT count() FROM ({reached})", r.p) or 0))
    out = []
    for i, (step, n) in enumerate(zip(steps, counts, strict=True)):
        prev = counts[i - 1] if i else n
        rate = 100.0 if i == 0 else (round(n / prev * 100, 2) if prev else 0.0)
        out.append({"step": step, "sessions": n, "conversion_rate": rate})
    return out


# -- realtime ---------------------------------------------------------------------------------


def realtime_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) the realtime report reads (trail.stats.pages.active)."""
    end = (now or datetime.now(UTC)) + timedelta(seconds=1)
    return end - timedelta(seconds=REALTIME_SECONDS + 1), end


def realtime(client: Any, database: str, f: Filter, now: datetime | None = None) -> dict[str, Any]:
    """Active visitors of the last 30 minutes, their top 10 pages, and hits by event type."""
    start, end = realtime_window(now)
    r = Rows(f, database, start=start, end=end)
    active = int(_rows(client, _metrics_by(r, []), r.p)[0]["visitors"] or 0)
    top_sql = (
        f"SELECT path, uniqExact(visitor_id) AS visitors FROM {r.table('page_views')} "
        f"WHERE {r.page_views()} GROUP BY path ORDER BY visitors DESC, path ASC LIMIT 10"
    )
    top = _rows(client, top_sql, r.p)
    views = f"SELECT count() FROM {r.table('page_views')} WHERE {r.page_views()}"
    counts = {"page_view": int(_one(client, views, r.p) or 0)}
    by_name = (
        f"SELECT event_name, count() AS n FROM {r.table('events')} WHERE {r.events()} "
        "GROUP BY event_name"
    )
    for row in _rows(client, by_name, r.p):
        counts[row["event_name"]] = counts.get(row["event_name"], 0) + int(row["n"])
    ordered = sorted((kv for kv in counts.items() if kv[1] > 0), key=lambda kv: (-kv[1], kv[0]))
    return {
        "active_visitors": active,
        "top_pages": [{"path": p["path"], "visitors": int(p["visitors"])} for p in top],
        "events_by_type": [{"eventType": k, "count": v} for k, v in ordered],
    }


# -- custom events ----------------------------------------------------------------------------


def custom_events(
    client: Any, database: str, f: Filter, name: str | None, offset: int, limit: int
) -> list[dict[str, Any]]:
    """Custom events by count desc (the tracker's built-in event types are left out)."""
    fields = dict(f.fields)
    fields["event_name"] = FieldFilter(eq=(name,)) if name else FieldFilter(neq=BUILTIN_EVENTS)
    g = replace(f, fields=fields, sort="count", direction="desc", offset=offset, limit=limit)
    return [{"name": r["name"], "count": r["count"]} for r in reports.events(client, database, g)]


# -- timeseries -------------------------------------------------------------------------------


def timeseries(
    client: Any,
    database: str,
    f: Filter,
    metric: str,
    path: str | None,
    include_bots: bool = False,
) -> list[dict[str, Any]]:
    """One value per local day of the range (trail.stats.tinytrail_reports.timeseries)."""
    days = _days(f)
    if metric in ("visits", "pageviews", "bounce_rate"):
        series = reports.visitor(client, database, _with_field(f, "path", path))
        key = {"visits": "sessions", "pageviews": "views", "bounce_rate": "bounce_rate"}[metric]
        values: list[Any] = [s[key] for s in series]
        if metric == "bounce_rate":
            values = [round(v * 100, 2) for v in values]
    elif metric in ("landing_page_entries", "exit_page_exits"):
        column = "entry_path" if metric == "landing_page_entries" else "exit_path"
        series = reports.visitor(client, database, _with_field(f, column, path))
        values = [s["sessions"] for s in series]
    elif metric == "avg_session_duration":
        values = _average_durations(client, database, _with_field(f, "entry_path", path), days)
    else:
        r = Rows(_with_field(f, "path", path), database)
        sql = (
            f"SELECT {_DAY}, uniqExact({_SESSION_ID}, path) AS n FROM {r.table('page_views')} "
            f"WHERE {r.page_views()} GROUP BY day"
        )
        values = _by_day(_rows(client, sql, r.p), days, "n")
    if include_bots and metric in ("visits", "pageviews", "unique_pageviews"):
        bots = _bots_by_day(client, database, _with_field(f, "path", path), days, metric)
        values = [v + b for v, b in zip(values, bots, strict=True)]
    return [{"date": d.isoformat(), "value": v} for d, v in zip(days, values, strict=True)]


def _average_durations(client: Any, database: str, f: Filter, days: list[date]) -> list[int]:
    """Per local day, the average duration of the sessions that lasted, rounded
    (trail.stats.reports.session_duration: page and event conditions hold inside each day)."""
    r = Rows(f, database, bucket="day" if (f.page_level or f.event_level) else None)
    sql = (
        f"SELECT {_DAY}, sum(duration_seconds * sign) AS total, sum(sign) AS n "
        f"FROM {r.table('sessions')} WHERE {r.sessions()} AND duration_seconds > 0 GROUP BY day"
    )
    got = {row["day"]: row for row in _rows(client, sql, r.p)}
    out = []
    for d in days:
        row = got.get(d)
        n = int(row["n"] or 0) if row else 0
        out.append(round(int(row["total"] or 0) / n) if row and n > 0 else 0)
    return out


def _bots_by_day(client: Any, database: str, f: Filter, days: list[date], metric: str) -> list[int]:
    r = Rows(f, database)
    where = bot_requests(r) + ("" if metric == "visits" else " AND event_name = ''")
    count = "count()" if metric == "pageviews" else "uniqExact(visitor_id)"
    sql = f"SELECT {_DAY}, {count} AS n FROM {r.table('requests')} WHERE {where} GROUP BY day"
    return _by_day(_rows(client, sql, r.p), days, "n")

"""The TinyTrail reports, built on the shared report functions and metric definitions.

Each function takes a `Filter` (site, local dates, time zone, path/pattern conditions) and returns
plain values; `trail/api/tinytrail/reports.py` only shapes them. Where a Pirsch report already
computes a number (totals, pages, entry/exit pages, per-day series, active visitors, events) it
is called and reshaped; what TinyTrail adds (coarse channels, referrer domains, screen buckets,
ordered funnels, bot counts from the `requests` table) is defined here once.

Vocabulary: visits = sessions, unique_visitors = visitors, pageviews = views, uniquePageviews =
sessions that viewed the page (distinct (session, path) pairs site-wide).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from trail.core import coarse_channel
from trail.stats import metrics as m
from trail.stats import reports
from trail.stats.buckets import bucket_index, series_starts
from trail.stats.events import events as event_report
from trail.stats.filters import FieldFilter, Filter
from trail.stats.predicates import field_expr
from trail.stats.scan import scan
from trail.stats.sources import Rows, metrics_by, rows_for

ALL = 1 << 31  # "no limit" for the shared reports' offset/limit
BUILTIN_EVENTS = ("page_view", "close_tab", "scroll_25", "scroll_50", "scroll_75", "outbound_link")
# Drop reasons in the request log that are the site's own rules or bookkeeping, not bots.
NOT_BOT_REASONS = ("hostname_not_allowed", "ip_invalid", "no_session", "page_view_cap")
SCREEN_BUCKETS = ("320-375", "376-768", "769-1024", "1025-1440", "1441+", "unknown")


# -- content groups ---------------------------------------------------------------------------

_META = set("\\.+*?()|[]{}^$#&-~")


def group_regex(pattern: str) -> str:
    """A content-group pattern as an anchored, case-insensitive regex; `*` = any characters."""
    escape = "".join
    parts = [escape("\\" + c if c in _META else c for c in chunk) for chunk in pattern.split("*")]
    return "(?i)^" + ".*".join(parts) + "$"


def content_group_of(path: str, groups: list[dict[str, str]]) -> str | None:
    """The first group whose pattern matches `path`."""
    for g in groups:
        if re.match(group_regex(g["pattern"]), path):
            return g["name"]
    return None


def content_group_filter(groups: list[dict[str, str]], name: str) -> str | None:
    """One regex for every pattern of group `name`; None when the site has no such group."""
    patterns = [group_regex(g["pattern"]) for g in groups if g["name"] == name]
    if not patterns:
        return None
    return "|".join(f"(?:{p})" for p in patterns)


# -- bots -------------------------------------------------------------------------------------


def bot_requests(
    data_dir: Path, f: Filter, start: datetime | None = None, end: datetime | None = None
) -> pl.LazyFrame:
    """Bot rows of the request log in the filter's window, with its path conditions applied."""
    if start is None or end is None:
        start, end = f.window()
    cols = ["visitor_id", "time", "path", "event_name", "bot", "bot_reason"]
    lf = scan(Path(data_dir), "requests", f.site_id, start, end, cols)
    lf = lf.filter(
        pl.col("bot")
        & ~pl.col("bot_reason").is_in(list(NOT_BOT_REASONS))
        & ~pl.col("bot_reason").str.starts_with("filter_")
    )
    if "path" in f.fields:
        lf = lf.filter(field_expr(pl.col("path"), f.fields["path"]))
    if f.pattern:
        lf = lf.filter(pl.col("path").str.contains(f.pattern))
    return lf


def _bot_counts() -> list[pl.Expr]:
    views = (pl.col("event_name") == "").sum().cast(pl.Int64).alias("bot_views")
    return [pl.col("visitor_id").n_unique().cast(pl.Int64).alias("bot_visitors"), views]


# -- summary ----------------------------------------------------------------------------------


def average_session_seconds(rows: Rows) -> int:
    """Average duration of the sessions that lasted (Pirsch's definition, over the whole range)."""
    lf = rows.sessions(["sign", "duration_seconds"])
    lf = lf.filter(pl.col("duration_seconds") > 0).select(m.duration_sum().alias("t"), m.sessions())
    r = lf.collect().row(0, named=True)
    return round((r["t"] or 0) / r["sessions"]) if r["sessions"] else 0


def summary(data_dir: Path, f: Filter, include_bots: bool = False) -> dict[str, float]:
    """visits, unique_visitors, pageviews, bounce_rate (%), avg_session_duration_sec."""
    rows = rows_for(data_dir, f)
    t = reports.total_for_rows(rows)
    out: dict[str, float] = {
        "visits": t["sessions"],
        "unique_visitors": t["visitors"],
        "pageviews": t["views"],
        "bounce_rate": round(t["bounce_rate"] * 100, 2),
        "avg_session_duration_sec": average_session_seconds(rows),
    }
    if include_bots:
        b = bot_requests(data_dir, f).select(_bot_counts()).collect().row(0, named=True)
        # Each bot counts as a visitor with one visit; rates stay about people.
        out["visits"] += b["bot_visitors"] or 0
        out["unique_visitors"] += b["bot_visitors"] or 0
        out["pageviews"] += b["bot_views"] or 0
    return out


def change_pct(value: float, previous: float) -> float:
    """Relative change in percent, rounded to 2 decimals (the shared growth definition)."""
    return round(m.growth(value, previous) * 100, 2)


# -- pages ------------------------------------------------------------------------------------


def pages(
    data_dir: Path, f: Filter, offset: int, limit: int, include_bots: bool = False
) -> list[dict[str, Any]]:
    """Per path: pageviews and unique pageviews (sessions), by pageviews desc then path."""
    if not include_bots:
        got = reports.page(
            data_dir, replace(f, sort="views", direction="desc", offset=offset, limit=limit)
        )
        return [
            {"path": r["path"], "pageviews": r["views"], "uniquePageviews": r["sessions"]}
            for r in got
        ]
    got = reports.page(data_dir, replace(f, sort="views", direction="desc", offset=0, limit=ALL))
    counts = {r["path"]: [r["views"], r["sessions"]] for r in got}
    bots = bot_requests(data_dir, f).filter(pl.col("event_name") == "")
    per_path = bots.group_by("path").agg(
        pl.len().alias("n"), pl.col("visitor_id").n_unique().alias("v")
    )
    for path, n, v in per_path.collect().iter_rows():
        c = counts.setdefault(path, [0, 0])
        c[0] += n
        c[1] += v
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return [
        {"path": p, "pageviews": c[0], "uniquePageviews": c[1]}
        for p, c in ordered[offset : offset + limit]
    ]


# -- sources ----------------------------------------------------------------------------------

_HOST = r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:www\.)?([^/:?#]+)"


def sources(
    data_dir: Path, f: Filter, group_by: str, offset: int, limit: int
) -> list[dict[str, Any]]:
    """Visits by coarse channel, by referring domain, or by (utm source, medium, campaign)."""
    rows = rows_for(data_dir, f)
    if group_by == "channel":
        per_channel = metrics_by(rows, [pl.col("channel")], ["channel"]).collect()
        totals: dict[str, int] = {}
        for r in per_channel.iter_rows(named=True):
            name = coarse_channel(r["channel"] or "")
            totals[name] = totals.get(name, 0) + int(r["sessions"] or 0)
        ordered = sorted((kv for kv in totals.items() if kv[1] > 0), key=lambda kv: (-kv[1], kv[0]))
        return [{"channel": k, "visits": v} for k, v in ordered[offset : offset + limit]]
    if group_by == "domain":
        host = pl.col("referrer").str.extract(_HOST, 1).str.to_lowercase().alias("referrer")
        df = metrics_by(rows, [host], ["referrer"]).filter(
            pl.col("referrer").is_not_null() & (pl.col("referrer") != "")
        )
        keys = ["referrer"]
    else:
        keys = ["utm_source", "utm_medium", "utm_campaign"]
        df = metrics_by(rows, [pl.col(k) for k in keys], keys).filter(
            pl.any_horizontal([pl.col(k) != "" for k in keys])
        )
    df = df.filter(pl.col("sessions") > 0).sort(
        ["sessions", *keys], descending=[True] + [False] * len(keys)
    )
    out = df.slice(offset, limit).collect()
    names = {"utm_source": "utmSource", "utm_medium": "utmMedium", "utm_campaign": "utmCampaign"}
    return [
        {**{names.get(k, k): r[k] for k in keys}, "visits": int(r["sessions"])}
        for r in out.iter_rows(named=True)
    ]


# -- devices ----------------------------------------------------------------------------------


def _screen_bucket() -> tuple[pl.Expr, str]:
    """TinyTrail's resolution buckets from the stored screen width (0 = unknown)."""
    w = pl.col("screen_width").cast(pl.Int64)
    expr = (
        pl.when(w <= 0).then(pl.lit("unknown"))
        .when(w <= 375).then(pl.lit("320-375"))
        .when(w <= 768).then(pl.lit("376-768"))
        .when(w <= 1024).then(pl.lit("769-1024"))
        .when(w <= 1440).then(pl.lit("1025-1440"))
        .otherwise(pl.lit("1441+"))
    )  # fmt: skip
    return expr.alias("bucket"), "screen_width"


def devices(data_dir: Path, f: Filter) -> dict[str, list[dict[str, Any]]]:
    """Visits by device type, browser, OS and screen bucket, each by visits desc then name."""
    rows = rows_for(data_dir, f)
    device = (
        pl.when(pl.col("mobile")).then(pl.lit("mobile"))
        .when(pl.col("desktop")).then(pl.lit("desktop"))
        .otherwise(pl.lit("unknown")).alias("deviceType")
    )  # fmt: skip
    unknown = pl.lit("unknown")
    browser = pl.when(pl.col("browser") == "").then(unknown).otherwise(pl.col("browser"))
    os_ = pl.when(pl.col("os") == "").then(unknown).otherwise(pl.col("os"))
    screen, screen_col = _screen_bucket()
    queries = [
        metrics_by(rows, [device], ["desktop", "mobile"]),
        metrics_by(rows, [browser.alias("browserFamily")], ["browser"]),
        metrics_by(rows, [os_.alias("osFamily")], ["os"]),
        metrics_by(rows, [screen], [screen_col]),
    ]
    names = ["deviceType", "browserFamily", "osFamily", "bucket"]
    out = {}
    keys = ["device_types", "browsers", "os_families", "screen_resolutions"]
    for key, name, df in zip(keys, names, pl.collect_all(queries), strict=True):
        df = df.filter(pl.col("sessions") > 0).sort(["sessions", name], descending=[True, False])
        out[key] = [{name: r[name], "visits": int(r["sessions"])} for r in df.iter_rows(named=True)]
    return out


# -- flow -------------------------------------------------------------------------------------


def flow(data_dir: Path, f: Filter, offset: int, limit: int) -> dict[str, list[dict[str, Any]]]:
    """Landing pages by entries and exit pages by exits (sessions), each paged."""
    entry = reports.entry_pages(
        data_dir, replace(f, sort="entries", direction="desc", offset=offset, limit=limit)
    )
    exits = reports.exit_pages(
        data_dir, replace(f, sort="exits", direction="desc", offset=offset, limit=limit)
    )
    return {
        "landing_pages": [{"path": r["path"], "entries": r["entries"]} for r in entry],
        "exit_pages": [{"path": r["path"], "exits": r["exits"]} for r in exits],
    }


# -- funnel -----------------------------------------------------------------------------------

KEYS = ["visitor_id", "session_id"]


def _step_rows(rows: Rows, step: str) -> pl.LazyFrame:
    """(visitor_id, session_id, time) of the hits that reach `step` (a path, or an event name)."""
    if step == "page_view" or step.startswith("/"):
        lf = rows.page_views([*KEYS, "time", "path"], with_paths=False)
        if step != "page_view":
            lf = lf.filter(pl.col("path") == step)
    else:
        lf = rows.events([*KEYS, "time", "event_name"]).filter(pl.col("event_name") == step)
    return lf.select(KEYS + ["time"])


def funnel(data_dir: Path, f: Filter, steps: list[str]) -> list[dict[str, Any]]:
    """Sessions reaching each step in order (step n at or after step n-1, same session)."""
    rows = rows_for(data_dir, f.without_dims())
    reached: pl.LazyFrame | None = None
    queries = []
    for step in steps:
        hits = _step_rows(rows, step)
        if reached is not None:
            hits = hits.join(reached, on=KEYS, how="inner").filter(
                pl.col("time") >= pl.col("reached")
            )
        reached = hits.group_by(KEYS).agg(pl.col("time").min().alias("reached"))
        queries.append(reached.select(pl.len().alias("n")))
    counts = [int(df["n"][0]) for df in pl.collect_all(queries)]
    out = []
    for i, (step, n) in enumerate(zip(steps, counts, strict=True)):
        prev = counts[i - 1] if i else n
        rate = 100.0 if i == 0 else (round(n / prev * 100, 2) if prev else 0.0)
        out.append({"step": step, "sessions": n, "conversion_rate": rate})
    return out


# -- realtime ---------------------------------------------------------------------------------

REALTIME_SECONDS = 1800


def realtime(data_dir: Path, f: Filter, now: datetime | None = None) -> dict[str, Any]:
    """Active visitors of the last 30 minutes, their top 10 pages, and hits by event type."""
    now = now or datetime.now(UTC)
    active = reports.active(data_dir, replace(f, start=REALTIME_SECONDS), now=now)
    end = now + timedelta(seconds=1)
    rows = Rows(Path(data_dir), f, end - timedelta(seconds=REALTIME_SECONDS + 1), end)
    views = rows.page_views(["visitor_id"]).select(pl.len().alias("n"))
    by_name = rows.events(["event_name"]).group_by("event_name").agg(pl.len().alias("n"))
    views_df, events_df = pl.collect_all([views, by_name])
    counts = {"page_view": int(views_df["n"][0])}
    for name, n in events_df.iter_rows():
        counts[name] = counts.get(name, 0) + int(n)
    ordered = sorted((kv for kv in counts.items() if kv[1] > 0), key=lambda kv: (-kv[1], kv[0]))
    by_type = [{"eventType": k, "count": v} for k, v in ordered]
    return {
        "active_visitors": active["visitors"],
        "top_pages": [{"path": p["path"], "visitors": p["visitors"]} for p in active["stats"][:10]],
        "events_by_type": by_type,
    }


# -- custom events ----------------------------------------------------------------------------


def custom_events(
    data_dir: Path, f: Filter, name: str | None, offset: int, limit: int
) -> list[dict[str, Any]]:
    """Custom events by count desc (the tracker's built-in event types are left out)."""
    fields = dict(f.fields)
    if name:
        fields["event_name"] = FieldFilter(eq=(name,))
    else:
        fields["event_name"] = FieldFilter(neq=BUILTIN_EVENTS)
    g = replace(f, fields=fields, sort="count", direction="desc", offset=offset, limit=limit)
    return [{"name": r["name"], "count": r["count"]} for r in event_report(data_dir, g)]


# -- timeseries -------------------------------------------------------------------------------

METRICS = (
    "visits", "pageviews", "unique_pageviews", "bounce_rate", "avg_session_duration",
    "landing_page_entries", "exit_page_exits",
)  # fmt: skip


def _with_field(f: Filter, column: str, path: str | None) -> Filter:
    if not path:
        return f
    return replace(f, fields={**f.fields, column: FieldFilter(eq=(path,))})


def unique_pageviews_expr() -> pl.Expr:
    """Distinct (session, path) pairs: per page that is the page's sessions."""
    return (
        pl.struct(m.session_key(), pl.col("path"))
        .n_unique()
        .cast(pl.Int64)
        .alias("unique_pageviews")
    )


def timeseries(
    data_dir: Path, f: Filter, metric: str, path: str | None, include_bots: bool = False
) -> list[dict[str, Any]]:
    """One value per local day of the range. `path` narrows page metrics to that path, and the
    session metrics to sessions that entered (landing, duration) or left (exits) there."""
    first, last = reports.dates_of(f)
    days = series_starts(first, last, "day", field="start_date")
    if metric in ("visits", "pageviews", "bounce_rate"):
        series = reports.visitor(data_dir, _with_field(f, "path", path))
        key = {"visits": "sessions", "pageviews": "views", "bounce_rate": "bounce_rate"}[metric]
        values = [s[key] * 100 if metric == "bounce_rate" else s[key] for s in series]
        values = [round(v, 2) if metric == "bounce_rate" else v for v in values]
    elif metric in ("landing_page_entries", "exit_page_exits"):
        column = "entry_path" if metric == "landing_page_entries" else "exit_path"
        values = [s["sessions"] for s in reports.visitor(data_dir, _with_field(f, column, path))]
    elif metric == "avg_session_duration":
        series = reports.session_duration(data_dir, _with_field(f, "entry_path", path))
        values = [s["average_time_spent_seconds"] for s in series]
    else:
        g = _with_field(f, "path", path)
        rows = rows_for(data_dir, g)
        lf = rows.page_views(["visitor_id", "session_id", "path", "time"])
        df = lf.group_by(bucket_index(days, f.tz)).agg(unique_pageviews_expr()).collect()
        got = dict(df.iter_rows())
        values = [int(got.get(i, 0)) for i in range(len(days))]
    if include_bots and metric in ("visits", "pageviews", "unique_pageviews"):
        values = _add_bots(data_dir, _with_field(f, "path", path), days, metric, values)
    return [{"date": d.isoformat(), "value": v} for d, v in zip(days, values, strict=True)]


def _add_bots(
    data_dir: Path, f: Filter, days: list[Any], metric: str, values: list[Any]
) -> list[Any]:
    bots = bot_requests(data_dir, f)
    if metric != "visits":
        bots = bots.filter(pl.col("event_name") == "")
    count = pl.col("visitor_id").n_unique() if metric != "pageviews" else pl.len()
    df = bots.group_by(bucket_index(days, f.tz)).agg(count.cast(pl.Int64).alias("n")).collect()
    got = dict(df.iter_rows())
    return [v + int(got.get(i, 0)) for i, v in enumerate(values)]

"""One function per report: Filter in, plain Python values out (the APIs only reshape them).

Time-series and totals live here; page reports in `pages`, dimension breakdowns in `breakdowns`.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from trail.stats import kernels, rollup_totals
from trail.stats import metrics as m
from trail.stats.breakdowns import (  # noqa: F401  (re-exported: one import for every report)
    DIMENSIONS,
    dimension,
    hostname,
    hours,
    minutes,
    platform,
    referrer,
    weekdays,
)
from trail.stats.buckets import (
    bucket_breaks,
    bucket_index,
    bucket_label,
    bucket_starts,
    series_starts,
)
from trail.stats.filters import Filter
from trail.stats.pages import active, entry_pages, exit_pages, page, times_on_page  # noqa: F401
from trail.stats.sources import KEYS, Rows, core, custom_metrics, metrics_by, rows_for


def _totals_query(rows: Rows) -> pl.LazyFrame:
    """One row: visitors, sessions, views, bounces for the filter (reads per section 5)."""
    rolled = rollup_totals.totals_frame(rows, ["visitors", "sessions", "views", "bounces"])
    return rolled if rolled is not None else core(rows)


def total(data_dir: Path, f: Filter) -> dict[str, Any]:
    """/statistics/total: one object over the whole range."""
    return total_for_rows(rows_for(data_dir, f))


def total_for_rows(rows: Rows) -> dict[str, Any]:
    """The total report over an explicit window."""
    f = rows.f
    queries = [_totals_query(rows)]
    if not f.is_unfiltered:
        queries.append(unfiltered_visitors(rows))
    custom = custom_metrics(rows)
    if custom is not None:
        queries.append(custom)
    frames = pl.collect_all(queries)
    t = frames[0].row(0, named=True)
    all_visitors = frames[1]["visitors"][0] if not f.is_unfiltered else t["visitors"]
    out: dict[str, Any] = {
        "visitors": int(t["visitors"] or 0),
        "views": int(t["views"] or 0),
        "sessions": int(t["sessions"] or 0),
        "bounces": int(t["bounces"] or 0),
    }
    out["bounce_rate"] = m.rate(out["bounces"], out["sessions"])
    out["cr"] = m.rate(out["visitors"], all_visitors or 0)
    cm = frames[-1].row(0, named=True) if custom is not None else {}
    out["custom_metric_avg"] = float(cm.get("custom_metric_avg") or 0.0)
    out["custom_metric_total"] = float(cm.get("custom_metric_total") or 0.0)
    return out


def visitor(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/visitor: one object per day/week/month/year bucket, empty buckets as zeros."""
    first, last = dates_of(f)
    starts = series_starts(first, last, f.scale)
    rows = rows_for(data_dir, f)
    rolled = rollup_totals.bucket_totals(rows, starts, f.tz)
    custom: dict[int, Any] = {}
    if rolled is not None:  # unfiltered, buckets of whole UTC days: from the per-day rollups
        by_bucket: dict[int, Any] = rolled
        all_by_bucket = {i: r["visitors"] for i, r in rolled.items()}
    else:
        idx = bucket_index(starts, f.tz)
        q = metrics_by(rows.by_bucket(idx), [idx], ["time"], windows=True)
        queries = [q]
        # without any filter the denominators are the visitors themselves: not counted twice
        alone = f.is_unfiltered and f.visitor_id is None and f.session_id is None
        if not alone:
            unfiltered = rows.unfiltered().sessions(["visitor_id", "sign", "time"])
            queries.append(unfiltered.group_by(idx).agg(m.visitors().alias("all_visitors")))
        cm = custom_metrics(rows, [idx])
        if cm is not None:
            queries.append(cm)
        frames = pl.collect_all(queries)
        by_bucket = {r["bucket"]: r for r in frames[0].iter_rows(named=True)}
        if alone:
            all_by_bucket = {i: r["visitors"] for i, r in by_bucket.items()}
        else:
            all_by_bucket = dict(frames[1].iter_rows())
        if cm is not None:
            custom = {r["bucket"]: r for r in frames[-1].iter_rows(named=True)}
    out = []
    for i, start in enumerate(starts):
        r = by_bucket.get(i, {})
        item: dict[str, Any] = {"day": None, "week": None, "month": None, "year": None}
        item[f.scale] = bucket_label(start)
        for k in ("visitors", "views", "sessions", "bounces"):
            item[k] = int(r.get(k) or 0)
        item["bounce_rate"] = m.rate(item["bounces"], item["sessions"])
        item["cr"] = m.rate(item["visitors"], all_by_bucket.get(i) or 0)
        c = custom.get(i, {})
        item["custom_metric_avg"] = float(c.get("custom_metric_avg") or 0.0)
        item["custom_metric_total"] = float(c.get("custom_metric_total") or 0.0)
        out.append(item)
    return out


def session_duration(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/duration/session: per bucket, the average session duration in seconds.

    Per day: sum(duration * sign) / sum(sign) over sessions with a non-zero duration, rounded
    half to even; week/month/year buckets average their days that have a value.
    """
    first, last = dates_of(f)
    starts = series_starts(first, last, f.scale)
    days = bucket_starts(first, last, "day")
    rows = rows_for(data_dir, f)
    rolled = rollup_totals.bucket_totals(rows, days, f.tz)
    if rolled is not None:  # unfiltered, UTC days: the per-day rollups' sums
        daily_sums = [
            {"bucket": i, "total": t["duration"], "n": t["duration_sessions"]}
            for i, t in rolled.items()
        ]
        schema = {"bucket": pl.Int64, "total": pl.Int64, "n": pl.Int64}
        return _scaled_averages(f, pl.DataFrame(daily_sums, schema=schema), days, starts)
    # a day counts the sessions that pass inside it (page and event conditions): Rows.by_bucket
    rows = rows.by_bucket(bucket_index(days, f.tz))
    lf = rows.sessions(["sign", "duration_seconds", "time"]).filter(pl.col("duration_seconds") > 0)
    daily = lf.group_by(bucket_index(days, f.tz)).agg(
        m.duration_sum().alias("total"), m.sessions().alias("n")
    )
    return _scaled_averages(f, daily.collect(), days, starts)


def _scaled_averages(
    f: Filter, daily: pl.DataFrame, days: list[date], starts: list[date], **extra: Any
) -> list[dict[str, Any]]:
    """Per-day averages total/n (rows: bucket = index in `days`, total, n) averaged over each
    scale bucket of `starts`, rounded."""
    per_day = sorted(
        (r["bucket"], r["total"] / r["n"]) for r in daily.iter_rows(named=True) if r["n"] > 0
    )
    values: list[list[float]] = [[] for _ in starts]
    for j, value in per_day:
        if 0 <= j < len(days):
            values[bisect_right(starts, days[j]) - 1].append(value)
    out = []
    for start, got in zip(starts, values, strict=True):
        item: dict[str, Any] = {"day": None, "week": None, "month": None, "year": None}
        item[f.scale] = bucket_label(start)
        item.update(extra)
        item["average_time_spent_seconds"] = round(sum(got) / len(got)) if got else 0
        out.append(item)
    return out


def page_duration(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/duration/page: per bucket, the average time on the filtered pages.

    Time on page is the next view's duration in the session (zeros excluded), averaged per day
    and then over the days of each bucket, like the session duration.
    """
    first, last = dates_of(f)
    starts = series_starts(first, last, f.scale)
    days = bucket_starts(first, last, "day")
    rows = rows_for(data_dir, f)
    # A time belongs to the day of the view it was spent on.
    if f.page_level:
        spent = times_on_page(rows).select(bucket_index(days, f.tz), pl.col("time_on_page"))
        daily = spent.group_by("bucket").agg(
            pl.col("time_on_page").sum().alias("total"), pl.len().alias("n")
        )
    else:
        # Every view of the passing sessions counts: summed per day by the kernel as it pairs.
        pv = rows.page_views([*KEYS, "time", "duration_seconds"], with_paths=False)
        daily = kernels.time_on_page_by_bucket(pv.collect(), bucket_breaks(days, f.tz)).lazy()
    ff = f.fields.get("path")
    path = ff.eq[0] if ff is not None and len(ff.eq) == 1 and not ff.neq else ""
    return _scaled_averages(f, daily.collect(), days, starts, path=path)


def unfiltered_visitors(rows: Rows) -> pl.LazyFrame:
    """One row, `visitors`: the distinct visitors of the window without filters."""
    rolled = rollup_totals.totals_frame(rows.unfiltered(), ["visitors"])
    if rolled is not None:
        return rolled
    return rows.unfiltered().sessions(["visitor_id", "sign"]).select(m.visitors())


def _time_spent(rows: Rows) -> pl.LazyFrame:
    """The summed time behind time_spent_growth: the matching events' durations under an event
    name filter, else the time on the matching pages under a path filter, else the durations
    of the sessions that pass (Pirsch's order: an event name first, then a path; pattern and
    tags select sessions)."""
    f = rows.f
    if "event_name" in f.fields:
        ev = rows.events(["duration_seconds"])
        return ev.select(pl.col("duration_seconds").cast(pl.Int64).sum().alias("time_spent"))
    if "path" in f.fields:
        return times_on_page(rows).select(pl.col("time_on_page").sum().alias("time_spent"))
    rolled = rollup_totals.session_totals(rows)
    if rolled is not None:
        return pl.LazyFrame({"time_spent": [rolled["duration"]]})
    return rows.sessions(["sign", "duration_seconds"]).select(m.duration_sum().alias("time_spent"))


def previous_rows(data_dir: Path, f: Filter, now: datetime | None = None) -> Rows:
    """The window growth compares with: the previous range of equal length, or for a single day
    the same weekday a week earlier (up to the current time of day while the day is today)."""
    first, last = dates_of(f)
    days = (last - first).days + 1
    shift = timedelta(days=7 if days == 1 else days)
    previous = replace(f, from_date=first - shift, to_date=last - shift)
    rows, cur = rows_for(data_dir, previous), rows_for(data_dir, f)
    now = now or datetime.now(UTC)
    if days == 1 and cur.start <= now < cur.end:
        rows = Rows(rows.data_dir, previous, rows.start, now - timedelta(days=7))
    return rows


def growth(data_dir: Path, f: Filter, now: datetime | None = None) -> dict[str, Any]:
    """/statistics/growth: this range against the previous one (see previous_rows)."""
    cur_rows, prev_rows = rows_for(data_dir, f), previous_rows(data_dir, f, now)
    cur, prev = total_for_rows(cur_rows), total_for_rows(prev_rows)
    spent = pl.collect_all([_time_spent(cur_rows), _time_spent(prev_rows)])
    return {
        "visitors_growth": m.growth(cur["visitors"], prev["visitors"]),
        "views_growth": m.growth(cur["views"], prev["views"]),
        "sessions_growth": m.growth(cur["sessions"], prev["sessions"]),
        "bounces_growth": m.growth(cur["bounce_rate"], prev["bounce_rate"]),
        "time_spent_growth": m.growth(
            spent[0]["time_spent"][0] or 0, spent[1]["time_spent"][0] or 0
        ),
        "cr_growth": m.growth(cur["cr"], prev["cr"]),
        "custom_metric_avg_growth": m.growth(cur["custom_metric_avg"], prev["custom_metric_avg"]),
        "custom_metric_total_growth": m.growth(
            cur["custom_metric_total"], prev["custom_metric_total"]
        ),
    }


def dates_of(f: Filter) -> tuple[date, date]:
    assert f.from_date is not None and f.to_date is not None
    return f.from_date, f.to_date


OVERVIEW_DAYS = 7


def overview_filter(f: Filter, now: datetime | None = None) -> Filter:
    """The filter of /statistics/overview: its dates default to the last 7 days."""
    if f.from_date is None or f.to_date is None:
        today = (now or datetime.now(UTC)).astimezone(f.tz).date()
        f = replace(f, from_date=today - timedelta(days=OVERVIEW_DAYS - 1), to_date=today)
    return f


def overview(data_dir: Path, f: Filter, now: datetime | None = None) -> dict[str, Any]:
    """/statistics/overview: totals, growth and the daily series (default: the last 7 days)."""
    f = overview_filter(f, now)
    series_starts(*dates_of(f), "day")  # a series too long for an answer fails before any scan
    t = total(data_dir, f)
    prev = total_for_rows(previous_rows(data_dir, f, now))
    visitors_growth = m.growth(t["visitors"], prev["visitors"])
    return {
        "visitors": t["visitors"],
        "views": t["views"],
        "visitors_growth": visitors_growth,
        "visitor_growth": visitors_growth,  # both spellings appear in the Pirsch docs
        "views_growth": m.growth(t["views"], prev["views"]),
        "visitors_time_series": visitor(data_dir, replace(f, scale="day")),
    }

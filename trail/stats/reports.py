"""One function per report: Filter in, plain Python values out (the APIs only reshape them)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl

from trail.stats import metrics as m
from trail.stats.buckets import bucket_index, bucket_label, bucket_starts
from trail.stats.filters import Filter
from trail.stats.predicates import pair_value
from trail.stats.sources import KEYS, Rows

PAGE_SORTS = (
    "path", "title", "visitors", "views", "sessions", "bounces",
    "relative_visitors", "relative_views", "bounce_rate", "average_time_spent_seconds",
)  # fmt: skip


def _rows(data_dir: Path, f: Filter) -> Rows:
    start, end = f.window()
    return Rows(Path(data_dir), f, start, end)


def _totals_query(rows: Rows) -> pl.LazyFrame:
    """One row: visitors, sessions, views, bounces for the filter (reads per section 5)."""
    f = rows.f
    if f.page_level and not f.event_level:
        pv = rows.page_views(m.PAGE_VIEW_COLUMNS).select(m.page_view_metrics())
        if f.tags or f.tag:
            keys = rows.page_views(KEYS).select(KEYS).unique()
            sess = rows.sessions(m.SESSION_COLUMNS + ["session_id"]).join(keys, on=KEYS, how="semi")
        else:
            sess = rows.sessions(m.SESSION_COLUMNS, paths_on_entry=True)
        return pl.concat([pv, sess.select(m.bounces())], how="horizontal")
    return rows.sessions(m.SESSION_COLUMNS).select(m.session_metrics())


def _custom_metric_query(rows: Rows) -> pl.LazyFrame | None:
    f = rows.f
    if not (f.custom_metric_key and f.custom_metric_type and "event_name" in f.fields):
        return None
    dtype = pl.Int64 if f.custom_metric_type == "integer" else pl.Float64
    value = pair_value("event_meta_keys", "event_meta_values", f.custom_metric_key)
    ev = rows.events(["event_meta_keys", "event_meta_values"])
    values = ev.select(value.cast(dtype, strict=False).alias("v"))
    return values.select(
        pl.col("v").mean().fill_null(0.0).cast(pl.Float64).alias("custom_metric_avg"),
        pl.col("v").sum().cast(pl.Float64).alias("custom_metric_total"),
    )


def total(data_dir: Path, f: Filter) -> dict[str, Any]:
    """/statistics/total: one object over the whole range."""
    rows = _rows(data_dir, f)
    queries = [_totals_query(rows)]
    if not f.is_unfiltered:
        queries.append(Rows(rows.data_dir, f.without_dims(), rows.start, rows.end).sessions(["visitor_id", "sign"]).select(m.visitors()))
    custom = _custom_metric_query(rows)
    if custom is not None:
        queries.append(custom)
    frames = pl.collect_all(queries)
    t = frames[0].row(0, named=True)
    all_visitors = frames[1]["visitors"][0] if not f.is_unfiltered else t["visitors"]
    out = {
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
    rows = _rows(data_dir, f)
    first, last = dates_of(f)
    starts = bucket_starts(first, last, f.scale)
    idx = bucket_index(starts, f.tz)
    if f.page_level and not f.event_level:
        pv = rows.page_views([*m.PAGE_VIEW_COLUMNS, "time"]).group_by(idx).agg(m.page_view_metrics())
        sess = rows.sessions([*m.SESSION_COLUMNS, "time"], paths_on_entry=not (f.tags or f.tag))
        b = sess.group_by(idx).agg(m.bounces())
        q = pv.join(b, on="bucket", how="left")
    else:
        q = rows.sessions([*m.SESSION_COLUMNS, "time"]).group_by(idx).agg(m.session_metrics())
    unfiltered = Rows(rows.data_dir, f.without_dims(), rows.start, rows.end).sessions(["visitor_id", "sign", "time"])
    u = unfiltered.group_by(idx).agg(m.visitors().alias("all_visitors"))
    got, all_v = pl.collect_all([q, u])
    by_bucket = {r["bucket"]: r for r in got.iter_rows(named=True)}
    all_by_bucket = dict(all_v.iter_rows())
    out = []
    for i, start in enumerate(starts):
        r = by_bucket.get(i, {})
        item: dict[str, Any] = {"day": None, "week": None, "month": None, "year": None}
        item[f.scale] = bucket_label(start)
        for k in ("visitors", "views", "sessions", "bounces"):
            item[k] = int(r.get(k) or 0)
        item["bounce_rate"] = m.rate(item["bounces"], item["sessions"])
        item["cr"] = m.rate(item["visitors"], all_by_bucket.get(i) or 0)
        item["custom_metric_avg"] = 0.0
        item["custom_metric_total"] = 0.0
        out.append(item)
    return out


def page(data_dir: Path, f: Filter, *, group_by_title: bool = False) -> list[dict[str, Any]]:
    """/statistics/page: per path (and title), sorted, searched and paged."""
    rows = _rows(data_dir, f)
    keys = ["path", "title"] if group_by_title else ["path"]
    pv = rows.page_views([*m.PAGE_VIEW_COLUMNS, "path", "title", "time"])
    if f.search:
        pv = pv.filter(pl.col("path").str.to_lowercase().str.contains(f.search.lower(), literal=True))
    aggs = m.page_view_metrics()
    if not group_by_title:
        aggs.append(pl.col("title").get(pl.col("time").arg_max()).alias("title"))
    stats = pv.group_by(keys).agg(aggs)
    # A bounced session only viewed its entry page, so bounces per page = bounced sessions by entry.
    b = rows.sessions(["entry_path", "is_bounce", "sign"]).group_by(pl.col("entry_path").alias("path")).agg(m.bounces())
    stats = stats.join(b, on="path", how="left").with_columns(pl.col("bounces").fill_null(0))
    queries = [stats, _unfiltered_totals(rows)]
    if f.include_avg_time_on_page:
        queries.append(_time_on_page(rows, keys))
    frames = pl.collect_all(queries)
    df, tot = frames[0], frames[1].row(0, named=True)
    df = df.with_columns(
        relative_visitors=m.rate_expr(pl.col("visitors"), tot["visitors"] or 0),
        relative_views=m.rate_expr(pl.col("views"), tot["views"] or 0),
        bounce_rate=m.rate_expr(pl.col("bounces"), pl.col("sessions")),
    )
    if f.include_avg_time_on_page:
        df = df.join(frames[2], on=keys, how="left").with_columns(pl.col("average_time_spent_seconds").fill_null(0))
    else:
        df = df.with_columns(average_time_spent_seconds=pl.lit(0, pl.Int64))
    df = _sort_page(df, f, PAGE_SORTS, "visitors", "path")
    cols = ["path", "title", "visitors", "views", "sessions", "bounces", *PAGE_SORTS[6:]]
    return df.select(cols).to_dicts()


def _unfiltered_totals(rows: Rows) -> pl.LazyFrame:
    base = Rows(rows.data_dir, rows.f.without_dims(), rows.start, rows.end)
    return base.sessions(["visitor_id", "sign", "page_views"]).select(m.visitors(), m.views())


def _time_on_page(rows: Rows, keys: list[str]) -> pl.LazyFrame:
    # The next view may be on any page, so the path filter applies after the shift.
    pv = rows.page_views([*KEYS, "time", "duration_seconds", "path", "title"], with_paths=False)
    pv = pv.sort([*KEYS, "time"]).with_columns(m.time_on_page())
    pv = pv.filter(_page_filter_only(rows.f))
    return pv.group_by(keys).agg(m.average_seconds(pl.col("time_on_page")).alias("average_time_spent_seconds"))


def _page_filter_only(f: Filter) -> pl.Expr:
    from trail.stats.predicates import _page_parts, field_expr

    parts = list(_page_parts(f))
    if "path" in f.fields:
        parts.append(field_expr(pl.col("path"), f.fields["path"]))
    if f.search:
        parts.append(pl.col("path").str.to_lowercase().str.contains(f.search.lower(), literal=True))
    expr = pl.lit(True)
    for p in parts:
        expr = expr & p
    return expr


def _sort_page(df: pl.DataFrame, f: Filter, allowed: tuple[str, ...], default: str, tie: str) -> pl.DataFrame:
    """Sort by `sort` (default visitors desc), ties by the primary field asc; then offset/limit."""
    field = f.sort if f.sort in allowed else default
    descending = (f.direction or "desc") == "desc"
    by = [field] if field == tie else [field, tie]
    df = df.sort(by, descending=[descending] + [False] * (len(by) - 1), nulls_last=True)
    return df.slice(f.offset, f.limit)


def active(data_dir: Path, f: Filter, now: datetime | None = None) -> dict[str, Any]:
    """/statistics/active: visitors of the last `start` seconds, per page and per country."""
    end = (now or datetime.now(timezone.utc)) + timedelta(seconds=1)
    seconds = f.start if f.start else 600
    rows = Rows(Path(data_dir), f, end - timedelta(seconds=seconds + 1), end)
    pv = rows.page_views(["visitor_id", "path", "title", "time"])
    pages = pv.group_by("path").agg(
        pl.col("title").get(pl.col("time").arg_max()).alias("title"),
        pl.col("visitor_id").n_unique().alias("visitors"),
    )
    sess = rows.sessions(["visitor_id", "sign", "country_code"])
    countries = sess.group_by("country_code").agg(m.visitors())
    total_q = sess.select(m.visitors())
    pages_df, countries_df, total_df = pl.collect_all([pages, countries, total_q])
    total_visitors = int(total_df["visitors"][0] or 0)
    pages_df = pages_df.sort(["visitors", "path"], descending=[True, False])
    countries_df = countries_df.filter(pl.col("visitors") > 0).sort(["visitors", "country_code"], descending=[True, False])
    return {
        "stats": pages_df.select("path", "title", "visitors").to_dicts(),
        "countries": [
            {"visitors": r["visitors"], "relative_visitors": m.rate(r["visitors"], total_visitors), "country_code": r["country_code"]}
            for r in countries_df.iter_rows(named=True)
        ],
        "visitors": total_visitors,
    }


def dates_of(f: Filter) -> tuple[date, date]:
    assert f.from_date is not None and f.to_date is not None
    return f.from_date, f.to_date

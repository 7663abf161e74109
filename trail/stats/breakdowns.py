"""Breakdowns by one dimension: os, browser, country, ..., referrer, platform, hours, weekdays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from trail.stats import kernels, rollup_dims, rollup_time, rollup_totals
from trail.stats import metrics as m
from trail.stats.buckets import TimePart, fixed_offset_ms, hour_of_day
from trail.stats.filters import Filter
from trail.stats.pages import _unfiltered_totals, sort_and_page
from trail.stats.sources import Rows, custom_metrics, metrics_by, rows_for

# Report name -> grouped columns (the last one is the primary field `search` looks at).
DIMENSIONS: dict[str, list[str]] = {
    "os": ["os"],
    "os/version": ["os", "os_version"],
    "browser": ["browser"],
    "browser/version": ["browser", "browser_version"],
    "country": ["country_code"],
    "region": ["country_code", "region"],
    "city": ["country_code", "region", "city"],
    "language": ["language"],
    "screen": ["screen_class"],
    "channel": ["channel"],
    "utm/source": ["utm_source"],
    "utm/medium": ["utm_medium"],
    "utm/campaign": ["utm_campaign"],
    "utm/content": ["utm_content"],
    "utm/term": ["utm_term"],
}


def _visitors_by(rows: Rows, columns: list[str]) -> pl.LazyFrame:
    f = rows.f
    rolled = rollup_dims.grouped(rows, columns)
    if rolled is not None:
        return rolled.lazy()
    if f.page_level:
        pv = rows.page_views(["visitor_id", *columns])
        return pv.group_by(columns).agg(pl.col("visitor_id").n_unique().alias("visitors"))
    # Visitors are distinct ids of +1 rows (metrics.visitors): keep only those, then count per
    # group without Polars' per-group hash sets.
    live = rows.sessions(["visitor_id", "session_id", "sign", *columns])
    return kernels.visitors_by(live.filter(m.present()), columns).lazy()


def _all_visitors(rows: Rows) -> pl.LazyFrame:
    rolled = rollup_totals.totals_frame(rows.unfiltered(), ["visitors"])
    if rolled is not None:
        return rolled
    return rows.unfiltered().sessions(["visitor_id", "sign"]).select(m.visitors())


def _search(lf: pl.LazyFrame, f: Filter, column: str) -> pl.LazyFrame:
    if not f.search:
        return lf
    return lf.filter(pl.col(column).str.to_lowercase().str.contains(f.search.lower(), literal=True))


def dimension(data_dir: Path, f: Filter, name: str) -> list[dict[str, Any]]:
    """{visitors, relative_visitors, <fields>} ordered by visitors desc, then the field asc."""
    columns = DIMENSIONS[name]
    rows = rows_for(data_dir, f)
    lf = _search(_visitors_by(rows, columns), f, columns[-1]).filter(pl.col("visitors") > 0)
    df, total = pl.collect_all([lf, _all_visitors(rows)])
    # one chunk: Polars divides a column by a scalar chunk by chunk, and the last bit of a
    # quotient can depend on where a chunk ends (rollups and rows give different chunks)
    df = df.rechunk().with_columns(
        relative_visitors=m.rate_expr(pl.col("visitors"), total["visitors"][0] or 0)
    )
    df = sort_and_page(df, f, ("visitors", "relative_visitors", *columns), "visitors", columns[-1])
    return df.select("visitors", "relative_visitors", *columns).to_dicts()


def referrer(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """Grouped by referrer name (with an example referrer), by full referrer under a referrer filter."""
    rows = rows_for(data_dir, f)
    key = "referrer" if "referrer" in f.fields else "referrer_name"
    other = "referrer" if key == "referrer_name" else "referrer_name"
    rolled = rollup_dims.grouped(rows, [key], sums=True) if key == "referrer_name" else None
    if rolled is not None:
        lf = _search(rolled.lazy(), f, key).filter(pl.col("visitors") > 0)
    else:
        counted = _search(metrics_by(rows, [pl.col(key)], [key]), f, key)
        # an example (the smallest value, so the answer does not depend on row order), from
        # the rows the counts come from; of the distinct pairs first (a string min over every
        # row costs twice as much)
        read = rows.page_views if f.page_level else rows.sessions
        pairs = _search(read([key, other]), f, key).unique()
        examples = pairs.group_by(key).agg(pl.col(other).min())
        lf = counted.join(examples, on=key, how="left").filter(pl.col("visitors") > 0)
    df, total = pl.collect_all([lf, _all_visitors(rows)])
    df = df.rechunk().with_columns(  # one chunk: see dimension
        referrer_icon=pl.lit(""),
        relative_visitors=m.rate_expr(pl.col("visitors"), total["visitors"][0] or 0),
        bounce_rate=m.rate_expr(pl.col("bounces"), pl.col("sessions")),
    )
    allowed = (
        "visitors",
        "sessions",
        "relative_visitors",
        "bounces",
        "bounce_rate",
        "referrer",
        "referrer_name",
    )
    df = sort_and_page(df, f, allowed, "visitors", key)
    cols = [
        "referrer",
        "referrer_name",
        "referrer_icon",
        "visitors",
        "sessions",
        "relative_visitors",
        "bounces",
        "bounce_rate",
    ]
    return df.select(cols).to_dicts()


HOSTNAME_SORTS = ("hostname", "visitors", "views", "sessions", "bounces", "relative_visitors",
                  "relative_views", "bounce_rate")  # fmt: skip


def hostname(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/hostname: visitors, views, sessions and bounces per hostname."""
    rows = rows_for(data_dir, f)
    lf = _search(metrics_by(rows, [pl.col("hostname")], ["hostname"]), f, "hostname")
    df, tot = pl.collect_all([lf.filter(pl.col("visitors") > 0), _unfiltered_totals(rows)])
    t = tot.row(0, named=True)
    df = df.with_columns(
        relative_visitors=m.rate_expr(pl.col("visitors"), t["visitors"] or 0),
        relative_views=m.rate_expr(pl.col("views"), t["views"] or 0),
        bounce_rate=m.rate_expr(pl.col("bounces"), pl.col("sessions")),
    )
    df = sort_and_page(df, f, HOSTNAME_SORTS, "visitors", "hostname")
    return df.select(*HOSTNAME_SORTS).to_dicts()


def platform(data_dir: Path, f: Filter) -> dict[str, Any]:
    """Desktop and mobile visitors; unknown = total minus both."""
    rows = rows_for(data_dir, f)
    rolled = rollup_dims.platform_visitors(rows)
    if rolled is not None:
        total, desktop, mobile = rolled
        return _platform(total, desktop, mobile, total)  # unfiltered: every visitor counts
    live = m.present()
    if f.page_level:
        lf = rows.page_views(["visitor_id", "desktop", "mobile"]).with_columns(
            sign=pl.lit(1, pl.Int8)
        )
    else:
        lf = rows.sessions(["visitor_id", "sign", "desktop", "mobile"])
    counts = lf.select(
        total=pl.col("visitor_id").filter(live).n_unique(),
        desktop=pl.col("visitor_id").filter(live & pl.col("desktop")).n_unique(),
        mobile=pl.col("visitor_id").filter(live & pl.col("mobile")).n_unique(),
    )
    c, all_v = pl.collect_all([counts, _all_visitors(rows)])
    total, desktop, mobile = (int(c[k][0] or 0) for k in ("total", "desktop", "mobile"))
    return _platform(total, desktop, mobile, all_v["visitors"][0] or 0)


def _platform(total: int, desktop: int, mobile: int, denominator: int) -> dict[str, Any]:
    unknown = max(total - desktop - mobile, 0)
    return {
        "platform_desktop": desktop,
        "platform_mobile": mobile,
        "platform_unknown": unknown,
        "relative_platform_desktop": m.rate(desktop, denominator),
        "relative_platform_mobile": m.rate(mobile, denominator),
        "relative_platform_unknown": m.rate(unknown, denominator),
    }


def _filled(
    df: pl.DataFrame,
    keys: list[str],
    grid: Sequence[tuple[int, ...]],
    all_visitors: int,
    custom: pl.DataFrame | None = None,
) -> list[dict[str, Any]]:
    got = {tuple(r[k] for k in keys): r for r in df.iter_rows(named=True)}
    extra = (
        {}
        if custom is None
        else {tuple(r[k] for k in keys): r for r in custom.iter_rows(named=True)}
    )
    out = []
    for point in grid:
        r = got.get(point, {})
        item: dict[str, Any] = dict(zip(keys, point, strict=True))
        for k in ("visitors", "views", "sessions", "bounces"):
            item[k] = int(r.get(k) or 0)
        item["bounce_rate"] = m.rate(item["bounces"], item["sessions"])
        item["cr"] = m.rate(item["visitors"], all_visitors)
        c = extra.get(point, {})
        item["custom_metric_avg"] = float(c.get("custom_metric_avg") or 0.0)
        item["custom_metric_total"] = float(c.get("custom_metric_total") or 0.0)
        out.append(item)
    return out


def hours(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """Visitors by local hour, 0..23 all present."""
    shift = fixed_offset_ms(f.tz, *f.window())
    grid = [(h,) for h in range(24)]
    if shift is not None:
        return _by_time(data_dir, f, TimePart("hour", shift, 3_600_000, 0, 24), grid)
    zoned = TimePart("hour", 0, 3_600_000, 0, 24)
    return _by_time(data_dir, f, hour_of_day(f.tz).alias("hour"), grid, zoned)


def _by_time(
    data_dir: Path,
    f: Filter,
    key: pl.Expr | TimePart,
    grid: Sequence[tuple[int, ...]],
    zoned: TimePart | None = None,
) -> list[dict[str, Any]]:
    """The core metrics of page views by a local time part (section 5: "page/hour/minute
    grouping reads page views"), every point of `grid` present; cr against the range's
    unfiltered visitors; custom metrics from the matching events of each time part. Without a
    filter, a time part of whole hours comes from the time rollups (trail.stats.rollup_time):
    `key` itself, or for a zone whose offset changes in the window, `zoned` over local hours
    (the offset of each hour from f.tz)."""
    rows = rows_for(data_dir, f)
    part = key if isinstance(key, TimePart) else None
    keys = [key.expr() if isinstance(key, TimePart) else key]
    if part is not None:
        rolled = rollup_time.time_counts(rows, part)
    else:
        rolled = rollup_time.time_counts(rows, zoned, f.tz) if zoned is not None else None
    counted = (
        rolled.lazy() if rolled is not None
        else metrics_by(rows, keys, ["time"], views=True, part=part)
    )  # fmt: skip
    queries = [counted, _all_visitors(rows)]
    custom = custom_metrics(rows, keys)
    if custom is not None:
        queries.append(custom)
    frames = pl.collect_all(queries)
    names = [k.meta.output_name() for k in keys]
    all_visitors = frames[1]["visitors"][0] or 0
    return _filled(frames[0], names, grid, all_visitors, frames[2] if custom is not None else None)


def minutes(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """Visitors by local minute of the hour, 0..59 all present (mostly used with from_time/to_time)."""
    rows = rows_for(data_dir, f)
    offsets = {
        int(t.astimezone(f.tz).utcoffset().total_seconds()) // 60 % 60  # type: ignore[union-attr]
        for t in (rows.start, rows.end)
    }

    grid = [(i,) for i in range(60)]
    if len(offsets) == 1:
        # The zone's offset has the same minutes all window long (DST moves whole hours):
        # plain arithmetic on the epoch is much cheaper than a per-row zone conversion.
        return _by_time(data_dir, f, TimePart("minute", 0, 60_000, next(iter(offsets)), 60), grid)
    local = pl.col("time").dt.convert_time_zone(f.tz.key)
    return _by_time(data_dir, f, local.dt.minute().cast(pl.Int64).alias("minute"), grid)


def weekdays(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """Visitors by local weekday (Monday = 0) and hour, 7 x 24 entries.

    Grouped by one small integer, the hour of the week (weekday * 24 + hour), which the
    counting kernel takes as its own key; with one offset all window long it is arithmetic on
    the epoch (1970-01-01 was a Thursday, weekday 3: hour h of the epoch is slot (h + 72) % 168)."""
    shift = fixed_offset_ms(f.tz, *f.window())
    slot: pl.Expr | TimePart
    zoned = TimePart("slot", 0, 3_600_000, 72, 168)
    if shift is not None:
        slot = replace(zoned, shift=shift)
    else:
        local = pl.col("time").dt.convert_time_zone(f.tz.key)
        hour = (local.dt.weekday().cast(pl.Int64) - 1) * 24 + local.dt.hour().cast(pl.Int64)
        slot = hour.alias("slot")
    out = _by_time(data_dir, f, slot, [(s,) for s in range(7 * 24)], zoned)
    return [
        {"weekday": r["slot"] // 24, "hour": r["slot"] % 24,
         **{k: r[k] for k in ("visitors", "views", "sessions", "bounces")}}
        for r in out
    ]  # fmt: skip

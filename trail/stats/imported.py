"""Imported statistics (trail.storage.imported) added to the reports, the way Pirsch adds its
`imported_*` tables (pirsch-analytics/pirsch, `pkg/analyzer`: each report names the imported table
of its own dimension and sums it into its counts; relative values divide by the collected total
plus the sum of that table).

When imported rows count (Pirsch's query builder joins the imported table whatever the filter and
narrows it only by a filter on the joined table's own column):
- never under a time of day, a visitor or a session id: imported rows are whole days;
- totals, visitor series, growth and overview add the `visitors` table under any filter, as
  Pirsch does (a daily table cannot be narrowed by page or country, so a filtered total is the
  filtered collected count plus every imported visitor of the window; its `cr` stays the
  collected one, as Pirsch's `any(t.cr)`);
- a breakdown adds the table of its own dimension only when every condition of the filter is on
  that dimension (none at all, or e.g. `country=de` on the country report), and then only the
  imported rows those conditions keep, read with the filter's own operators. A condition on any
  other field leaves imported rows out of the breakdown (Pirsch adds them unnarrowed there);
- only on days the site has no collected data: an imported day counts when no collected session
  row of the site falls on that local date (in the filter's time zone). Collected rows are never
  hidden; a day is never counted from both sources.

What they add:
- total, visitor series, growth and overview: visitors, views, sessions and bounces of the
  `visitors` table; bounce rate is recomputed from the sums;
- page, entry and exit pages, referrers, os, browser, country, region, city, language and UTM
  source/medium/campaign: the table of that dimension, summed per value into the collected row
  of the same value (or a new row); sorting and paging happen after the merge. Relative values
  divide by the unfiltered collected total plus the whole table over the window;
- platform: the `device` table, "desktop" and "mobile" (any case) to their platform, every other
  category to unknown; a platform filter keeps the categories counted under that platform.
The collected paths of the reports are left as they are: `report` runs them and adds to their
answer, so reports over collected rows alone (and their reference model) are unchanged.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from trail.stats import metrics as m
from trail.stats import reports, rollup_totals
from trail.stats.breakdowns import DIMENSIONS
from trail.stats.buckets import series_starts
from trail.stats.filters import Filter
from trail.stats.pages import PAGE_SORTS, sort_and_page
from trail.stats.predicates import field_expr
from trail.stats.sources import core, rows_for
from trail.storage import imported as storage
from trail.storage import layout

COUNTS = ("visitors", "views", "sessions", "bounces")
# Dimension report -> the imported table of its dimension.
DIMENSION_TABLES = {
    "os": "os",
    "browser": "browser",
    "country": "country",
    "region": "region",
    "city": "city",
    "language": "language",
    "utm/source": "utm_source",
    "utm/medium": "utm_medium",
    "utm/campaign": "utm_campaign",
}
# Report -> the imported table it adds.
TABLE_OF = {
    "total": "visitors",
    "visitor": "visitors",
    "growth": "visitors",
    "page": "page",
    "page/entry": "entry_page",
    "page/exit": "exit_page",
    "referrer": "referrer",
    "platform": "device",
    **DIMENSION_TABLES,
}
# Reports that add the `visitors` table under any filter.
TOTALS = frozenset({"total", "visitor", "growth"})
# Breakdown -> the filter columns of its own dimension, read on its imported table's column (both
# referrer filters match the imported referrer, as Pirsch's join does).
OWN_FIELDS: dict[str, tuple[str, ...]] = {
    "page": ("path",),
    "page/entry": ("entry_path",),
    "page/exit": ("exit_path",),
    "referrer": ("referrer", "referrer_name"),
    "platform": (),
    **{name: (DIMENSIONS[name][-1],) for name in DIMENSION_TABLES},
}
_ALL = 2**62  # a limit that keeps every collected row for the merge (paged afterwards)


def in_window(f: Filter) -> bool:
    """Whether imported days can answer the filter's window: whole days, no visitor or session."""
    return (
        f.from_date is not None
        and f.to_date is not None
        and f.from_time is None
        and f.to_time is None
        and f.visitor_id is None
        and f.session_id is None
        and layout.is_site_id(f.site_id)
    )


def applies(name: str, f: Filter) -> bool:
    """Whether report `name` adds imported rows under this filter (see the module doc)."""
    if name not in TABLE_OF or not in_window(f):
        return False
    if name in TOTALS:
        return True
    own = OWN_FIELDS[name]
    return (
        all(column in own for column in f.fields)
        and not (f.pattern and name != "page")
        and not (f.platform and name != "platform")
        and not (f.tags or f.meta or f.tag or f.event_meta_key)
    )


def narrowed(name: str, f: Filter, imp: pl.DataFrame, table: str) -> pl.DataFrame:
    """The imported rows of a breakdown that its own-dimension conditions keep."""
    parts = []
    dim = storage.dimension(table)
    for column in OWN_FIELDS[name]:
        if column in f.fields and dim is not None:
            parts.append(field_expr(pl.col(dim), f.fields[column]))
    if name == "page" and f.pattern and "path" not in f.fields:
        parts.append(pl.col("path").str.contains(f.pattern))
    if name == "platform" and f.platform:
        parts.append(_platform_kept(f.platform))
    return imp.filter(pl.all_horizontal(parts)) if parts else imp


def _platform_of_category() -> pl.Expr:
    category = pl.col("category").str.to_lowercase()
    return (
        pl.when(category == "desktop")
        .then(pl.lit("desktop"))
        .when(category == "mobile")
        .then(pl.lit("mobile"))
        .otherwise(pl.lit("unknown"))
    )


def _platform_kept(platforms: tuple[tuple[str, bool], ...]) -> pl.Expr:
    platform = _platform_of_category()
    positives = [platform == name for name, negated in platforms if not negated]
    parts = [platform != name for name, negated in platforms if negated]
    if positives:
        parts.append(pl.any_horizontal(positives))
    return pl.all_horizontal(parts)


def counted(data_dir: Path, f: Filter, table: str) -> pl.DataFrame:
    """The imported rows of `table` in the filter's window on days without collected data (the
    rows a report narrows; see the module doc)."""
    if not in_window(f):
        return pl.DataFrame(schema=storage.schema(table))
    assert f.from_date is not None and f.to_date is not None
    rows = storage.read(data_dir, f.site_id, table, f.from_date, f.to_date)
    if rows.height:
        busy = collected_days(data_dir, f, rows["date"].min(), rows["date"].max())  # type: ignore[arg-type]
        if busy:
            rows = rows.filter(~pl.col("date").is_in(sorted(busy)))
    return rows


def collected_days(data_dir: Path, f: Filter, first: date, last: date) -> set[date]:
    """The local dates (in the filter's zone) of first..last with a collected session row."""
    near = [
        d
        for d in layout.site_days(data_dir, "sessions", f.site_id)
        if first - timedelta(days=1) <= d <= last + timedelta(days=1)
    ]
    if not near:  # no UTC day directory can hold a row of those local dates
        return set()
    window = replace(f.without_dims(), from_date=first, to_date=last)
    times = rows_for(data_dir, window).sessions(["time"])
    local = times.select(pl.col("time").dt.convert_time_zone(f.tz.key).dt.date().unique())
    return set(local.collect().to_series().to_list())


def report(
    name: str, data_dir: Path, f: Filter, compute: Callable[[Filter], Any], *, titles: bool = False
) -> Any:
    """compute(f), the collected answer of report `name`, with the imported rows that count added
    (`titles`: the page report groups by path and title)."""
    if not applies(name, f) or not storage.has_any(data_dir, f.site_id):
        return compute(f)
    table = TABLE_OF[name]
    if name == "growth":
        return _growth(data_dir, f, compute(f))
    window = counted(data_dir, f, table)  # the whole table: the imported part of denominators
    if not window.height:
        return compute(f)
    if name == "total":
        return add_to_total(compute(f), window, keep_cr=not f.is_unfiltered)
    if name == "visitor":
        return _add_to_series(f, compute(f), window)
    imp = narrowed(name, f, window, table)
    if name == "platform":
        return _platform(data_dir, f, compute(f), imp, window)
    whole = compute(replace(f, offset=0, limit=_ALL))
    if name == "page":
        return _pages(data_dir, f, whole, imp, window, titles)
    if name in ("page/entry", "page/exit"):
        return _entry_exit(data_dir, f, whole, imp, window, name.removeprefix("page/"))
    if name == "referrer":
        return _referrers(data_dir, f, whole, imp, window)
    return _dimension(data_dir, f, whole, imp, window, DIMENSIONS[name], table)


# -- totals and series ------------------------------------------------------------------------


def _sums(imp: pl.DataFrame, columns: tuple[str, ...]) -> dict[str, int]:
    return {c: int(imp[c].cast(pl.Int64).sum() or 0) for c in columns}


def add_to_total(
    out: dict[str, Any], imp: pl.DataFrame, *, keep_cr: bool = False
) -> dict[str, Any]:
    """A total (visitors, views, sessions, bounces, rates) plus the imported `visitors` rows
    (`keep_cr`: a filtered total keeps its collected conversion rate, as Pirsch does)."""
    return _plus(out, _sums(imp, COUNTS), keep_cr)


def _plus(out: dict[str, Any], added: dict[str, int], keep_cr: bool) -> dict[str, Any]:
    out = {**out, **{k: int(out[k]) + added[k] for k in COUNTS}}
    out["bounce_rate"] = m.rate(out["bounces"], out["sessions"])
    if not keep_cr:  # without a filter every visitor is one of all visitors
        out["cr"] = m.rate(out["visitors"], out["visitors"])
    return out


def _add_to_series(f: Filter, out: list[dict[str, Any]], imp: pl.DataFrame) -> list[dict[str, Any]]:
    assert f.from_date is not None and f.to_date is not None
    starts = series_starts(f.from_date, f.to_date, f.scale)
    daily = imp.group_by("date").agg(pl.col(c).cast(pl.Int64).sum() for c in COUNTS)
    added: dict[int, dict[str, int]] = {}
    for r in daily.iter_rows(named=True):
        sums = added.setdefault(bisect_right(starts, r["date"]) - 1, dict.fromkeys(COUNTS, 0))
        for c in COUNTS:
            sums[c] += r[c]
    out = list(out)
    for i, sums in added.items():
        out[i] = _plus(out[i], sums, not f.is_unfiltered)
    return out


def total_merged(data_dir: Path, f: Filter, collected: dict[str, Any]) -> dict[str, Any]:
    """A collected total of the filter's window plus the imported rows that count."""
    imp = counted(data_dir, f, "visitors")
    return add_to_total(collected, imp, keep_cr=not f.is_unfiltered) if imp.height else collected


def _growth(data_dir: Path, f: Filter, collected: dict[str, Any]) -> dict[str, Any]:
    """Growth of the merged totals; the time spent and custom metrics stay collected only."""
    prev_rows = reports.previous_rows(data_dir, f)
    if not (
        counted(data_dir, f, "visitors").height or counted(data_dir, prev_rows.f, "visitors").height
    ):
        return collected
    cur = total_merged(data_dir, f, reports.total(data_dir, f))
    prev = total_merged(data_dir, prev_rows.f, reports.total_for_rows(prev_rows))
    return {
        **collected,
        "visitors_growth": m.growth(cur["visitors"], prev["visitors"]),
        "views_growth": m.growth(cur["views"], prev["views"]),
        "sessions_growth": m.growth(cur["sessions"], prev["sessions"]),
        "bounces_growth": m.growth(cur["bounce_rate"], prev["bounce_rate"]),
        "cr_growth": m.growth(cur["cr"], prev["cr"]),
    }


def overview(data_dir: Path, f: Filter, collected: dict[str, Any]) -> dict[str, Any]:
    """/statistics/overview (`collected`, for the filter reports.overview_filter completed) with
    the imported rows that count in its totals, growth and daily series."""
    if not applies("total", f) or not storage.has_any(data_dir, f.site_id):
        return collected
    prev_rows = reports.previous_rows(data_dir, f)
    if not (
        counted(data_dir, f, "visitors").height or counted(data_dir, prev_rows.f, "visitors").height
    ):
        return collected
    cur = total_merged(data_dir, f, reports.total(data_dir, f))
    prev = total_merged(data_dir, prev_rows.f, reports.total_for_rows(prev_rows))
    daily = replace(f, scale="day")
    growth = m.growth(cur["visitors"], prev["visitors"])
    return {
        **collected,
        "visitors": cur["visitors"],
        "views": cur["views"],
        "visitors_growth": growth,
        "visitor_growth": growth,
        "views_growth": m.growth(cur["views"], prev["views"]),
        "visitors_time_series": report(
            "visitor", data_dir, daily, lambda g: reports.visitor(data_dir, g)
        ),
    }


# -- breakdowns -------------------------------------------------------------------------------


def _collected_totals(data_dir: Path, f: Filter) -> dict[str, int]:
    """The collected unfiltered visitors, sessions and views of the window (denominators)."""
    rows = rows_for(data_dir, f).unfiltered()
    columns = ["visitors", "sessions", "views"]
    lf = rollup_totals.totals_frame(rows, columns)
    t = (lf if lf is not None else core(rows)).collect().row(0, named=True)
    return {c: int(t[c] or 0) for c in columns}


def _searched(imp: pl.DataFrame, f: Filter, column: str) -> pl.DataFrame:
    if not f.search:
        return imp
    return imp.filter(
        pl.col(column).str.to_lowercase().str.contains(f.search.lower(), literal=True)
    )


def _frame(rows: list[dict[str, Any]], types: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=types) if rows else pl.DataFrame(schema=types)


def _summed(
    collected: pl.DataFrame,
    added: pl.DataFrame,
    keys: list[str],
    counts: list[str],
    keep: list[str],
) -> pl.DataFrame:
    """Collected and imported rows of the same keys added up; `keep` columns from the collected
    row when there is one (it comes first)."""
    both = pl.concat([collected.select(*keys, *counts, *keep), added.select(*keys, *counts, *keep)])
    return both.group_by(keys, maintain_order=True).agg(
        *(pl.col(c).sum() for c in counts), *(pl.col(c).first() for c in keep)
    )


def _pages(
    data_dir: Path,
    f: Filter,
    whole: list[dict[str, Any]],
    imp: pl.DataFrame,
    window: pl.DataFrame,
    titles: bool,
) -> list[dict[str, Any]]:
    ints = {
        c: pl.Int64()
        for c in ("visitors", "views", "sessions", "bounces", "average_time_spent_seconds")
    }
    collected = _frame(whole, {"path": pl.String(), "title": pl.String(), **ints})
    counts = ["visitors", "views", "sessions", "bounces"]
    added = _searched(imp, f, "path").select(
        "path", pl.lit("").alias("title"), *(pl.col(c).cast(pl.Int64) for c in counts),
        pl.lit(0, pl.Int64).alias("average_time_spent_seconds"),
    )  # fmt: skip
    keys = ["path", "title"] if titles else ["path"]
    keep = ["average_time_spent_seconds"] + ([] if titles else ["title"])
    df = _summed(collected, added, keys, counts, keep)
    t, imp_sums = _collected_totals(data_dir, f), _sums(window, ("visitors", "views"))
    df = df.with_columns(
        relative_visitors=m.rate_expr(pl.col("visitors"), t["visitors"] + imp_sums["visitors"]),
        relative_views=m.rate_expr(pl.col("views"), t["views"] + imp_sums["views"]),
        bounce_rate=m.rate_expr(pl.col("bounces"), pl.col("sessions")),
    )
    df = sort_and_page(df, f, PAGE_SORTS, "visitors", "path")
    return df.select("path", "title", *counts, *PAGE_SORTS[6:]).to_dicts()


def _entry_exit(
    data_dir: Path,
    f: Filter,
    whole: list[dict[str, Any]],
    imp: pl.DataFrame,
    window: pl.DataFrame,
    kind: str,
) -> list[dict[str, Any]]:
    count, rate = ("entries", "entry_rate") if kind == "entry" else ("exits", "exit_rate")
    extra = ["average_time_spent_seconds"] if kind == "entry" else []
    ints = {c: pl.Int64() for c in ("visitors", "sessions", count, *extra)}
    collected = _frame(whole, {"path": pl.String(), "title": pl.String(), **ints})
    # Pirsch: the page's visitors and sessions add the imported ones, its entries (exits) the
    # imported visitors.
    added = _searched(imp, f, f"{kind}_path").select(
        pl.col(f"{kind}_path").alias("path"), pl.lit("").alias("title"),
        pl.col("visitors").cast(pl.Int64), pl.col("sessions").cast(pl.Int64),
        pl.col("visitors").cast(pl.Int64).alias(count),
        *(pl.lit(0, pl.Int64).alias(c) for c in extra),
    )  # fmt: skip
    df = _summed(collected, added, ["path"], ["visitors", "sessions", count], ["title", *extra])
    sessions = _collected_totals(data_dir, f)["sessions"] + _sums(window, ("sessions",))["sessions"]
    df = df.with_columns(m.rate_expr(pl.col(count), sessions).alias(rate))
    cols = ["path", "title", "visitors", "sessions", count, rate, *extra]
    return sort_and_page(df, f, tuple(cols), count, "path").select(cols).to_dicts()


REFERRER_SORTS = ("visitors", "sessions", "relative_visitors", "bounces", "bounce_rate",
                  "referrer", "referrer_name")  # fmt: skip


def _referrers(
    data_dir: Path, f: Filter, whole: list[dict[str, Any]], imp: pl.DataFrame, window: pl.DataFrame
) -> list[dict[str, Any]]:
    counts = ["visitors", "sessions", "bounces"]
    names = {"referrer": pl.String(), "referrer_name": pl.String(), "referrer_icon": pl.String()}
    collected = _frame(whole, {**names, **{c: pl.Int64() for c in counts}})
    # An imported referrer is grouped with the collected referrer names (Pirsch joins
    # imported_referrer.referrer on referrer_name) and is its own example.
    added = _searched(imp, f, "referrer").select(
        pl.col("referrer").alias("referrer_name"), *(pl.col(c).cast(pl.Int64) for c in counts),
        "referrer", pl.lit("").alias("referrer_icon"),
    )  # fmt: skip
    df = _summed(collected, added, ["referrer_name"], counts, ["referrer", "referrer_icon"])
    visitors = _collected_totals(data_dir, f)["visitors"] + _sums(window, ("visitors",))["visitors"]
    df = df.with_columns(
        relative_visitors=m.rate_expr(pl.col("visitors"), visitors),
        bounce_rate=m.rate_expr(pl.col("bounces"), pl.col("sessions")),
    )
    df = sort_and_page(df, f, REFERRER_SORTS, "visitors", "referrer_name")
    cols = ["referrer", "referrer_name", "referrer_icon", "visitors", "sessions",
            "relative_visitors", "bounces", "bounce_rate"]  # fmt: skip
    return df.select(cols).to_dicts()


def _dimension(
    data_dir: Path,
    f: Filter,
    whole: list[dict[str, Any]],
    imp: pl.DataFrame,
    window: pl.DataFrame,
    columns: list[str],
    table: str,
) -> list[dict[str, Any]]:
    collected = _frame(whole, {**{c: pl.String() for c in columns}, "visitors": pl.Int64()})
    dim = storage.dimension(table)
    assert dim is not None
    # The imported tables hold one dimension: region and city rows have no country (or region).
    added = _searched(imp, f, dim).select(
        *(pl.col(dim).alias(c) if c == columns[-1] else pl.lit("").alias(c) for c in columns),
        pl.col("visitors").cast(pl.Int64),
    )
    df = _summed(collected, added, columns, ["visitors"], []).filter(pl.col("visitors") > 0)
    visitors = _collected_totals(data_dir, f)["visitors"] + _sums(window, ("visitors",))["visitors"]
    df = df.with_columns(relative_visitors=m.rate_expr(pl.col("visitors"), visitors))
    df = sort_and_page(df, f, ("visitors", "relative_visitors", *columns), "visitors", columns[-1])
    return df.select("visitors", "relative_visitors", *columns).to_dicts()


def _platform(
    data_dir: Path, f: Filter, out: dict[str, Any], imp: pl.DataFrame, window: pl.DataFrame
) -> dict[str, Any]:
    platform = _platform_of_category()
    visitors = pl.col("visitors").cast(pl.Int64)
    sums = imp.select(
        **{p: visitors.filter(platform == p).sum() for p in ("desktop", "mobile", "unknown")}
    ).row(0, named=True)
    denominator = (
        _collected_totals(data_dir, f)["visitors"] + _sums(window, ("visitors",))["visitors"]
    )
    out = dict(out)
    for p in ("desktop", "mobile", "unknown"):
        out[f"platform_{p}"] = int(out[f"platform_{p}"]) + int(sums[p] or 0)
        out[f"relative_platform_{p}"] = m.rate(out[f"platform_{p}"], denominator)
    return out

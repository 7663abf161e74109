"""Page reports: pages, entry and exit pages, active visitors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from trail.stats import kernels, rollup_dims, rollup_pages, rollup_totals
from trail.stats import metrics as m
from trail.stats.filters import Filter
from trail.stats.predicates import field_expr, page_parts
from trail.stats.sources import KEYS, Rows, core, live_states, metrics_by, rows_for

PAGE_SORTS = (
    "path", "title", "visitors", "views", "sessions", "bounces",
    "relative_visitors", "relative_views", "bounce_rate", "average_time_spent_seconds",
)  # fmt: skip


def page(data_dir: Path, f: Filter, *, group_by_title: bool = False) -> list[dict[str, Any]]:
    """/statistics/page: per path (and title), sorted, searched and paged."""
    rows = rows_for(data_dir, f)
    keys = ["path", "title"] if group_by_title else ["path"]
    searched = (
        pl.col("path").str.to_lowercase().str.contains((f.search or "").lower(), literal=True)
    )
    pv = rows.page_views([*m.PAGE_VIEW_COLUMNS, "path", "title", "time"])
    if f.search:
        pv = pv.filter(searched)
    rolled = None if group_by_title else rollup_pages.page_stats(rows)
    if rolled is not None:
        stats = rolled.lazy().filter(searched) if f.search else rolled.lazy()
    else:
        if not group_by_title:
            stats = kernels.page_stats(pv).lazy()
        else:
            stats = pv.group_by(keys).agg(m.page_view_metrics())
        stats = stats.join(page_bounces(rows, pv), on="path", how="left").with_columns(
            pl.col("bounces").fill_null(0)
        )
    queries = [stats, _unfiltered_totals(rows)]
    # From the rollups, the stats hold the average time on page already.
    from_rows = f.include_avg_time_on_page and rolled is None
    if from_rows:
        queries.append(_time_on_page(rows, keys))
    frames = pl.collect_all(queries)
    df, tot = frames[0], frames[1].row(0, named=True)
    df = df.with_columns(
        relative_visitors=m.rate_expr(pl.col("visitors"), tot["visitors"] or 0),
        relative_views=m.rate_expr(pl.col("views"), tot["views"] or 0),
        bounce_rate=m.rate_expr(pl.col("bounces"), pl.col("sessions")),
    )
    if from_rows:
        df = df.join(frames[2], on=keys, how="left").with_columns(
            pl.col("average_time_spent_seconds").fill_null(0)
        )
    elif not f.include_avg_time_on_page:
        df = df.with_columns(average_time_spent_seconds=pl.lit(0, pl.Int64))
    df = sort_and_page(df, f, PAGE_SORTS, "visitors", "path")
    cols = ["path", "title", "visitors", "views", "sessions", "bounces", *PAGE_SORTS[6:]]
    return df.select(cols).to_dicts()


def _unfiltered_totals(rows: Rows) -> pl.LazyFrame:
    rolled = rollup_totals.totals_frame(rows.unfiltered(), ["visitors", "views"])
    if rolled is not None:
        return rolled
    return (
        rows.unfiltered()
        .sessions(["visitor_id", "sign", "page_views"])
        .select(m.visitors(), m.views())
    )


def times_on_page(
    rows: Rows, columns: tuple[str, ...] = (), *, search: bool = False
) -> pl.LazyFrame:
    """The matching page views (`search`: whose path also contains the search) with a non-zero
    `time_on_page`: the next view's duration in the session, among the views of the window
    (kernels.with_time_on_page). Zeros (exits, bounces) are left out."""
    f = rows.f
    # The next view may be of any page: pair all views of the sessions that have a matching one.
    paths = ["path"] if f.page_level or search else []
    # Views at one instant pair in kernels.TIE_ORDER, read up to the last column the answer
    # reads: under page conditions (tags among them) every one.
    ties = ["title", "tag_keys", "tag_values"] if f.page_level else []
    wanted = [*KEYS, "time", "duration_seconds", *paths, *columns, *ties]
    pv = rows.page_views(list(dict.fromkeys(wanted)), with_paths=False)
    if f.page_level:
        pv = pv.join(rows.page_keys(), on=KEYS, how="semi")
    pv = kernels.with_time_on_page(pv.collect()).lazy()
    return pv.filter(_page_filter_only(f, search) & (pl.col("time_on_page") > 0))


def page_bounces(rows: Rows, pv: pl.LazyFrame) -> pl.LazyFrame:
    """`path`, `bounces`: per path, the sessions among its views `pv` (those that pass the
    filter) whose final state in the window bounced (§5 page: "sessions containing the page
    that bounced").

    A bounced session whose final state has one page view viewed only its entry page, at its
    start: it counts for its entry path when it started in the window. The others (reloads, a
    start before the window, or a view moved to another page by an event or a keep-alive) are
    looked up among the views. Over session rows, a state and the row that cancels it share
    their time and columns, so each group below sums to the final state alone."""
    start_ms = int(rows.start.timestamp() * 1000)
    sess = rows.sessions([*KEYS, "entry_path", "page_views", "start", "is_bounce", "sign"])
    sess = sess.filter(pl.col("is_bounce"))  # the others add 0
    single = (pl.col("page_views") == 1) & (pl.col("start").dt.epoch("ms") >= start_ms)
    by_entry = sess.filter(single).group_by(pl.col("entry_path").alias("path")).agg(m.bounces())
    others = (
        sess.filter(~single)
        .group_by(KEYS)
        .agg(pl.col("sign").cast(pl.Int64).sum())
        .filter(pl.col("sign") > 0)
        .select(KEYS)
    )
    looked_up = (
        pv.join(others, on=KEYS, how="semi")
        .group_by("path")
        .agg(m.session_key().n_unique().cast(pl.Int64).alias("bounces"))
    )
    return (
        pl.concat([by_entry.select("path", "bounces"), looked_up])
        .group_by("path")
        .agg(pl.col("bounces").sum())
    )


def _time_on_page(rows: Rows, keys: list[str]) -> pl.LazyFrame:
    """average_time_spent_seconds per `keys` (path, title) of the searched matching views."""
    pv = times_on_page(rows, tuple(k for k in keys if k != "path"), search=True)
    return pv.group_by(keys).agg(
        m.average_seconds(pl.col("time_on_page")).alias("average_time_spent_seconds")
    )


def _page_filter_only(f: Filter, search: bool) -> pl.Expr:
    parts = page_parts(f)
    if "path" in f.fields:
        parts.append(field_expr(pl.col("path"), f.fields["path"]))
    if search and f.search:
        parts.append(pl.col("path").str.to_lowercase().str.contains(f.search.lower(), literal=True))
    expr = pl.lit(True)
    for p in parts:
        expr = expr & p
    return expr


def latest(value: pl.Expr) -> pl.Expr:
    """The value of the latest row (by `time`); rows of the same time: the greatest value, so
    that the answer does not depend on the order rows were stored or compacted in."""
    return value.sort_by(["time", value]).last()


def sort_and_page(
    df: pl.DataFrame, f: Filter, allowed: tuple[str, ...], default: str, tie: str
) -> pl.DataFrame:
    """Sort by `sort` (default visitors desc), ties by the primary field asc, then by the other
    text columns asc; then offset/limit.
    A `sort` the report's rows do not have (`value` on /statistics/tags) sorts by the default."""
    field = f.sort if f.sort in allowed and f.sort in df.columns else default
    descending = (f.direction or "desc") == "desc"
    by = [field] if field == tie else [field, tie]
    # Rows tied on both (two browsers with one version and as many visitors) by their other
    # text columns: one order whichever engine grouped them (the sort is not stable).
    by += [c for c, t in df.schema.items() if t == pl.String and c not in by]
    df = df.sort(by, descending=[descending] + [False] * (len(by) - 1), nulls_last=True)
    return df.slice(f.offset, f.limit)


def active(data_dir: Path, f: Filter, now: datetime | None = None) -> dict[str, Any]:
    """/statistics/active: visitors of the last `start` seconds, per page and per country."""
    end = (now or datetime.now(UTC)) + timedelta(seconds=1)
    seconds = f.start if f.start else 600
    rows = Rows(Path(data_dir), f, end - timedelta(seconds=seconds + 1), end)
    pv = rows.page_views(["visitor_id", "path", "title", "time"])
    pages = pv.group_by("path").agg(
        latest(pl.col("title")).alias("title"),
        pl.col("visitor_id").n_unique().alias("visitors"),
    )
    countries = metrics_by(rows, [pl.col("country_code")], ["country_code"])
    pages_df, countries_df, total_df = pl.collect_all([pages, countries, core(rows)])
    total_visitors = int(total_df["visitors"][0] or 0)
    pages_df = pages_df.sort(["visitors", "path"], descending=[True, False])
    countries_df = countries_df.filter(pl.col("visitors") > 0).sort(
        ["visitors", "country_code"], descending=[True, False]
    )
    return {
        "stats": pages_df.select("path", "title", "visitors").to_dicts(),
        "countries": [
            {
                "visitors": r["visitors"],
                "relative_visitors": m.rate(r["visitors"], total_visitors),
                "country_code": r["country_code"],
            }
            for r in countries_df.iter_rows(named=True)
        ],
        "visitors": total_visitors,
    }


def entry_pages(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/page/entry: sessions by entry path; visitors/sessions are the page's totals."""
    return _entry_exit(data_dir, f, "entry")


def exit_pages(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/page/exit: sessions by exit path."""
    return _entry_exit(data_dir, f, "exit")


def _entry_exit(data_dir: Path, f: Filter, kind: str) -> list[dict[str, Any]]:
    rows = rows_for(data_dir, f)
    count, rate_name = ("entries", "entry_rate") if kind == "entry" else ("exits", "exit_rate")
    path_col, title_col = f"{kind}_path", f"{kind}_title"
    rolled = rollup_dims.entries(rows, kind)
    if rolled is not None:
        counts = rolled.lazy().rename({"count": count})
    else:
        sess = rows.sessions([*KEYS, "sign", "version", path_col, title_col, "time"])
        counts = (
            live_states(sess)
            .group_by(pl.col(path_col).alias("path"))
            .agg(latest(pl.col(title_col)).alias("title"), pl.len().cast(pl.Int64).alias(count))
        )
    if f.search:
        counts = counts.filter(
            pl.col("path").str.to_lowercase().str.contains(f.search.lower(), literal=True)
        )
    # The listed pages' own totals: their views with the filter's page and entry/exit
    # conditions left out (Pirsch counts the listed paths the same way).
    page_rows = rows.without_pages()
    rolled_pages = rollup_pages.page_stats(page_rows)
    if rolled_pages is not None:
        pages = rolled_pages.lazy().select("path", "visitors", "sessions")
    else:
        pv = page_rows.page_views([*m.PAGE_VIEW_COLUMNS, "path"])
        pages = (
            kernels.page_stats(pv, with_title=False).lazy().select("path", "visitors", "sessions")
        )
    all_sessions = rollup_totals.totals_frame(rows.unfiltered(), ["sessions"])
    if all_sessions is None:
        all_sessions = rows.unfiltered().sessions(["sign"]).select(m.sessions())
    queries = [counts.join(pages, on="path", how="left"), all_sessions]
    if kind == "entry" and f.include_avg_time_on_page:
        # The rollups answer only without a filter, when `rows` are `page_rows`.
        rolled_times = rolled_pages if rows.f.is_unfiltered else None
        if rolled_times is not None:
            queries.append(rolled_times.lazy().select("path", "average_time_spent_seconds"))
        else:
            queries.append(_time_on_page(rows, ["path"]))
    frames = pl.collect_all(queries)
    df = frames[0].with_columns(
        pl.col("visitors").fill_null(0),
        pl.col("sessions").fill_null(0),
        m.rate_expr(pl.col(count), frames[1]["sessions"][0] or 0).alias(rate_name),
    )
    cols = ["path", "title", "visitors", "sessions", count, rate_name]
    if kind == "entry":
        if f.include_avg_time_on_page:
            df = df.join(frames[2], on="path", how="left")
        else:
            df = df.with_columns(average_time_spent_seconds=pl.lit(0, pl.Int64))
        df = df.with_columns(pl.col("average_time_spent_seconds").fill_null(0))
        cols.append("average_time_spent_seconds")
    df = sort_and_page(df, f, tuple(cols), count, "path")
    return df.select(cols).to_dicts()

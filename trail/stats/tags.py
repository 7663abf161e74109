"""Tag reports: tag keys (/statistics/tags) and tag values (/statistics/tag/details).

Tags live on page views as parallel key/value lists; a view counts once for each of its tags.
Relative values divide by the unfiltered visitors and views of the period. Without a filter
(but tag/details' `tag`), over whole UTC days, the tag rollups answer (trail.stats.rollup_tags).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from trail.stats import metrics as m
from trail.stats import rollup_tags
from trail.stats.filters import Filter
from trail.stats.pages import _unfiltered_totals
from trail.stats.sources import Rows, rows_for

TAG_SORTS = ("key", "value", "visitors", "views", "relative_visitors", "relative_views")


def _tag_pairs(rows: Rows, *, values: bool = True) -> pl.LazyFrame:
    """One row per (page view, tag): visitor_id, key and (with `values`) value. Without them
    the values' lists are not read (about half the cost of reading both lists)."""
    lists = ["tag_keys", "tag_values"] if values else ["tag_keys"]
    pv = rows.page_views(["visitor_id", *lists])
    pv = pv.filter(pl.col("tag_keys").list.len() > 0)
    return pv.explode(lists).rename({"tag_keys": "key", "tag_values": "value"}, strict=False)


def _by(rows: Rows, keys: list[str], pairs: Callable[[], pl.LazyFrame]) -> list[dict[str, Any]]:
    """The report per `keys` from the tag rollups, else from the (page view, tag) `pairs`."""
    f = rows.f
    stats = rollup_tags.tag_stats(rows, keys)
    if stats is None:
        stats = (
            pairs()
            .group_by(keys)
            .agg(
                pl.col("visitor_id").n_unique().cast(pl.Int64).alias("visitors"),
                pl.len().cast(pl.Int64).alias("views"),
            )
        )
    if f.search:  # on a grouping column: the same before grouping or after
        needle = f.search.lower()
        stats = stats.filter(pl.col(keys[-1]).str.to_lowercase().str.contains(needle, literal=True))
    df, tot = pl.collect_all([stats, _unfiltered_totals(rows)])
    t = tot.row(0, named=True)
    df = df.with_columns(
        relative_visitors=m.rate_expr(pl.col("visitors"), t["visitors"] or 0),
        relative_views=m.rate_expr(pl.col("views"), t["views"] or 0),
    )
    df = _sort_and_page(df, f, keys)
    return df.select(*keys, "visitors", "views", "relative_visitors", "relative_views").to_dicts()


def _sort_and_page(df: pl.DataFrame, f: Filter, keys: list[str]) -> pl.DataFrame:
    """By `sort` (one of TAG_SORTS the rows have, else visitors; desc unless `direction=asc`),
    ties by the `keys` ascending (key, then value); then offset/limit. With one key (or one
    tag's values) this is trail.stats.pages.sort_and_page's order."""
    field = f.sort if f.sort in TAG_SORTS and f.sort in df.columns else "visitors"
    descending = (f.direction or "desc") == "desc"
    by = [field, *(k for k in keys if k != field)]
    df = df.sort(by, descending=[descending] + [False] * (len(by) - 1), nulls_last=True)
    return df.slice(f.offset, f.limit)


def tags(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/tags: visitors and views per tag key."""
    rows = rows_for(data_dir, f)
    return _by(rows, ["key"], lambda: _tag_pairs(rows, values=False))


def tag_details(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/tag/details: visitors and views per value of the tag named by `tag`; without
    `tag`, per (key, value) pair of every tag (the Pirsch Go SDK's `Tags()` asks so). Rows have
    `key` and `value` either way, ordered by `sort` (default visitors desc), ties by key then
    value ascending; `search` matches the value."""
    rows = rows_for(data_dir, f)

    def pairs() -> pl.LazyFrame:
        lf = _tag_pairs(rows)
        return lf.filter(pl.col("key") == f.tag) if f.tag else lf

    return _by(rows, ["key", "value"], pairs)

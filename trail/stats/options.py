"""Filter options (/statistics/options/*): the distinct values a field takes in the period.

Only the site and dates apply (plus `search`), so a dashboard can offer every value; the 200
most frequent values are returned, sorted. Empty values are left out.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from trail.stats.filters import Filter, FilterError
from trail.stats.sources import rows_for

MAX_OPTIONS = 200

# Endpoint (after /options/) -> (table, column). List columns are exploded first.
OPTIONS: dict[str, tuple[str, str]] = {
    "referrer/name": ("sessions", "referrer_name"),
    "hostname": ("sessions", "hostname"),
    "page": ("page_views", "path"),
    "referrer": ("sessions", "referrer"),
    "event": ("events", "event_name"),
    "country": ("sessions", "country_code"),
    "region": ("sessions", "region"),
    "city": ("sessions", "city"),
    "language": ("sessions", "language"),
    "metadata": ("events", "event_meta_keys"),
    "utm/source": ("sessions", "utm_source"),
    "utm/medium": ("sessions", "utm_medium"),
    "utm/campaign": ("sessions", "utm_campaign"),
    "utm/content": ("sessions", "utm_content"),
    "utm/term": ("sessions", "utm_term"),
    "tag": ("page_views", "tag_keys"),
    "tag/value": ("page_views", "tag_values"),
}


def options(data_dir: Path, f: Filter, name: str) -> list[str]:
    """The values of option `name` (a key of OPTIONS)."""
    table, column = OPTIONS[name]
    rows = rows_for(data_dir, f).unfiltered()
    if name == "tag/value":
        if not f.tag:
            raise FilterError("tag", "required: the tag whose values to list")
        lf = rows.page_views(["tag_keys", "tag_values"]).explode(["tag_keys", "tag_values"])
        values = lf.filter(pl.col("tag_keys") == f.tag).select(pl.col("tag_values").alias("v"))
    else:
        lf = rows._scan(table, [column])
        if column in ("event_meta_keys", "tag_keys"):
            lf = lf.explode(column)
        values = lf.select(pl.col(column).alias("v"))
    values = values.filter(pl.col("v").is_not_null() & (pl.col("v") != ""))
    if f.search:
        needle = f.search.lower()
        values = values.filter(pl.col("v").str.to_lowercase().str.contains(needle, literal=True))
    counts = values.group_by("v").agg(pl.len().alias("n"))
    top = counts.sort(["n", "v"], descending=[True, False]).head(MAX_OPTIONS)
    return sorted(top.collect()["v"].to_list())

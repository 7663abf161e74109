"""Filter options (/statistics/options/*): the distinct values a field takes in the period.

Only the site and dates apply (plus `search`), so a dashboard can offer every value; the 200
most frequent values are returned, sorted. Empty values are left out.

How often a value occurs: a page view's or event's value once per row (a list column once per
element); a session column's value once per session with a state in the window.

Sessions are counted, not session rows, because a session's dimensions are the same on each of
its rows (a new referrer or UTM value starts a new session), and its rows are one state per hit
plus cancel rows (sign -1) until compaction collapses them: counting rows would weigh a value by
its sessions' hits and change when a day is compacted. Compaction keeps a row of sign >= 0
(`metrics.present`) of every session in every minute it had a state in, and every window starts
on a minute, so the sessions with a state in the window are the same before and after; this is
also how a session shows its visitor (trail.stats.metrics). ClickHouse counts the same sessions
in `session_states` (trail.clickhouse.reports_events.options).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from trail.stats import metrics as m
from trail.stats.filters import Filter, FilterError
from trail.stats.sources import Rows, rows_for

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
    values, count = _values(rows_for(data_dir, f).unfiltered(), f, name)
    values = values.filter(pl.col("v").is_not_null() & (pl.col("v") != ""))
    if f.search:
        needle = f.search.lower()
        values = values.filter(pl.col("v").str.to_lowercase().str.contains(needle, literal=True))
    counts = values.group_by("v").agg(count.alias("n"))
    top = counts.sort(["n", "v"], descending=[True, False]).head(MAX_OPTIONS)
    return sorted(top.collect()["v"].to_list())


def _values(rows: Rows, f: Filter, name: str) -> tuple[pl.LazyFrame, pl.Expr]:
    """The occurrences of option `name`'s values (column `v`), and how to count them per value
    (see the module doc)."""
    table, column = OPTIONS[name]
    if name == "tag/value":
        if not f.tag:
            raise FilterError("tag", "required: the tag whose values to list")
        lf = rows.page_views(["tag_keys", "tag_values"]).explode(["tag_keys", "tag_values"])
        return lf.filter(pl.col("tag_keys") == f.tag).select(v=pl.col("tag_values")), pl.len()
    if table == "sessions":
        lf = rows._scan(table, [column, "visitor_id", "session_id", "sign"]).filter(m.present())
        sessions = lf.select(v=pl.col(column), session_key=m.session_key())
        return sessions, pl.col("session_key").n_unique()
    lf = rows._scan(table, [column])
    if column in ("event_meta_keys", "tag_keys"):
        lf = lf.explode(column)
    return lf.select(v=pl.col(column)), pl.len()

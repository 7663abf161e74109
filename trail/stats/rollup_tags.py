"""Tag keys and values from the tag rollups (trail.storage.tag_rollups), when they apply.

/statistics/tags and /statistics/tag/details without a filter (apart from the tag whose values
tag/details lists) over whole UTC days: views add up over the days' (key, value) rows, visitors
are counted exactly over the union of the grouped rows' per-day visitor lists (the Rust kernel
of the page rollups). A day whose tag rollup is missing or no longer current (its sessions
rollup was replaced, the live day, a day not compacted yet) is described from its rows by the
function compaction runs (tag_rollups.build_table), its visitors as positions in the day's own
page view ids; past rollups.MAX_OPEN_DAYS such days, or for any other filter, None: the rows
answer. tests/stats/test_tag_rollups.py compares both ways.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import polars as pl

from trail import core
from trail.stats import open_days, rollup_pages
from trail.stats.scan import scan
from trail.stats.sources import Rows
from trail.storage import rollups, tag_rollups

# A day's tags: its sorted visitor ids, its table (tag_rollups.SCHEMA) and the table's deltas.
DayTags = tuple[np.ndarray, pl.DataFrame, np.ndarray]
_EMPTY = pl.DataFrame(schema=tag_rollups.SCHEMA)


def tag_stats(rows: Rows, keys: list[str]) -> pl.LazyFrame | None:
    """`keys` (["key"] or ["key", "value"]), `visitors` and `views` per tag key (value) over
    the window (of values: only the key `f.tag` when set; no search: the caller applies it), or
    None."""
    f = rows.f
    # A `tag` on the keys report is a filter: the keys of the views that carry that tag.
    tag_of_values = f.tag is None or keys == ["key", "value"]
    if (
        not replace(f, tag=None).is_unfiltered
        or not tag_of_values
        or f.visitor_id is not None
        or f.session_id is not None
    ):
        return None
    days = _days(rows)
    if days is None:
        return None
    tables = [t.with_columns(day=pl.lit(i, pl.UInt32)) for i, (_, t, _) in enumerate(days)]
    table = pl.concat(tables) if tables else _EMPTY
    if table.is_empty():
        return pl.LazyFrame(schema={**{k: pl.String for k in keys}, "visitors": pl.Int64,
                                    "views": pl.Int64})  # fmt: skip
    groups = table.select(pl.struct(keys).rank("dense").cast(pl.Int64) - 1).to_series()
    n_groups = int(groups.max() or 0) + 1  # type: ignore[arg-type]
    id_arrays = [ids for ids, _, _ in days]
    offsets = np.zeros(len(id_arrays) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum([len(a) for a in id_arrays])
    try:
        visitors = core.union_visitors(
            np.ascontiguousarray(np.concatenate(id_arrays), dtype=np.uint64),
            offsets,
            np.ascontiguousarray(np.concatenate([d for _, _, d in days]), dtype=np.uint32),
            np.ascontiguousarray(table["visitors"].to_numpy(), dtype=np.uint32),
            np.ascontiguousarray(table["day"].to_numpy(), dtype=np.uint32),
            np.ascontiguousarray(groups.to_numpy(), dtype=np.uint32),
            n_groups,
        )
    except ValueError:
        return None  # a damaged rollup: the rows still answer
    out = (
        table.with_columns(group=groups)
        .group_by("group")
        .agg(*(pl.col(k).first() for k in keys), pl.col("views").cast(pl.Int64).sum())
    )
    out = out.with_columns(visitors=pl.Series(visitors, dtype=pl.Int64).gather(out["group"]))
    if f.tag is not None:
        out = out.filter(pl.col("key") == f.tag)
    return out.select(*keys, "visitors", "views").lazy()


def _days(rows: Rows) -> list[DayTags] | None:
    """Every day of the window with page views, from its tag rollup or its rows; None when
    too many days lack a current rollup."""
    found = rollup_pages.indexed_days(rows, needs="tags_file")
    if found is None:
        return None
    days, current, ids_of = found
    out = []
    try:
        for day in days:
            r = current.get(day)
            d = _from_rollup(r, ids_of[day]) if r is not None else _open_day(rows, day)
            if d is None:
                return None
            out.append(d)
    except (OSError, pl.exceptions.PolarsError):
        return None  # replaced and purged since listed (or damaged): the rows still answer
    return out


def _from_rollup(r: rollups.DayRollup, ids: rollups.DayRollup) -> DayTags:
    name = r.entry["tags_file"]
    if not name:  # no tagged page views that day
        return np.zeros(0, dtype=np.uint64), _EMPTY, np.zeros(0, dtype=np.uint32)
    directory = os.path.dirname(r.file)
    table, deltas = pl.collect_all([
        pl.scan_parquet(f"{directory}/{name}"),
        pl.scan_parquet(f"{directory}/{r.entry['tags_visitors_file']}"),
    ])  # fmt: skip
    return ids.visitor_ids(), table, deltas["deltas"].to_numpy()


def _open_day(rows: Rows, day: date) -> DayTags | None:
    """The day's tags from its rows, remembered while the day's files stay the same."""
    site = rows.f.site_id
    return open_days.of_day(
        "tags", rows.data_dir, site, ("page_views",), day, lambda: _described(rows, day)
    )


def _described(rows: Rows, day: date) -> DayTags | None:
    start = datetime.combine(day, time(0), UTC)
    pv = scan(rows.data_dir, "page_views", rows.f.site_id, start, start + timedelta(days=1),
              ["visitor_id", "tag_keys", "tag_values"]).collect()  # fmt: skip
    pv = pv.filter(pl.col("tag_keys").list.len() > 0)
    ids = np.sort(pv["visitor_id"].unique().to_numpy())
    built = tag_rollups.build_table(pv, ids)
    if built is None:
        return None
    return ids, built[0], built[1]

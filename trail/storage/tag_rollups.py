"""The tag rollup of a compacted page_views day: what /statistics/tags and tag/details need.

The tag reports of a 30-day window read the tag lists of every page view and count distinct
visitors per tag key (and value). Compaction holds the day's final page views when it writes
the page rollup (trail.storage.page_rollups), so it also writes `rollup-<n>-tags.parquet`, one
row per (key, value) pair that occurs on that day's page views, with

- `views`: how many of the day's page views carry the pair (a view counts once for each of
  its tags, as in the reports);
- `visitors`: how many distinct visitors viewed a page carrying the pair. The visitors
  themselves are in `rollup-<n>-tags-visitors.parquet`, one flat column in the order of the
  first file's rows: ascending positions in the day's sessions rollup id list (the page
  rollup's `ids_file`), delta-coded per row, as the page and dimension rollups store them.

A key's views are the sum over its values; its visitors the union of its values' positions
(the query side counts unions exactly: trail.stats.rollup_tags). A day without tagged page
views writes no files: its entry says `"tags_file": ""`. A day whose key and value lists differ
in length somewhere gets no tag fields at all, so the reports read its rows. `build_table` is
also what the query side runs over the rows of a day without a usable rollup (the live day).
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trail.storage import layout

# The columns `build` reads (besides those page_rollups.COLUMNS names).
COLUMNS = ["time", "visitor_id", "tag_keys", "tag_values"]
SCHEMA = {"key": pl.String, "value": pl.String, "views": pl.UInt32, "visitors": pl.UInt32}
FILE_KEYS = ("tags_file", "tags_visitors_file")


def build_table(pv: pl.DataFrame, ids: np.ndarray) -> tuple[pl.DataFrame, np.ndarray] | None:
    """The tag table (SCHEMA, ordered by key and value) of one day's page views `pv`
    (visitor_id, tag_keys, tag_values; every visitor in `ids`, the sorted id list the positions
    point into) and its delta-coded positions; None when a view's key and value lists differ in
    length."""
    tagged = pv.filter(pl.col("tag_keys").list.len() > 0)
    if (tagged["tag_keys"].list.len() != tagged["tag_values"].list.len().fill_null(0)).any():
        return None
    positions = np.searchsorted(ids, tagged["visitor_id"].to_numpy()).astype(np.uint32)
    table = (
        tagged.select(
            pl.Series("position", positions, dtype=pl.UInt32),
            pl.col("tag_keys").alias("key"),
            pl.col("tag_values").alias("value"),
        )
        .explode(["key", "value"])
        .group_by(["key", "value"])
        .agg(views=pl.len(), positions=pl.col("position").unique().sort())
        .sort(["key", "value"], nulls_last=False)
        .with_columns(visitors=pl.col("positions").list.len())
    )
    flat = table["positions"].explode(empty_as_null=False).drop_nulls().to_numpy()
    lens = table["visitors"].to_numpy().astype(np.int64)
    out = table.select(pl.col(c).cast(t) for c, t in SCHEMA.items())
    return out, deltas_of(flat.astype(np.int64), lens)


def deltas_of(flat: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Positions (ascending within each list of `lens`) as deltas, each list's first as is."""
    deltas = np.diff(flat, prepend=0)
    starts = (np.cumsum(lens) - lens)[lens > 0]
    deltas[starts] = flat[starts]
    return deltas.astype(np.uint32)


def build(df: pl.DataFrame, day_dir: Path, day: date, part: str, ids: np.ndarray) -> dict[str, Any]:
    """Write the tag rollup of `part` (`df`: the day's final page views, whose visitors are all
    in `ids`, the day's sessions rollup id list); the fields it adds to the page rollup's
    manifest entry."""
    if not set(COLUMNS) <= set(df.columns):
        # a rollup added to a part compacted earlier reads only the page rollup's columns
        df = pl.read_parquet(day_dir / part, columns=COLUMNS)
    start, end = layout.day_span_ms(day)
    t = pl.col("time").dt.epoch("ms")
    pv = df.filter((t >= start) & (t < end)).select("visitor_id", "tag_keys", "tag_values")
    built = build_table(pv, ids)
    if built is None:
        return {}
    table, deltas = built
    if table.is_empty():
        return {"tags_file": "", "tags_visitors_file": ""}
    name = layout.rollup_name(part, "page_views").removesuffix(".parquet") + "-tags.parquet"
    visitors_name = name.replace(".parquet", "-visitors.parquet")
    _write(table, day_dir / name)
    _write(pl.DataFrame({"deltas": pl.Series(deltas, dtype=pl.UInt32)}), day_dir / visitors_name)
    return {"tags_file": name, "tags_visitors_file": visitors_name}


def _write(df: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(layout.temp_name(path.name))
    df.write_parquet(tmp, compression="zstd", compression_level=3, statistics=False)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)

"""The dimension rollup of a compacted sessions day: what the breakdowns need, per value.

The breakdowns of a 30-day window without a filter (country, browser, referrer, UTM, platform,
...) read every session row of the window: ~24M rows at 10M page views, most of the time going
to decoding the dimension columns and counting distinct visitors per value. Compaction holds
the day's final rows, so the sessions rollup (trail.storage.rollups) also writes
`rollup-<n>-dims.parquet`: per *set* of dimensions, one row per combination of their values
that occurs that day, with

- `sessions`, `views`, `bounces`: sums of sign, page_views * sign and is_bounce * sign over the
  day's rows of that combination (trail.stats.metrics; they add up over days);
- `referrer` (the `source` set only): the smallest full referrer of those rows, the example
  the referrer report shows (the smallest over a window is the smallest of the days');
- `visitors`: how many distinct visitors have a state (sign >= 0) with that combination. The
  visitors themselves are in `rollup-<n>-dims-visitors.parquet`, one flat column in the order
  of the first file's rows: ascending positions in the day's id list (the sessions rollup's
  `rollup-<n>.u64`), delta-coded per row, as the page rollup stores them.

A breakdown by any column of a set groups the set's combinations by that column; its visitors
are the union of the grouped combinations' positions over the days, counted exactly (the same
Rust kernel as the page rollup). Three sets instead of one per report keep the positions at
about three per visitor and day: the location (country, region, city) with the language, the
device (browser, OS, their versions, platform flags, screen class) and the source (referrer
name, channel, UTM). Two more sets, `entry` and `exit`, hold per entry (exit) path the number
of live states (`sessions`: a cancel row copies its state, so the sum of sign) and the title of
the latest live state with its time (`title`, `title_ms`), and no visitors. `build_table` is also what the query side runs over the rows of a day
that has no usable rollup (the live day), so both describe a day the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trail.storage import layout
from trail.storage.schema import DIMS

UTM = ("source", "medium", "campaign", "content", "term")
# Set name -> its columns. A report's columns must all lie in one set.
SETS: dict[str, list[str]] = {
    "location": ["country_code", "region", "city", "language"],
    "device": [
        "browser",
        "browser_version",
        "os",
        "os_version",
        "desktop",
        "mobile",
        "screen_class",
    ],
    "source": ["referrer_name", "channel", *(f"utm_{k}" for k in UTM)],
}
# Sets of one path whose rows count live states and keep the latest title, without visitors:
# the entry and exit pages (their visitors are the page's, from the page rollup).
PATH_SETS = {"entry": "entry_title", "exit": "exit_title"}
SETS["entry"], SETS["exit"] = ["entry_path"], ["exit_path"]
SET_IDS = {name: i for i, name in enumerate(SETS)}
DIM_COLUMNS = [c for name, cols in SETS.items() if name not in PATH_SETS for c in cols]
_KEYS = ["visitor_id", "session_id", "version"]
# The columns build_table reads.
COLUMNS = [*_KEYS, "time", "sign", "page_views", "is_bounce", "referrer", *DIM_COLUMNS,
           "entry_path", "exit_path", *PATH_SETS.values()]  # fmt: skip
SUMS = {"sessions": pl.Int64, "views": pl.Int64, "bounces": pl.Int64}
SCHEMA: dict[str, pl.DataType] = {
    "set": pl.UInt8(),
    **{c: DIMS[c] for c in DIM_COLUMNS},
    "entry_path": pl.String(),
    "exit_path": pl.String(),
    "referrer": pl.String(),
    "title": pl.String(),
    "title_ms": pl.Int64(),
    **{k: v() for k, v in SUMS.items()},
    "visitors": pl.UInt32(),
}


def set_columns(name: str) -> list[str]:
    """The columns of SCHEMA that set `name`'s rows fill: its own, the sums and visitors, and
    the example referrer (source) or the latest title (entry, exit). The others are null in its
    rows; readers that keep a set's rows drop them, since a String column costs 16 bytes a row
    (its views) even when every value is null."""
    extra = ["referrer"] if name == "source" else ["title", "title_ms"] if name in PATH_SETS else []
    filled = {"set", *SETS[name], *extra, *SUMS, "visitors"}
    return [c for c in SCHEMA if c in filled]


def set_of(columns: list[str]) -> str | None:
    """The set holding every one of `columns`, or None."""
    return next((s for s, cols in SETS.items() if set(columns) <= set(cols)), None)


def build_table(
    rows: pl.DataFrame, ids: np.ndarray, sets: list[str] | None = None
) -> tuple[pl.DataFrame, np.ndarray]:
    """The dimension table of one day's session rows (with COLUMNS, only that day's) and its
    delta-coded positions in `ids` (the day's sorted distinct visitor ids of rows with sign >=
    0), for `sets` (default: all). Rows are ordered by set, then by value; deltas follow the
    rows."""
    sign = pl.col("sign").cast(pl.Int64)
    live = pl.col("sign") >= 0
    positions = np.searchsorted(ids, rows["visitor_id"].to_numpy()).astype(np.uint32)
    lf = rows.lazy().with_columns(position=pl.Series(positions, dtype=pl.UInt32))
    tables = []
    for name, cols in SETS.items():
        if sets is not None and name not in sets:
            continue
        if name in PATH_SETS:
            paths = _path_table(rows.lazy(), name)
            tables.append(paths.with_columns(set=pl.lit(SET_IDS[name], pl.UInt8)))
            continue
        example = pl.col("referrer").min() if name == "source" else pl.lit(None, pl.String)
        tables.append(
            lf.group_by(cols)
            .agg(
                sessions=sign.sum(),
                views=(pl.col("page_views").cast(pl.Int64) * sign).sum(),
                bounces=(pl.col("is_bounce").cast(pl.Int64) * sign).sum(),
                referrer=example,
                positions=pl.col("position").filter(live).unique().sort(),
            )
            .sort(cols, nulls_last=False)
            .with_columns(set=pl.lit(SET_IDS[name], pl.UInt8))
        )
    table = pl.concat(pl.collect_all(tables), how="diagonal_relaxed")
    table = table.with_columns(visitors=pl.col("positions").list.len())
    flat = table["positions"].explode(empty_as_null=False).drop_nulls().to_numpy()
    deltas = _deltas(flat.astype(np.int64), table["visitors"].to_numpy())
    out = table.select(
        (pl.col(c) if c in table.columns else pl.lit(None)).cast(t).alias(c)
        for c, t in SCHEMA.items()
    )
    return out, deltas


def _path_table(rows: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """Per path of the set: `sessions`, the live states (a cancel row copies its state, so
    the sum of sign), and the title of the latest live state (`title_ms`: its time; of states
    sharing it the greatest title, as trail.stats.pages.latest decides over rows)."""
    path, title = SETS[name][0], PATH_SETS[name]
    cancelled = rows.filter(pl.col("sign") < 0).select(_KEYS)
    live = rows.filter(pl.col("sign") > 0).join(cancelled, on=_KEYS, how="anti")
    ms = pl.col("time").dt.epoch("ms")
    latest = (
        live.select(path, pl.col(title).alias("title"), ms.alias("title_ms"))
        .sort(["title_ms", "title"], nulls_last=False)
        .group_by(path, maintain_order=True)
        .last()
    )
    counts = rows.group_by(path).agg(sessions=pl.col("sign").cast(pl.Int64).sum())
    return (
        counts.join(latest, on=path, how="left", nulls_equal=True)
        .with_columns(positions=pl.lit([], pl.List(pl.UInt32)))
        .sort(path, nulls_last=False)
    )


def _deltas(flat: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Positions (ascending within each list of `lens`) as deltas, each list's first as is."""
    deltas = np.diff(flat, prepend=0)
    starts = np.cumsum(lens) - lens
    starts = starts[lens > 0]
    deltas[starts] = flat[starts]
    return deltas.astype(np.uint32)


def build(rows: pl.DataFrame, ids: np.ndarray, day_dir: Path, part: str) -> dict[str, Any]:
    """Write the dimension rollup of `part` (rows: the day's final session rows with COLUMNS,
    only those of the day); the fields it adds to the sessions rollup's manifest entry."""
    table, deltas = build_table(rows, ids)
    name = layout.rollup_name(part).removesuffix(".u64") + "-dims.parquet"
    visitors_name = name.replace(".parquet", "-visitors.parquet")
    _write(table, day_dir / name)
    _write(pl.DataFrame({"deltas": pl.Series(deltas, dtype=pl.UInt32)}), day_dir / visitors_name)
    counts = table.group_by("set").agg(pl.len(), pl.col("visitors").cast(pl.Int64).sum())
    per_set = {int(s): (int(n), int(v)) for s, n, v in counts.iter_rows()}
    # per set: [first row, rows, first delta, deltas], so a report reads only its set
    spans, row, delta = {}, 0, 0
    for set_name, i in SET_IDS.items():
        n, v = per_set.get(i, (0, 0))
        spans[set_name] = [row, n, delta, v]
        row, delta = row + n, delta + v
    return {"dims_file": name, "dims_visitors_file": visitors_name, "dims_spans": spans}


def _write(df: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(layout.temp_name(path.name))
    df.write_parquet(tmp, compression="zstd", compression_level=3, statistics=False)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)

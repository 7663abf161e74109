"""Breakdowns by session dimensions from the dimension rollups (trail.storage.dim_rollups).

Without a filter, over the whole UTC days of the window: per value of the asked columns, sessions, views and
bounces add up over the days' combinations, the example referrer is the smallest of the days',
and visitors are counted exactly over the union of the combinations' per-day visitor lists (the
Rust kernel of the page rollups). A day without a usable rollup (the live day, a day not
compacted yet, a deletion not compacted yet) is described from its rows by the same function
compaction runs (dim_rollups.build_table), so a window that ends today still adds up exactly;
so are the slices of the UTC days at the ends of a window that is not made of whole UTC days (a
site whose zone is not UTC; rollups.window_parts). With more than rollups.MAX_OPEN_DAYS whole
days from rows the rows answer as before, as they do for a filter (None here).
tests/stats/test_dim_rollups.py compares every report with the rows' answer.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from trail.stats import index_files, open_days, rollup_totals, rollup_visitors
from trail.stats.scan import scan
from trail.stats.sources import Rows
from trail.storage import dim_rollups, memory, rollups


@dataclass(frozen=True)
class DayDims:
    """One day's combinations of one set (dim_rollups.SCHEMA), with their positions (deltas)
    in the day's sorted distinct visitor ids (`ids_of`); `rollup` unless read from rows. A
    closed day's ids and deltas are read only to build an index (~9 MB of ids a day at 100M
    page views a month) or for an open day."""

    ids_of: Callable[[], np.ndarray]
    table: pl.DataFrame
    deltas_of: Callable[[], np.ndarray]  # read only to build an index or for an open day
    rollup: rollups.DayRollup | None = None
    files: tuple[str, ...] = ()


def grouped(rows: Rows, columns: list[str], *, sums: bool = False) -> pl.DataFrame | None:
    """`columns`, `visitors` (and with `sums`: `sessions`, `views`, `bounces`, and `referrer`,
    the smallest, for the source set) per combination of `columns` over the window, or None."""
    set_name = dim_rollups.set_of(columns)
    days = _days(rows, set_name) if set_name is not None else None
    if days is None or set_name is None:
        return None
    table = pl.concat(
        [d.table.with_columns(day=pl.lit(i, pl.UInt32)) for i, d in enumerate(days)]
    ).with_columns(group=(pl.struct(columns).rank("dense") - 1).cast(pl.Int64))
    n_groups = int(table["group"].max() or 0) + 1  # type: ignore[arg-type]
    visitors = _visitors(days, set_name, table, table["group"].to_numpy(), n_groups)
    aggs = [pl.col(columns).first()]
    if sums:
        aggs += [pl.col(c).sum().cast(pl.Int64) for c in dim_rollups.SUMS]
        aggs.append(pl.col("referrer").min())
    out = table.group_by("group").agg(aggs).sort("group")
    return out.with_columns(visitors=pl.Series(visitors, dtype=pl.Int64).gather(out["group"])).drop(
        "group"
    )


def entries(rows: Rows, kind: str) -> pl.DataFrame | None:
    """`path`, `title` (of the latest live state) and `count` (live states) per entry or exit
    path (`kind`) over the window, or None."""
    days = _days(rows, kind)
    if days is None:
        return None
    path = dim_rollups.SETS[kind][0]
    table = pl.concat([d.table for d in days]).select(path, "title", "title_ms", "sessions")
    titles = (
        table.filter(pl.col("title_ms").is_not_null())
        .sort(["title_ms", "title"], nulls_last=False)
        .group_by(path, maintain_order=True)
        .agg(pl.col("title").last())
    )
    counts = table.group_by(path).agg(pl.col("sessions").sum().alias("count"))
    return (
        counts.filter(pl.col("count") > 0)
        .join(titles, on=path, how="left", nulls_equal=True)
        .select(pl.col(path).alias("path"), "title", "count")
    )


def platform_visitors(rows: Rows) -> tuple[int, int, int] | None:
    """Distinct visitors in total, on desktop and on mobile over the window, or None."""
    days = _days(rows, "device")
    if days is None:
        return None
    table = pl.concat([d.table.with_columns(day=pl.lit(i, pl.UInt32)) for i, d in enumerate(days)])
    out = []
    for flag in (pl.repeat(True, pl.len()), pl.col("desktop"), pl.col("mobile")):
        # group 0: the combinations with the flag; 1: the others
        groups = table.select((~flag.fill_null(False)).cast(pl.Int64)).to_series().to_numpy()
        out.append(int(_visitors(days, "device", table, groups, 2)[0]))
    return out[0], out[1], out[2]


def _visitors(
    days: list[DayDims], set_name: str, table: pl.DataFrame, groups: np.ndarray, n_groups: int
) -> np.ndarray:
    """Distinct visitors per group of `table`'s rows (every row of `days`, in order, with
    `day`: the index in `days`): the closed days through their remembered index, the others
    (from rows) added."""
    closed_days = [i for i, d in enumerate(days) if d.rollup is not None]
    closed = table["day"].is_in(closed_days).to_numpy()
    index = None
    if closed_days:
        members = [days[i] for i in closed_days]
        day_rollups = [d.rollup for d in members if d.rollup is not None]
        key = (set_name, tuple(f for d in members for f in d.files),
               rollup_totals.identity(day_rollups))  # fmt: skip
        index = rollup_visitors.index_for(
            key,
            [d.table for d in members],
            [d.deltas_of for d in members],
            lambda: [d.ids_of() for d in members],
            lambda: rollup_totals.closed_union(day_rollups),
            dim_rollups.SETS[set_name],
            index_files.directory_of(day_rollups[0].file),
        )
    open_ids, open_positions, open_groups = [], [], []
    for i, d in enumerate(days):
        if d.rollup is None:
            lens = d.table["visitors"].to_numpy().astype(np.int64)
            open_ids.append(d.ids_of())
            open_positions.append(rollup_visitors.positions(d.deltas_of(), lens))
            open_groups.append(np.repeat(groups[(table["day"] == i).to_numpy()], lens))
    return rollup_visitors.count(
        index, groups[closed], n_groups, open_ids, open_positions, open_groups
    )


def _days(rows: Rows, set_name: str) -> list[DayDims] | None:
    """Every UTC day of the window with session rows, from its rollup or the rows of its part
    in the window; None when the rollups do not apply (a filter, too many days without a
    rollup)."""
    f = rows.f
    if not f.is_unfiltered or f.visitor_id is not None or f.session_id is not None:
        return None
    parts = rollups.window_parts(rows.data_dir, "sessions", f.site_id, rows.start, rows.end)
    if not parts:
        return None  # (no days: no rows to read either)
    out = []
    try:
        for p in parts:
            r = p.rollup
            d = _from_rows(rows, p, set_name) if r is None else _from_rollup(r, set_name)
            if d is None:
                return None
            out.append(d)
    except (OSError, pl.exceptions.PolarsError):
        return None  # replaced and purged since listed (or damaged): the rows still answer
    return out


def _from_rollup(r: rollups.DayRollup, set_name: str) -> DayDims | None:
    span = (r.entry.get("dims_spans") or {}).get(set_name)
    if span is None or not r.entry.get("dims_file"):
        return None
    directory = os.path.dirname(r.file)
    first_row, n_rows, first_delta, n_deltas = span
    table = _table_slice(f"{directory}/{r.entry['dims_file']}", set_name, first_row, n_rows)
    deltas_file = f"{directory}/{r.entry['dims_visitors_file']}"

    def deltas() -> np.ndarray:
        lf = pl.scan_parquet(deltas_file).slice(first_delta, n_deltas)
        return lf.collect()["deltas"].to_numpy()

    files = (r.entry["dims_file"], r.entry["dims_visitors_file"])
    stamps = tuple(f"{n}:{os.stat(f'{directory}/{n}').st_mtime_ns}" for n in files)
    return DayDims(r.visitor_ids, table, deltas, r, (directory, *stamps))


def _from_rows(rows: Rows, part: rollups.DayPart, set_name: str) -> DayDims:
    """The day's (or its slice's) combinations of `set_name` from its rows: every set is
    described at once and remembered while the day's files stay the same (the other reports of
    a load ask for them)."""
    span = None if part.whole else (part.start, part.end)
    ids, table, deltas = open_days.of_day(
        "dims", rows.data_dir, rows.f.site_id, ("sessions",), part.day,
        lambda: _described(rows, part), span,
    )  # fmt: skip
    set_id = dim_rollups.SET_IDS[set_name]
    in_set = (table["set"] == set_id).to_numpy()
    lens = table["visitors"].to_numpy().astype(np.int64)
    first_row = int(np.argmax(in_set)) if in_set.any() else 0
    first_delta, n_deltas = int(lens[:first_row].sum()), int(lens[in_set].sum())
    own = deltas[first_delta : first_delta + n_deltas]
    own_rows = table.filter(pl.Series(in_set)).select(dim_rollups.set_columns(set_name))
    return DayDims(lambda: ids, own_rows, lambda: own)


def _described(rows: Rows, part: rollups.DayPart) -> tuple[np.ndarray, pl.DataFrame, np.ndarray]:
    """The day's (or its slice's) sorted distinct visitor ids, its dimension table of every set
    (ordered by set) and the table's delta-coded positions."""
    lf = scan(rows.data_dir, "sessions", rows.f.site_id, part.start, part.end,
              dim_rollups.COLUMNS)  # fmt: skip
    day_rows = lf.collect()
    ids = np.sort(day_rows.filter(pl.col("sign") >= 0)["visitor_id"].unique().to_numpy())
    table, deltas = dim_rollups.build_table(day_rows, ids)
    ids.flags.writeable = False  # shared by the reports that remember them
    deltas.flags.writeable = False
    return ids, table, deltas


def _table_slice(path: str, set_name: str, offset: int, length: int) -> pl.DataFrame:
    """A set's rows of a day's dimension rollup file, kept under the statistics' memory budget
    (trail.storage.memory) by the file's identity: a dashboard load reads each day's sets in
    several reports. Only the set's own columns are read (dim_rollups.set_columns)."""
    st = os.stat(path)
    key = ("dims", path, st.st_ino, st.st_mtime_ns, st.st_size, set_name)
    columns = dim_rollups.set_columns(set_name)
    return memory.KEPT.get_or_make(
        key, lambda: pl.scan_parquet(path).slice(offset, length).select(columns).collect()
    )

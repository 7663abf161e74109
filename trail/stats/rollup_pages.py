"""Per-path page statistics from the page rollups (trail.storage.page_rollups), when they apply.

/statistics/page without a filter over whole UTC days: views and sessions add up over the
days' rollups (minus the sessions carried across each midnight inside the window), bounces add
up (plus the bounces carried across each midnight inside the window), visitors are counted
exactly over the union of each path's per-day visitor lists (a Rust kernel), and the title is
the latest one (the greatest of the titles sharing the latest time). The average time on page
(include_avg_time_on_page) is the sum of the days' time on page over the sum of their views
with one (plus the views paired across each midnight inside the window), rounded as
metrics.average_seconds rounds the mean of the views' times. Up to
rollups.MAX_OPEN_DAYS days without a usable rollup (the live day, a day not compacted yet, a
day whose rollup's inputs changed) are described from their rows by the function compaction
runs (page_rollups.per_path: the previous day's page views give `carried`, the day's session
rows the bounces), their visitors as positions in the day's own page view ids, and enter the
same sums and the same kernel. Same numbers as reading the rows (tests/stats/
test_stats_rollups.py, test_page_rollups.py and test_open_days.py compare them), without
decoding 10M rows. Otherwise None, and the caller reads rows.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from trail import core
from trail.stats import index_files, open_days, rollup_totals
from trail.stats.scan import scan
from trail.stats.sources import Rows
from trail.storage import page_rollups, rollups

_TABLES = ("page_views", "sessions")
# A day described from rows: its page view ids, its table (page_rollups.SCHEMA), its deltas.
Described = tuple[np.ndarray, pl.DataFrame, np.ndarray]


def page_stats(rows: Rows) -> pl.DataFrame | None:
    """`path`, `visitors`, `sessions`, `views`, `bounces`, `title` and
    `average_time_spent_seconds` per path of the window, or None. Remembered per set of files
    read (trail.stats.open_days): a dashboard load asks for it in the page, entry page and exit
    page reports."""
    f = rows.f
    if not f.is_unfiltered or f.visitor_id is not None or f.session_id is not None:
        return None
    days = rollups.whole_days(rows.start, rows.end)
    window = _window(rows, days[0]) if days is not None else None
    if days is None or window is None:
        return None
    closed, opened, ids_of = window
    if not closed and not opened:
        return _empty()
    first = days[0]

    def key() -> tuple[object, ...]:
        read = sorted({*opened, *(d - timedelta(days=1) for d in opened if d != first)})
        return (
            "pages", str(rows.data_dir), first, _stamps([d.file for d in closed]),
            rollup_totals.identity([ids_of[d.day] for d in closed]),
            open_days.identity(rows.data_dir, f.site_id, _TABLES, tuple(read)),
        )  # fmt: skip

    def make() -> pl.DataFrame | None:
        if opened or not closed:
            return _summed(rows, closed, opened, ids_of, first)
        # closed days only: built once per machine (trail.stats.index_files)
        shared_in = index_files.directory_of(ids_of[closed[0].day].file)
        stored = index_files.shared(shared_in, key(), lambda: _kept(rows, closed, ids_of, first))
        return stored.get("answer")

    return open_days.remembered(key, make)


def _kept(
    rows: Rows, closed: list[rollups.DayRollup], ids_of: dict[date, rollups.DayRollup],
    first: date,
) -> dict[str, pl.DataFrame]:  # fmt: skip
    answer = _summed(rows, closed, [], ids_of, first)
    return {} if answer is None else {"answer": answer}


def _window(
    rows: Rows, first: date
) -> tuple[list[rollups.DayRollup], list[date], dict[date, rollups.DayRollup]] | None:
    """The window's page days with a current rollup, those to read from rows, and the sessions
    rollups by day; None when too many days lack a current rollup."""
    f = rows.f
    sessions = rollups.days_or_gaps(rows.data_dir, "sessions", f.site_id, rows.start, rows.end)
    pages = rollups.days_or_gaps(rows.data_dir, "page_views", f.site_id, rows.start, rows.end,
                                 page_rollups.VERSION)  # fmt: skip
    if sessions is None or pages is None:
        return None
    page_days = {day for day, _ in pages}
    if any(day != first and day not in page_days for day, _ in sessions):
        # a day with sessions but no page views: its sessions that bounced after viewing a
        # page the day before are in no page rollup (rare: keep-alives past midnight)
        return None
    ids_of = {day: r for day, r in sessions if r is not None}
    part_of = {day: str(r.entry.get("part")) for day, r in pages if r is not None}
    closed, opened = [], []
    for day, r in pages:
        if r is not None and _current(r, ids_of.get(day), first, part_of, page_days):
            closed.append(r)
        else:
            opened.append(day)
    if len(opened) > rollups.MAX_OPEN_DAYS:
        return None
    return closed, opened, ids_of


def indexed_days(
    rows: Rows, needs: str = ""
) -> tuple[list[date], dict[date, rollups.DayRollup], dict[date, rollups.DayRollup]] | None:
    """The window's days with page views; those whose page rollup indexes the day's current
    sessions rollup (and names `needs` in its entry, such as the tag rollup's file), by day; and
    the sessions rollups by day. None when the rollups cannot answer or more than
    rollups.MAX_OPEN_DAYS days lack such a page rollup (the rows answer)."""
    f = rows.f
    pages = rollups.days_or_gaps(rows.data_dir, "page_views", f.site_id, rows.start, rows.end,
                                 page_rollups.VERSION)  # fmt: skip
    sessions = rollups.days_or_gaps(rows.data_dir, "sessions", f.site_id, rows.start, rows.end)
    if pages is None or sessions is None:
        return None
    ids_of = {day: r for day, r in sessions if r is not None}
    current = {
        day: r
        for day, r in pages
        if r is not None and (not needs or needs in r.entry) and indexes(r, ids_of.get(day))
    }
    if len(pages) - len(current) > rollups.MAX_OPEN_DAYS:
        return None
    return [day for day, _ in pages], current, ids_of


def indexes(r: rollups.DayRollup, ids: rollups.DayRollup | None) -> bool:
    """Whether page rollup `r` indexes `ids`, its day's current sessions rollup."""
    return ids is not None and r.entry.get("ids_file") == Path(ids.file).name


def _current(
    r: rollups.DayRollup, ids: rollups.DayRollup | None, first: date,
    part_of: dict[date, str], page_days: set[date],
) -> bool:  # fmt: skip
    """Whether a page rollup still describes its day: the sessions rollup it indexes and (but
    on the window's first day) the previous day's part it carried from are the current ones."""
    if not indexes(r, ids):
        return False  # the sessions rollup it indexes was replaced (or is not usable)
    previous = r.day - timedelta(days=1)
    if r.day == first:
        return True
    if previous in page_days and previous not in part_of:
        return False  # the previous day is read from rows: not the part `carried` came from
    return r.entry.get("prev_part") == part_of.get(previous, "")


def _described(rows: Rows, day: date, first: date) -> Described:
    """A day's page table from its rows, as compaction would write it (the previous day's page
    views only when the day is not the window's first: there `carried` is not used)."""
    start = datetime.combine(day, time(0), UTC)
    end, site = start + timedelta(days=1), rows.f.site_id
    ms = pl.col("time").dt.epoch("ms").alias("ms")
    columns = ["visitor_id", "session_id", "path", "title", "time", "duration_seconds"]
    pv = scan(rows.data_dir, "page_views", site, start, end, columns)
    pv = pv.select("visitor_id", "session_id", "path", "title", ms, "duration_seconds")
    sess = scan(rows.data_dir, "sessions", site, start, end, page_rollups.BOUNCE_COLUMNS)
    keys = [pl.col("visitor_id").cast(pl.UInt64), pl.col("session_id").cast(pl.UInt32)]
    if day == first:
        previous = pl.LazyFrame(schema=page_rollups.PREVIOUS)
    else:
        previous = scan(rows.data_dir, "page_views", site, start - timedelta(days=1), start,
                        ["visitor_id", "session_id", "path", "time"])  # fmt: skip
        previous = previous.select(*keys, "path", ms)
    frames = pl.collect_all([pv, previous, page_rollups.bounced_sessions(sess)])
    pv_rows = frames[0].with_columns(keys)
    return page_rollups.describe(pv_rows, frames[1], frames[2])


def _stamps(files: list[str]) -> tuple[tuple[str, int, int, int], ...]:
    stats = [(f, os.stat(f)) for f in files]
    return tuple((f, st.st_ino, st.st_mtime_ns, st.st_size) for f, st in stats)


def _summed(
    rows: Rows, closed: list[rollups.DayRollup], opened: list[date],
    ids_of: dict[date, rollups.DayRollup], first: date,
) -> pl.DataFrame | None:  # fmt: skip
    """page_stats over the closed days' page rollups and the open days' rows (checked by the
    caller)."""
    order = sorted([*(d.day for d in closed), *opened])
    index = {day: i for i, day in enumerate(order)}
    try:
        described = {day: _open_day(rows, day, first) for day in opened}
        df, deltas = _closed_tables(closed, index)
        id_arrays = [
            described[day][0] if day in described else ids_of[day].visitor_ids() for day in order
        ]
    except (OSError, pl.exceptions.PolarsError):
        return None  # replaced and purged since listed (or damaged): the rows still answer
    df = pl.concat(
        [df, *(t.with_columns(day=pl.lit(index[day], pl.UInt32)) for day, (_, t, _) in
               described.items())],
        how="vertical_relaxed",
    )  # fmt: skip
    deltas = np.concatenate([deltas, *(d for _, _, d in described.values())])
    # Sessions carried into the window's first day from before it are counted there once, and
    # the bounces of sessions that viewed a page only the day before the window are not its,
    # nor the time on page of views before the window.
    if order[0] == first:  # (the first day had no page views: nothing carried from it)
        df = df.with_columns(
            pl.when(pl.col("day") == 0).then(0).otherwise(pl.col(c)).cast(df.schema[c]).alias(c)
            for c in ("carried", "bounces_carried", "seconds_carried", "timed_carried")
        )
    df = df.with_columns(group=pl.col("path").rank("dense").cast(pl.UInt32) - 1)
    offsets = np.zeros(len(id_arrays) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum([len(a) for a in id_arrays])
    n_groups = int(df["group"].max() or 0) + 1  # type: ignore[arg-type]
    try:
        visitors = core.union_visitors(
            np.ascontiguousarray(np.concatenate(id_arrays), dtype=np.uint64),
            offsets,
            np.ascontiguousarray(deltas, dtype=np.uint32),
            np.ascontiguousarray(df["visitors"].to_numpy(), dtype=np.uint32),
            np.ascontiguousarray(df["day"].to_numpy(), dtype=np.uint32),
            np.ascontiguousarray(df["group"].to_numpy(), dtype=np.uint32),
            n_groups,
        )
    except ValueError:
        return None  # a damaged rollup: the rows still answer
    summed = (
        # The latest title: the greatest title_ms, of titles sharing it the greatest (as
        # trail.stats.kernels.page_stats decides over rows), whatever order the days come in.
        df.sort(["group", "title_ms", "title"], maintain_order=True)
        .group_by("group", maintain_order=True)
        .agg(
            pl.col("path").first(),
            (
                pl.col("sessions").cast(pl.Int64).sum() - pl.col("carried").cast(pl.Int64).sum()
            ).alias("sessions"),
            pl.col("views").cast(pl.Int64).sum().alias("views"),
            (
                pl.col("bounces").cast(pl.Int64).sum()
                + pl.col("bounces_carried").cast(pl.Int64).sum()
            ).alias("bounces"),
            (pl.col("seconds").sum() + pl.col("seconds_carried").sum()).alias("seconds"),
            (
                pl.col("timed").cast(pl.Int64).sum() + pl.col("timed_carried").cast(pl.Int64).sum()
            ).alias("timed"),
            pl.col("title").last(),
        )
        # a path with only the bounces of sessions that viewed it the day before the window
        .filter(pl.col("views") > 0)
    )
    counts = pl.Series("visitors", visitors, dtype=pl.Int64)
    return summed.with_columns(
        visitors=counts.gather(summed["group"]),
        average_time_spent_seconds=average_seconds(pl.col("seconds"), pl.col("timed")),
    ).select(*_empty().columns)


def average_seconds(total: pl.Expr, n: pl.Expr) -> pl.Expr:
    """metrics.average_seconds of `n` non-zero values that add up to `total`: the mean, rounded
    half to even, 0 without values (Polars' mean of integers is their sum over their count)."""
    mean = total.cast(pl.Float64) / n.cast(pl.Float64)
    return pl.when(n > 0).then(mean.round(0, mode="half_to_even")).otherwise(0).cast(pl.Int64)


def _open_day(rows: Rows, day: date, first: date) -> Described:
    """_described, remembered while the day's (and the day before's) files stay the same."""
    read = (day,) if day == first else (day - timedelta(days=1), day)

    def key() -> tuple[object, ...]:
        site = rows.f.site_id
        return ("page day", str(rows.data_dir), site, day == first,
                open_days.identity(rows.data_dir, site, _TABLES, read))  # fmt: skip

    return open_days.remembered(key, lambda: _described(rows, day, first))


def _closed_tables(
    closed: list[rollups.DayRollup], index: dict[date, int]
) -> tuple[pl.DataFrame, np.ndarray]:
    """The closed days' page rollup rows (with `day`: the index in the window's page days) and
    their deltas, in the same order."""
    if not closed:
        schema = {**page_rollups.SCHEMA, "day": pl.UInt32}
        return pl.DataFrame(schema=schema), np.zeros(0, dtype=np.uint32)
    # One multi-file scan per kind: Polars reads the files in parallel, in the given order.
    files = [d.file for d in closed]
    day_of = {d.file: index[d.day] for d in closed}
    per_path = pl.scan_parquet(files, include_file_paths="src").with_columns(
        day=pl.col("src").replace_strict(day_of, return_dtype=pl.UInt32)
    )
    visitor_files = [str(Path(d.file).parent / d.entry["visitors_file"]) for d in closed]
    df, deltas = pl.collect_all([per_path.drop("src"), pl.scan_parquet(visitor_files)])
    return df, deltas["deltas"].to_numpy()


def _empty() -> pl.DataFrame:
    schema = {"path": pl.String, "visitors": pl.Int64, "sessions": pl.Int64,
              "views": pl.Int64, "bounces": pl.Int64, "title": pl.String,
              "average_time_spent_seconds": pl.Int64}  # fmt: skip
    return pl.DataFrame(schema=schema)

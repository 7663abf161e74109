"""Per-path page statistics from the page rollups (trail.storage.page_rollups), when they apply.

/statistics/page without a filter over whole UTC days: views and sessions add up over the
days' rollups (minus the sessions carried across each midnight inside the window), bounces add
up (plus the bounces carried across each midnight inside the window), visitors are counted
exactly over the union of each path's per-day visitor lists (a Rust kernel), and the title is
the latest one (the greatest of the titles sharing the latest time). Same numbers as reading
the rows (tests/stats/test_stats_rollups.py compares them), without decoding 10M rows.
Otherwise None, and the caller reads rows.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from trail import core
from trail.stats import rollup_totals
from trail.stats.sources import Rows
from trail.storage import page_rollups, rollups

# The answers of the latest windows, by the identity of the files they were read from: a
# dashboard load asks for them in the page, entry page and exit page reports.
_ANSWERS_KEPT = 4
_answers: OrderedDict[tuple, pl.DataFrame] = OrderedDict()
_lock = threading.Lock()


def page_stats(rows: Rows) -> pl.DataFrame | None:
    """`path`, `visitors`, `sessions`, `views`, `bounces`, `title` per path of the window, or
    None."""
    f = rows.f
    if not f.is_unfiltered or f.visitor_id is not None or f.session_id is not None:
        return None
    days = rollups.whole_days(rows.start, rows.end)
    sessions = rollups.days_for(rows.data_dir, "sessions", f.site_id, rows.start, rows.end)
    pages = page_rollups.days_for(rows.data_dir, f.site_id, rows.start, rows.end)
    if days is None or sessions is None or pages is None:
        return None
    if not pages:
        return _empty()
    ids_of = {d.day: d for d in sessions}
    part_of = {d.day: str(d.entry.get("part")) for d in pages}
    first = days[0]
    if any(d.day != first and d.day not in part_of for d in sessions):
        # a day with sessions but no page views: its sessions that bounced after viewing a
        # page the day before are in no page rollup (rare: keep-alives past midnight)
        return None
    for d in pages:
        ids = ids_of.get(d.day)
        if ids is None or d.entry.get("ids_file") != Path(ids.file).name:
            return None  # the sessions rollup it indexes was replaced: not rebuilt yet
        previous = d.day - timedelta(days=1)
        if d.day != first and d.entry.get("prev_part") != part_of.get(previous, ""):
            return None  # `carried` was computed from another version of the previous day
    key = (first, _stamps([d.file for d in pages]), rollup_totals.identity(sessions))
    with _lock:
        hit = _answers.get(key)
        if hit is not None:
            _answers.move_to_end(key)
            return hit
    out = _summed(pages, ids_of, first)
    if out is not None and key[1:] == (
        _stamps([d.file for d in pages]),
        rollup_totals.identity(sessions),
    ):
        with _lock:
            _answers[key] = out
            while len(_answers) > _ANSWERS_KEPT:
                _answers.popitem(last=False)
    return out


def _stamps(files: list[str]) -> tuple[tuple[str, int, int, int], ...]:
    stats = [(f, os.stat(f)) for f in files]
    return tuple((f, st.st_ino, st.st_mtime_ns, st.st_size) for f, st in stats)


def _summed(
    pages: list[rollups.DayRollup], ids_of: dict[date, rollups.DayRollup], first: date
) -> pl.DataFrame | None:
    """page_stats over the days' page rollups (checked by the caller)."""
    # One multi-file scan per kind: Polars reads the files in parallel, in the given order.
    files = [d.file for d in pages]
    day_of = {f: i for i, f in enumerate(files)}
    per_path = pl.scan_parquet(files, include_file_paths="src").with_columns(
        day=pl.col("src").replace_strict(day_of, return_dtype=pl.UInt32)
    )

    # Sessions carried into the window's first day from before it are counted there once, and
    # the bounces of sessions that viewed a page only the day before the window are not its.
    def after_first(column: str) -> pl.Expr:
        if pages[0].day != first:  # the first day had no page views: nothing carried from it
            return pl.col(column)
        return pl.when(pl.col("day") == 0).then(0).otherwise(pl.col(column)).cast(pl.UInt32)

    per_path = per_path.with_columns(
        carried=after_first("carried"), bounces_carried=after_first("bounces_carried")
    )
    visitor_files = [str(Path(d.file).parent / d.entry["visitors_file"]) for d in pages]
    try:
        df, deltas = pl.collect_all([per_path, pl.scan_parquet(visitor_files)])
        id_arrays = [ids_of[d.day].visitor_ids() for d in pages]
    except (OSError, pl.exceptions.PolarsError):
        return None  # replaced and purged since listed (or damaged): the rows still answer
    df = df.with_columns(group=pl.col("path").rank("dense").cast(pl.UInt32) - 1)
    offsets = np.zeros(len(id_arrays) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum([len(a) for a in id_arrays])
    n_groups = int(df["group"].max() or 0) + 1  # type: ignore[arg-type]
    try:
        visitors = core.union_visitors(
            np.ascontiguousarray(np.concatenate(id_arrays), dtype=np.uint64),
            offsets,
            np.ascontiguousarray(deltas["deltas"].to_numpy(), dtype=np.uint32),
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
            pl.col("title").last(),
        )
        # a path with only the bounces of sessions that viewed it the day before the window
        .filter(pl.col("views") > 0)
    )
    counts = pl.Series("visitors", visitors, dtype=pl.Int64)
    return summed.with_columns(visitors=counts.gather(summed["group"])).select(
        "path", "visitors", "sessions", "views", "bounces", "title"
    )


def _empty() -> pl.DataFrame:
    schema = {"path": pl.String, "visitors": pl.Int64, "sessions": pl.Int64,
              "views": pl.Int64, "bounces": pl.Int64, "title": pl.String}  # fmt: skip
    return pl.DataFrame(schema=schema)

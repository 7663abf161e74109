"""Per-path page statistics from the page rollups (trail.storage.page_rollups), when they apply.

/statistics/page without a filter: over the window's whole UTC days, views and sessions add up
over the days' rollups (minus the sessions carried across each midnight inside the window),
bounces add up (plus the bounces carried across each midnight inside the window), visitors are
counted exactly over the union of each path's per-day visitor lists (a Rust kernel), and the
title is the latest one (the greatest of the titles sharing the latest time). The average time
on page (include_avg_time_on_page) is the sum of the days' time on page over the sum of their
views with one (plus the views paired across each midnight inside the window), rounded as
metrics.average_seconds rounds the mean of the views' times.

Parts of the window are described from their rows by the function compaction runs
(page_rollups.per_path), their visitors as positions in the part's own page view ids, and enter
the same sums and the same kernel: up to rollups.MAX_OPEN_DAYS whole days without a usable
rollup (the live day, a day not compacted yet, a day whose page rollup indexes a replaced
sessions rollup), and the slices of the UTC days at the ends of a window that is not made of
whole UTC days (a site whose zone is not UTC; rollups.window_parts). A part's `carried`
columns come from the page views of the part of the previous UTC day inside the window (none
for the window's first day), and its bounces from its own session rows. A whole day that has a
usable rollup but whose previous day is not the part its rollup carried from (a slice, a day
read from rows, a rebuilt part) keeps its rollup and takes only its `carried` columns from rows
(page_rollups.carried over the previous part's views and the day's views of the same
sessions).

Same numbers as reading the rows (tests/stats/test_stats_rollups.py, test_page_rollups.py,
test_open_days.py and test_zone_pages.py compare them), without decoding 10M rows. Otherwise
None, and the caller reads rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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
_KEYS = ["visitor_id", "session_id"]
# A part described from rows: its page view ids, its table (page_rollups.SCHEMA), its deltas.
Described = tuple[np.ndarray, pl.DataFrame, np.ndarray]
Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class _Window:
    """How the window's UTC days with page views are answered."""

    first: date  # the UTC day the window starts in: nothing is carried into it
    closed: list[rollups.DayRollup]  # whole days answered by their page rollup
    patched: dict[date, Span]  # closed days whose carried columns come from rows: the span
    # of the previous day inside the window they carry from
    opened: list[rollups.DayPart]  # whole days and slices described from rows
    ids_of: dict[date, rollups.DayRollup]  # the sessions rollups of whole days

    def read(self) -> tuple[date, ...]:
        """The days whose rows the window reads (the opened and patched days and the days
        before them), for open_days.identity."""
        days = {*(p.day for p in self.opened), *self.patched}
        days |= {d - timedelta(days=1) for d in days if d != self.first}
        return tuple(sorted(days))


def page_stats(rows: Rows) -> pl.DataFrame | None:
    """`path`, `visitors`, `sessions`, `views`, `bounces`, `title` and
    `average_time_spent_seconds` per path of the window, or None. Remembered per set of files
    read (trail.stats.open_days): a dashboard load asks for it in the page, entry page and exit
    page reports."""
    f = rows.f
    if not f.is_unfiltered or f.visitor_id is not None or f.session_id is not None:
        return None
    w = _window(rows)
    if w is None:
        return None
    if not w.closed and not w.opened:
        return _empty()

    def key() -> tuple[object, ...]:
        return (
            "pages", str(rows.data_dir), w.first, _stamps([d.file for d in w.closed]),
            rollup_totals.identity([w.ids_of[d.day] for d in w.closed]),
            tuple((p.day, p.start, p.end) for p in w.opened), tuple(sorted(w.patched.items())),
            open_days.identity(rows.data_dir, f.site_id, _TABLES, w.read()),
        )  # fmt: skip

    def make() -> pl.DataFrame | None:
        if w.opened or w.patched or not w.closed:
            return _summed(rows, w)
        # closed days only: built once per machine (trail.stats.index_files)
        shared_in = index_files.directory_of(w.ids_of[w.closed[0].day].file)
        stored = index_files.shared(shared_in, key(), lambda: _kept(rows, w))
        return stored.get("answer")

    return open_days.remembered(key, make)


def _kept(rows: Rows, w: _Window) -> dict[str, pl.DataFrame]:
    answer = _summed(rows, w)
    return {} if answer is None else {"answer": answer}


def _window(rows: Rows) -> _Window | None:
    """The window's page days with a current rollup, those to read from rows, and the sessions
    rollups by day; None when too many whole days lack a current rollup."""
    f = rows.f
    site, start, end = f.site_id, rows.start, rows.end
    sessions = rollups.window_parts(rows.data_dir, "sessions", site, start, end)
    pages = rollups.window_parts(rows.data_dir, "page_views", site, start, end,
                                 page_rollups.VERSION)  # fmt: skip
    if sessions is None or pages is None:
        return None
    first = start.astimezone(UTC).date()
    page_days = {p.day for p in pages}
    if any(p.day != first and p.day not in page_days for p in sessions):
        # a day with sessions but no page views: its sessions that bounced after viewing a
        # page the day before are in no page rollup (rare: keep-alives past midnight)
        return None
    ids_of = {p.day: p.rollup for p in sessions if p.rollup is not None}
    part_of = {p.day: str(p.rollup.entry.get("part")) for p in pages if p.rollup is not None}
    closed, opened, patched = [], [], {}
    for p in pages:
        r = p.rollup
        if r is None or not indexes(r, ids_of.get(p.day)):
            opened.append(p)  # a slice, a day without a usable rollup, or whose ids changed
            continue
        closed.append(r)
        previous = p.day - timedelta(days=1)
        # `carried` is used but on the window's first day, and holds when it came from the
        # previous day's current part (or that day had no page views then and has none now)
        settled = previous in part_of or previous not in page_days
        if p.day != first and not (
            settled and r.entry.get("prev_part") == part_of.get(previous, "")
        ):
            patched[p.day] = _before(rows, p.day)
    if sum(p.whole for p in opened) > rollups.MAX_OPEN_DAYS:
        return None
    return _Window(first, closed, patched, opened, ids_of)


def _before(rows: Rows, day: date) -> Span:
    """The part of the UTC day before `day` inside the window (`day` is not its first)."""
    midnight = datetime.combine(day, time(0), UTC)
    return max(rows.start.astimezone(UTC), midnight - timedelta(days=1)), midnight


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


def _described(rows: Rows, part: rollups.DayPart, before: Span | None) -> Described:
    """A part's page table from its rows, as compaction would write it for a day: the page
    views and session rows of [part.start, part.end), and (`before`, but on the window's first
    day) the page views of the previous day's part inside the window that belong to the part's
    sessions (the others carry nothing across the midnight)."""
    site = rows.f.site_id
    ms = pl.col("time").dt.epoch("ms").alias("ms")
    columns = ["visitor_id", "session_id", "path", "title", "time", "duration_seconds"]
    pv = scan(rows.data_dir, "page_views", site, part.start, part.end, columns)
    pv = pv.select("visitor_id", "session_id", "path", "title", ms, "duration_seconds")
    sess = scan(rows.data_dir, "sessions", site, part.start, part.end,
                page_rollups.BOUNCE_COLUMNS)  # fmt: skip
    pv_rows, bounced = pl.collect_all(
        [pv.with_columns(_key_types()), page_rollups.bounced_sessions(sess)]
    )
    if before is None:
        previous = pl.DataFrame(schema=page_rollups.PREVIOUS)
    else:
        sessions = pl.concat([pv_rows.select(_KEYS), bounced.select(_KEYS)]).unique()
        previous = _views_of(rows, before, ["path", "duration_seconds"], sessions)
    return page_rollups.describe(pv_rows, previous, bounced)


def _patched(rows: Rows, day: date, before: Span) -> pl.DataFrame:
    """`path` and page_rollups.CARRIED of a whole day, carried from the page views of `before`
    (the previous day's part inside the window): from those views and the day's views and
    session rows of the same sessions."""
    start = datetime.combine(day, time(0), UTC)
    previous = _views_of(rows, before, ["path", "duration_seconds"], None)
    sessions = previous.select(_KEYS).unique()
    pv = _views_of(rows, (start, start + timedelta(days=1)), ["path", "duration_seconds"],
                   sessions)  # fmt: skip
    sess = scan(rows.data_dir, "sessions", rows.f.site_id, start, start + timedelta(days=1),
                page_rollups.BOUNCE_COLUMNS)  # fmt: skip
    sess = sess.with_columns(_key_types()).join(sessions.lazy(), on=_KEYS, how="semi")
    bounced = page_rollups.bounced_sessions(sess).collect()
    return page_rollups.carried(pv, previous, bounced)


def _views_of(
    rows: Rows, span: Span, columns: list[str], sessions: pl.DataFrame | None
) -> pl.DataFrame:
    """The page views of `span` (visitor_id, session_id, `columns`, ms) in the order a scan
    reads them; of `sessions` (visitor_id, session_id) only, when given."""
    ms = pl.col("time").dt.epoch("ms").alias("ms")
    lf = scan(rows.data_dir, "page_views", rows.f.site_id, span[0], span[1],
              [*_KEYS, *columns, "time"])  # fmt: skip
    lf = lf.select(*_key_types(), *columns, ms)
    if sessions is not None:
        # (the visitors first: a predicate the scan can apply before decoding the paths)
        visitors = sessions["visitor_id"].unique()
        lf = lf.filter(pl.col("visitor_id").is_in(visitors.implode()))
        lf = lf.join(sessions.lazy(), on=_KEYS, how="semi", maintain_order="left")
    return lf.collect()


def _key_types() -> list[pl.Expr]:
    return [pl.col("visitor_id").cast(pl.UInt64), pl.col("session_id").cast(pl.UInt32)]


def _stamps(files: list[str]) -> tuple[tuple[str, int, int, int], ...]:
    stats = [(f, os.stat(f)) for f in files]
    return tuple((f, st.st_ino, st.st_mtime_ns, st.st_size) for f, st in stats)


def _summed(rows: Rows, w: _Window) -> pl.DataFrame | None:
    """page_stats over the closed days' page rollups and the opened parts' rows (checked by the
    caller)."""
    order = sorted([*(d.day for d in w.closed), *(p.day for p in w.opened)])
    index = {day: i for i, day in enumerate(order)}
    try:
        described = {p.day: _open_day(rows, p, w.first) for p in w.opened}
        patches = {day: _patch(rows, day, span) for day, span in w.patched.items()}
        df, deltas = _closed_tables(w.closed, index)
        id_arrays = [
            described[day][0] if day in described else w.ids_of[day].visitor_ids() for day in order
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
    # nor the time on page of views before the window. A patched day's rollup carried from
    # another previous part: its carried columns are replaced by the patch's rows (without
    # views or visitors, so the deltas still follow the rows that have them).
    reset = [index[day] for day in (w.first, *w.patched) if day in index]
    df = df.with_columns(
        pl.when(pl.col("day").is_in(reset)).then(0).otherwise(pl.col(c)).cast(df.schema[c]).alias(c)
        for c in page_rollups.CARRIED
    )
    df = pl.concat(
        [df, *(_carried_rows(t, index[day]) for day, t in patches.items())], how="vertical_relaxed"
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


def _open_day(rows: Rows, part: rollups.DayPart, first: date) -> Described:
    """_described, remembered while the part's (and the previous day's) files stay the same."""
    before = None if part.day == first else _before(rows, part.day)
    read = (part.day,) if before is None else (part.day - timedelta(days=1), part.day)

    def key() -> tuple[object, ...]:
        site = rows.f.site_id
        return ("page day", str(rows.data_dir), site, part.start, part.end, before,
                open_days.identity(rows.data_dir, site, _TABLES, read))  # fmt: skip

    return open_days.remembered(key, lambda: _described(rows, part, before))


def _patch(rows: Rows, day: date, before: Span) -> pl.DataFrame:
    """_patched, remembered while the day's and the previous day's files stay the same."""

    def key() -> tuple[object, ...]:
        site = rows.f.site_id
        read = (day - timedelta(days=1), day)
        return ("page carried", str(rows.data_dir), site, day, before,
                open_days.identity(rows.data_dir, site, _TABLES, read))  # fmt: skip

    return open_days.remembered(key, lambda: _patched(rows, day, before))


def _carried_rows(carried: pl.DataFrame, day: int) -> pl.DataFrame:
    """Page table rows (SCHEMA, with `day`) holding only the CARRIED columns of `carried`."""
    own = {c: t for c, t in page_rollups.SCHEMA.items() if c not in carried.columns}
    return carried.with_columns(
        *(pl.lit(None if c in ("title", "title_ms") else 0, t).alias(c) for c, t in own.items()),
        day=pl.lit(day, pl.UInt32),
    ).select(*page_rollups.SCHEMA, "day")


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

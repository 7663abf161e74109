"""hours and weekdays from the time rollups (trail.storage.time_rollups), exactly.

Without a filter, for a zone whose offset is whole hours all window long (a window that starts
and ends on whole UTC hours; across a change of offset, by whole hours, each UTC hour takes its
own offset where the hours of each UTC day stay different slots: see hour_offsets), each local
slot (hour of the day, hour of the week) is a set of UTC hours, so the report adds up the days'
hours instead of reading every page view: views and the bounced one-view sessions counted by
their start add up; the visitors of a slot are the distinct ids over its hours' visitor lists;
the sessions of a slot are the sum of its hours' distinct sessions, less the repeats of sessions
with views on several days (all of them are specials of every day they have rows on, see
trail.storage.time_rollups); the bounces of reloads are the sessions whose bounced rows of
several views sum to a live state over the window, once per slot they viewed a page in. A day
without a usable rollup (the live day, a day not compacted yet) is described from its rows by
the same function. Anything else (a filter, a deletion in the window, a session carried into a
day that is not a special of the day before, more than rollups.MAX_OPEN_DAYS days from rows)
gives None: the rows answer.
tests/stats/test_time_rollups.py compares both ways.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from trail.stats import index_files, kernels, rollup_visitors
from trail.stats.buckets import TimePart
from trail.stats.scan import scan
from trail.stats.sources import Rows, starts_hold_views
from trail.storage import layout, memory, rollups, time_rollups
from trail.storage.daydir import read_day
from trail.storage.time_rollups import CELLS, HOUR_MS, RELOADS, SINGLES, SPECIALS, DayTime

_DAY_MS = 24 * HOUR_MS
_KEYS = ["visitor_id", "session_id"]
_COUNTS = ("visitors", "sessions", "views", "bounces")


def time_counts(rows: Rows, part: TimePart, tz: ZoneInfo | None = None) -> pl.DataFrame | None:
    """visitors, sessions, views, bounces per value of `part` (a slot of UTC hours) over the
    page views of an unfiltered window, as trail.stats.sources.metrics_by gives them; or None.
    With `tz`, `part` is taken over local hours whose offset comes from `tz` hour by hour instead
    of `part.shift` (a zone that changes its offset in the window by whole hours)."""
    f = rows.f
    if not f.is_unfiltered or f.visitor_id is not None or f.session_id is not None:
        return None
    ws, we = int(rows.start.timestamp() * 1000), int(rows.end.timestamp() * 1000)
    if part.unit != HOUR_MS or part.shift % HOUR_MS or ws % HOUR_MS or we % HOUR_MS or we <= ws:
        return None
    h0, h1 = ws // HOUR_MS, we // HOUR_MS
    shifts = hour_offsets(tz, part, h0, h1) if tz is not None else None
    if tz is not None and shifts is None:
        return None
    if not starts_hold_views(rows, ["time"]):
        return None  # a deletion in the window: the rows decide otherwise
    days = window_days(rows, ws, we)
    if days is None:
        return None
    question = ("time", part, tz.key if tz is not None else None, ws, we)
    return remembered(days, question, lambda read: _count(read, part, h0, h1, shifts))


def hour_offsets(tz: ZoneInfo, part: TimePart, h0: int, h1: int) -> np.ndarray | None:
    """The offset of `tz`, in hours, of every UTC hour of [h0, h1) (hours since the epoch), or
    None when one is not whole hours or changes within an hour, or when two hours of a UTC day
    fall in one slot of `part` (the hour repeated when summer time ends), but for the day's last
    hour: the sessions of a slot add up over its hours only while a session's hours of one day
    are different slots, or when the session is a special of the day (a view in its last hour
    makes it one), whose repeats are taken out (see _count). When summer time starts, the hour of
    the day of the first UTC hour of that day comes back in its last one."""
    out = np.empty(h1 - h0, dtype=np.int64)
    for i, h in enumerate(range(h0, h1)):
        at = datetime.fromtimestamp(h * HOUR_MS / 1000, UTC)
        first = at.astimezone(tz).utcoffset()
        last = (at + timedelta(milliseconds=HOUR_MS - 1)).astimezone(tz).utcoffset()
        if first is None or first != last or first.total_seconds() % 3600:
            return None
        out[i] = int(first.total_seconds()) // 3600
    hours = np.arange(h0, h1, dtype=np.int64)
    slots = (hours + out + part.add) % part.modulus
    others = hours % 24 != 23
    per_day = (hours // 24 * part.modulus + slots)[others]
    return out if len(np.unique(per_day)) == len(per_day) else None


@dataclass(frozen=True)
class DayRef:
    """A day of a window, told apart by the files it is read from (`identity`), read by
    `read` (None when its rollup or rows cannot describe it): an answer remembered for the
    same identities is found without reading the days' tables (~17 ms a day at 100M page views
    a month)."""

    identity: tuple
    read: Callable[[], DayTime | None]
    shared_in: Path | None = None  # a closed day's: where the machine's answers are kept


def window_days(rows: Rows, ws: int, we: int, *, sliced: bool = False) -> list[DayRef] | None:
    """Every UTC day the window [ws, we) (ms) touches that has session rows, from its rollup
    or its rows (with `sliced`, only the part of the days at the window's ends that lies in it:
    rollups.window_parts); None when more than rollups.MAX_OPEN_DAYS whole days are read from
    rows, or a day's rollup is not current."""
    first = datetime.fromtimestamp(ws // _DAY_MS * _DAY_MS / 1000, UTC)
    last = datetime.fromtimestamp(-(-we // _DAY_MS) * _DAY_MS / 1000, UTC)
    if sliced:
        first, last = datetime.fromtimestamp(ws / 1000, UTC), datetime.fromtimestamp(we / 1000, UTC)
    parts = rollups.window_parts(rows.data_dir, "sessions", rows.f.site_id, first, last)
    if parts is None:
        return None
    out = []
    try:
        for p in parts:
            d = _from_rows(rows, p) if p.rollup is None else _from_rollup(p.rollup)
            if d is None:
                return None
            out.append(d)
    except (OSError, pl.exceptions.PolarsError):
        return None  # replaced and purged since listed (or damaged): the rows still answer
    return out


def _from_rollup(r: rollups.DayRollup) -> DayRef | None:
    directory = os.path.dirname(r.file)
    if not r.entry.get("time_file") or not time_rollups.current(Path(directory), r.entry):
        return None
    names = (r.entry["time_file"], r.entry["time_visitors_file"])
    key = tuple((n, *_stamp(f"{directory}/{n}")) for n in names) + (_stamp(r.file),)
    return DayRef(
        key,
        lambda: memory.KEPT.get_or_make(
            ("time", key),
            lambda: time_rollups.read(directory, r.entry, r.day, r.visitor_ids()),
        ),
        index_files.directory_of(r.file),
    )


def _stamp(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, st.st_size


# Days' time tables (a dashboard load asks hours and weekdays) and answers (the next load of
# the same window asks the same) are kept by the identity of the days' files, under the
# statistics' memory budget (trail.storage.memory).


def remembered(
    days: list[DayRef], question: tuple, compute: Callable[[list[DayTime]], pl.DataFrame | None]
) -> pl.DataFrame | None:
    """compute() of the days read, remembered while every day of `days` is read from the same
    files (rollups, or for a day described from rows, its segments and parts); None when a day
    cannot be read (the rows answer). The answer over closed days only is made once per machine
    (trail.stats.index_files): each worker would otherwise read the window's time tables for it
    (~3 s at 100M page views a month)."""

    def computed() -> pl.DataFrame | None:
        read = [d.read() for d in days]
        return None if any(d is None for d in read) else compute(read)  # type: ignore[arg-type]

    def stored() -> dict[str, pl.DataFrame]:
        out = computed()
        return {} if out is None else {"answer": out}

    key = ("time answer", tuple(d.identity for d in days), question)
    shared_in = days[0].shared_in if days else None

    def answer() -> pl.DataFrame | None:
        if shared_in is None or any(d.shared_in != shared_in for d in days):
            return computed()
        return index_files.shared(shared_in, key, stored).get("answer")

    try:
        # small, made from every day of the window: dear to the budget
        return memory.KEPT.get_or_make(key, answer, dear=True, keep_none=True)
    except (OSError, pl.exceptions.PolarsError):
        return None  # replaced and purged since listed (or damaged): not remembered


_TABLES = ("sessions", "page_views", "events")


def _from_rows(rows: Rows, part: rollups.DayPart) -> DayRef:
    """The day (or its slice in the window) described from its rows, remembered by the files
    they are read from (segments and parts are written once: a new or merged segment is a new
    name)."""
    site, day = rows.f.site_id, part.day
    listings = [read_day(layout.day_dir(rows.data_dir, t, site, day)) for t in _TABLES]
    span = None if part.whole else (part.start, part.end)
    key = ("rows", str(rows.data_dir), site, day, span,
           *(tuple(x.arrow + x.parquet) for x in listings))  # fmt: skip

    return DayRef(  # read from rows: dear to the budget
        key,
        lambda: memory.KEPT.get_or_make(
            ("time", key), lambda: _describe_rows(rows, part), dear=True
        ),
    )


def _describe_rows(rows: Rows, part: rollups.DayPart) -> DayTime | None:
    start, end, day = part.start, part.end, part.day
    site = rows.f.site_id
    sess, views, events = pl.collect_all([
        scan(rows.data_dir, table, site, start, end, columns)
        for table, columns in (("sessions", time_rollups.COLUMNS),
                               ("page_views", time_rollups.VIEW_COLUMNS),
                               ("events", time_rollups.EVENT_COLUMNS))
    ])  # fmt: skip
    ids = np.sort(sess.filter(pl.col("sign") >= 0)["visitor_id"].unique().to_numpy())
    described = time_rollups.describe(sess, views, events, ids, day)
    return None if isinstance(described, str) else described


def _count(
    days: list[DayTime], part: TimePart, h0: int, h1: int, shifts: np.ndarray | None = None
) -> pl.DataFrame | None:
    n = part.modulus
    if not days:
        return pl.DataFrame(schema={part.name: pl.Int64, **dict.fromkeys(_COUNTS, pl.Int64)})

    def slot(hours: np.ndarray) -> np.ndarray:
        # (every hour asked lies in [h0, h1): the cells, singles and specials are cut to it)
        shift = part.shift // HOUR_MS if shifts is None else shifts[hours - h0]
        return (hours + shift + part.add) % n

    views, sessions, singles = (np.zeros(n, dtype=np.int64) for _ in range(3))
    visitors: list[list[np.ndarray]] = [[] for _ in range(n)]
    reloads = []
    for d in days:
        cells = d.kind(CELLS)
        lens = cells["visitors"].to_numpy().astype(np.int64)
        ids = d.ids[rollup_visitors.positions(d.deltas[: lens.sum()], lens)]
        ends = np.cumsum(lens)
        hours = cells["hour"].to_numpy()
        for i in np.flatnonzero((hours >= h0) & (hours < h1)):
            s = int(slot(hours[i]))
            views[s] += int(cells["views"][int(i)])
            sessions[s] += int(cells["sessions"][int(i)])
            visitors[s].append(ids[ends[i] - lens[i] : ends[i]])
        single = d.kind(SINGLES).filter(
            pl.col("hour").is_between(h0, h1 - 1) & pl.col("start_hour").is_between(h0, h1 - 1)
        )
        np.add.at(singles, slot(single["start_hour"].to_numpy()), single["single"].to_numpy())
        reloads.append(d.kind(RELOADS).filter(pl.col("hour").is_between(h0, h1 - 1)))
    sp = specials_of(days)
    if not carried_ok(sp, h0):
        return None
    reloaded = (
        pl.concat(reloads).group_by(_KEYS).agg(pl.col("reload").sum()).filter(pl.col("reload") > 0)
    )
    repeated = sp.group_by(_KEYS).len().filter(pl.col("len") > 1)
    wanted = pl.concat([reloaded.select(_KEYS), repeated.select(_KEYS)]).unique()
    if shifts is not None:  # a last hour may share its slot with an earlier one: every special
        wanted = sp.select(_KEYS).unique()
    cells_of = _special_cells(sp.join(wanted, on=_KEYS, how="semi"), h0, h1)
    cells_of = cells_of.with_columns(slot=pl.Series(slot(cells_of["hour"].to_numpy())))
    repeats = cells_of.group_by(*_KEYS, "slot").len().filter(pl.col("len") > 1)
    np.subtract.at(sessions, repeats["slot"].to_numpy(), repeats["len"].to_numpy() - 1)
    flagged_pairs = cells_of.join(reloaded, on=_KEYS, how="semi").select(*_KEYS, "slot").unique()
    flagged = np.bincount(flagged_pairs["slot"].to_numpy(), minlength=n).astype(np.int64)
    present = np.flatnonzero(views > 0)
    return pl.DataFrame(
        {
            part.name: pl.Series(present, dtype=pl.Int64),
            "visitors": pl.Series(
                [kernels.distinct_count(visitors[s]) for s in present], dtype=pl.Int64
            ),
            "sessions": pl.Series(sessions[present], dtype=pl.Int64),
            "views": pl.Series(views[present], dtype=pl.Int64),
            "bounces": pl.Series(flagged[present] + singles[present], dtype=pl.Int64),
        }
    )


def specials_of(days: list[DayTime]) -> pl.DataFrame:
    """The specials of `days` with `day` (ordinal) and `base` (the day's first epoch hour)."""
    return pl.concat(
        d.kind(SPECIALS).with_columns(
            day=pl.lit(d.day.toordinal()),
            base=pl.lit(layout.day_span_ms(d.day)[0] // HOUR_MS),
        )
        for d in days
    )


def carried_ok(sp: pl.DataFrame, h0: int) -> bool:
    """Whether every session carried into a day that starts after the window's first hour
    `h0` is a special of the day before (`sp`: specials_of): then every session with rows on
    several days of the window is a special of each of them."""
    needed = sp.filter(pl.col("carried") & (pl.col("base") > h0))
    missing = needed.select(*_KEYS, day=pl.col("day") - 1).join(
        sp.select(*_KEYS, "day"), on=[*_KEYS, "day"], how="anti"
    )
    return missing.is_empty()


def _special_cells(sp: pl.DataFrame, h0: int, h1: int) -> pl.DataFrame:
    """(visitor_id, session_id, hour) of the specials' views in hours [h0, h1)."""
    masks = sp["view_hours"].to_numpy().astype(np.int64)
    bits = (masks[:, None] >> np.arange(24)) & 1
    hours = sp["base"].to_numpy()[:, None] + np.arange(24)
    row, bit = np.nonzero(bits.astype(bool) & (hours >= h0) & (hours < h1))
    return sp.select(_KEYS)[row].with_columns(hour=pl.Series(hours[row, bit], dtype=pl.Int64))

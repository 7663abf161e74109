"""The page rollup of a compacted page_views day: what /statistics/page needs, per path.

A 30-day page report over 10M page views spent most of its time decoding (path, visitor,
session) of every row and counting distinct pairs. Compaction holds the day's final rows, so it
also writes `rollup-<n>.parquet` next to `part-<n>.parquet`, one row per path:

- `views`: page views of the path that day;
- `sessions`: distinct (visitor, session) pairs that viewed it that day;
- `carried`: how many of those sessions also viewed it the day before. A session crosses at
  most one UTC midnight (the session state machine ends a session 24 h after its start, see
  rust_core/src/session.rs), so over a window of days the distinct sessions of a path are the
  sum of `sessions` minus the `carried` of every day but the first;
- `title`, `title_ms`: the title of the day's latest view of the path and its time (of views
  sharing that time, the greatest title, as when the rows are read: trail.stats.kernels), so
  the window's title is the greatest (title_ms, title);
- `bounces`: how many of those sessions bounced with their final state on that day (the
  day's session rows of a session sum is_bounce * sign to 1: a state and the row that cancels it
  share their time), and `bounces_carried`: how many sessions that bounced with their final
  state on that day viewed the path the day before but not on the day. A page's bounces over a
  window of days are the sessions among its views in the window whose final state in the window
  bounced: the sum of `bounces` plus the `bounces_carried` of every day but the first;
- `seconds`, `timed`: the time on page (trail.stats.kernels.with_time_on_page: the duration of
  the session's next view) of the day's views of the path whose next view is on the same day,
  summed, and how many of them have a non-zero one; `seconds_carried`, `timed_carried`: the
  same of the views of the path the day before that were their session's last that day, paired
  with the session's first view of the day. Over a window of days the average time on page is
  the sum of `seconds` plus the `seconds_carried` of every day but the first, over the same sum
  of `timed` (a view of the window's last day whose next view is the day after has no time in
  the window, as when the rows are read);
- `visitors`: how many distinct visitors viewed the path that day. The visitors themselves are
  in `rollup-<n>-visitors.parquet`, one flat column for all paths in the order of the first
  file: ascending positions in the day's sessions rollup id list (trail.storage.rollups),
  delta-coded per path (~1.2 B per page view with zstd, against 8 for the ids; a flat column
  decodes ~3x faster than a list column). Every visitor of a page view has a session state that
  day, so the id list covers them; if one is missing (rows deleted from one table only), no
  rollup is written.

The manifest entry names its inputs: `ids_file` (the sessions rollup it indexes) and
`prev_part` (the previous day's page_views part `carried` was computed from; "" when that day
had no page views, "unsettled" when it had segments not compacted yet). The query side
(trail.stats.rollup_pages) uses a day only while the sessions rollup it indexes is current, and
its carried columns only while `prev_part` is too (or the window starts on the day: they are not
used); otherwise, and when the window holds only a slice of the previous day, it takes them from
rows (`carried`, over the previous part's views and the day's views of the same sessions). The
maintenance round rebuilds a rollup whose inputs changed (trail.tasks.compaction).
"""

from __future__ import annotations

import logging
import os
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trail.stats import kernels
from trail.storage import layout, rollups, tag_rollups
from trail.storage.daydir import MANIFEST, Manifest, visible_files
from trail.storage.schema import TABLES

log = logging.getLogger("trail.rollups")

# 3: the title of views sharing the latest time is the greatest, not the later row's.
# 4: bounces and bounces_carried. 5: seconds, timed, seconds_carried and timed_carried.
# 6: views of one session at one instant paired in trail.stats.kernels.TIE_ORDER.
VERSION = 6
# The columns `build` reads.
COLUMNS = ["time", "visitor_id", "session_id", "path", "title", "duration_seconds"]
UNSETTLED = "unsettled"
SCHEMA = {
    "path": pl.String,
    "views": pl.UInt32,
    "sessions": pl.UInt32,
    "carried": pl.UInt32,
    "bounces": pl.UInt32,
    "bounces_carried": pl.UInt32,
    "seconds": pl.UInt64,
    "timed": pl.UInt32,
    "seconds_carried": pl.UInt64,
    "timed_carried": pl.UInt32,
    "title": pl.String,
    "title_ms": pl.Int64,
    "visitors": pl.UInt32,
}
_KEYS = ["visitor_id", "session_id"]
# The columns that are 0 for a path without what they count.
_COUNTS = [c for c in SCHEMA if c not in ("path", "title", "title_ms", "visitors")]
# The previous day's page views per_path takes.
PREVIOUS = {"visitor_id": pl.UInt64, "session_id": pl.UInt32, "path": pl.String,
            "duration_seconds": pl.UInt32, "ms": pl.Int64}  # fmt: skip


def days_for(
    data_dir: Path, site_id: str, start: datetime, end: datetime
) -> list[rollups.DayRollup] | None:
    """The page rollups of every UTC day of the window with page views (rollups.days_for)."""
    return rollups.days_for(data_dir, "page_views", site_id, start, end, version=VERSION)


def inputs(day_dir: Path, day: date) -> dict[str, str | None]:
    """The current inputs of the page rollup of `day_dir` (a page_views day directory):
    the sessions rollup id file of the same day and the previous day's page_views part."""
    previous = _previous_dir(day_dir, day)
    prev_part = _settled_part(previous) if previous is not None else ""
    return {"ids_file": _sessions_ids_file(day_dir, day), "prev_part": prev_part}


def _previous_dir(day_dir: Path, day: date) -> Path | None:
    """The directory of the day before (None before the first day there is a date for)."""
    if day == date.min:
        return None
    return day_dir.parent / layout.day_name(day - timedelta(days=1))


def _sessions_dir(day_dir: Path) -> Path:
    """segments/page_views/site=X/day=D -> segments/sessions/site=X/day=D"""
    return day_dir.parent.parent.parent / "sessions" / day_dir.parent.name / day_dir.name


def _sessions_ids_file(day_dir: Path, day: date) -> str | None:
    sessions_dir = _sessions_dir(day_dir)
    if not (sessions_dir / MANIFEST).exists():
        return None
    r = rollups.day_rollup(sessions_dir, day, rollups.VERSION)
    return Path(r.file).name if r is not None else None


def _settled_part(day_dir: Path) -> str:
    """The one compacted part of a day directory, "" without page views, else UNSETTLED."""
    if not day_dir.is_dir():
        return ""
    arrow, parquet = visible_files(os.listdir(day_dir), Manifest.read(day_dir))
    if not arrow and not parquet:
        return ""
    return parquet[0] if not arrow and len(parquet) == 1 else UNSETTLED


def build(df: pl.DataFrame, day_dir: Path, day: date, part: str) -> dict[str, Any]:
    """Write the page rollup of `part` (the final rows `df` of one day); its manifest entry."""
    entry: dict[str, Any] = {"version": VERSION, "part": part, "file": None, **inputs(day_dir, day)}
    start, end = layout.day_span_ms(day)
    t = pl.col("time").dt.epoch("ms")
    rows = df.lazy().filter((t >= start) & (t < end))
    pv = rows.select(*_KEYS, "path", "title", t.alias("ms"), "duration_seconds").collect()
    if pv.is_empty():
        entry["unusable"] = "no page views"
        return entry
    if entry["ids_file"] is None:
        entry["unusable"] = "no sessions rollup for the day"
        return entry
    ids = np.fromfile(_sessions_dir(day_dir) / entry["ids_file"], dtype="<u8")
    visitors = pv["visitor_id"].to_numpy()
    positions = np.searchsorted(ids, visitors)
    found = positions < len(ids)
    if not found.all() or not (ids[positions[found]] == visitors[found]).all():
        entry["unusable"] = "a page view's visitor is not in the sessions rollup"
        log.warning("page rollup not written for %s: %s", day_dir, entry["unusable"])
        return entry
    pv = pv.with_columns(position=pl.Series(positions, dtype=pl.UInt32))
    previous = _previous_views(day_dir, day, entry["prev_part"])
    table = per_path(pv, previous, _bounced(day_dir, day))
    name = layout.rollup_name(part, "page_views")
    visitors_name = name.replace(".parquet", "-visitors.parquet")
    _write(table.drop("deltas"), day_dir / name)
    # (a path without views that day has no deltas: explode gives it a null, dropped)
    _write(table.select(pl.col("deltas").explode()).drop_nulls(), day_dir / visitors_name)
    entry["file"], entry["visitors_file"] = name, visitors_name
    entry.update(tag_rollups.build(df, day_dir, day, part, ids))
    return entry


def _write(df: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(layout.temp_name(path.name))
    df.write_parquet(tmp, compression="zstd", compression_level=3, statistics=False)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)


def describe(
    pv: pl.DataFrame, previous: pl.DataFrame, bounced: pl.DataFrame
) -> tuple[np.ndarray, pl.DataFrame, np.ndarray]:
    """What a page rollup holds, from a day's rows (the query side's day without a rollup):
    the sorted distinct visitor ids of the page views `pv` (visitor_id, session_id, path,
    title, ms, duration_seconds), the table (SCHEMA) and its delta-coded positions in those
    ids; `previous` and `bounced` as per_path takes them."""
    ids = np.sort(pv["visitor_id"].unique().to_numpy())
    positions = np.searchsorted(ids, pv["visitor_id"].to_numpy())
    pv = pv.with_columns(position=pl.Series(positions, dtype=pl.UInt32))
    table = per_path(pv, previous, bounced)
    deltas = table.select(pl.col("deltas").explode()).drop_nulls()["deltas"].to_numpy()
    return ids, table.drop("deltas"), deltas


def per_path(pv: pl.DataFrame, previous: pl.DataFrame, bounced: pl.DataFrame) -> pl.DataFrame:
    """The page rollup's rows (SCHEMA, with each path's `deltas`) of one day's page views `pv`
    (visitor_id, session_id, path, title, ms, duration_seconds and `position`: the visitor's in
    the day's id list), the previous day's page views `previous` (PREVIOUS) and the
    (visitor_id, session_id) of the day's bounced sessions. The views of both days come in the
    order a scan reads them: views of a session sharing a time are paired in that order."""
    pairs = pv.select(*_KEYS, "path").unique()
    bounces = pairs.join(bounced, on=_KEYS, how="semi").group_by("path").len("bounces")
    # The latest view; on a tie the greatest title, as the kernel reading rows decides.
    ordered = pv.sort(["path", "ms", "title"], maintain_order=True)
    latest = ordered.group_by("path", maintain_order=True).last()
    positions = pv.select("path", "position").unique().sort(["path", "position"])
    deltas = positions.with_columns(
        (pl.col("position") - pl.col("position").shift(1).over("path"))
        .fill_null(pl.col("position"))
        .alias("delta")
    )
    return (
        pv.group_by("path")
        .agg(pl.len().alias("views"))
        .join(pairs.group_by("path").len("sessions"), on="path")
        .join(bounces, on="path", how="left")
        .join(_seconds_within(pv), on="path", how="left")
        # a path viewed only the day before still gets a row: its views and sessions are 0
        .join(carried(pv, previous, bounced), on="path", how="full", coalesce=True)
        .join(latest.select("path", "title", pl.col("ms").alias("title_ms")), on="path", how="left")
        .join(deltas.group_by("path").agg(pl.col("delta").alias("deltas")), on="path", how="left")
        .with_columns(
            pl.col(_COUNTS).fill_null(0),
            pl.col("deltas").fill_null(pl.lit([], dtype=pl.List(pl.UInt32))),
        )
        .with_columns(visitors=pl.col("deltas").list.len())
        .sort("path")
        .select(*[pl.col(c).cast(t) for c, t in SCHEMA.items()], "deltas")
    )


CARRIED = ["carried", "bounces_carried", "seconds_carried", "timed_carried"]


def carried(pv: pl.DataFrame, previous: pl.DataFrame, bounced: pl.DataFrame) -> pl.DataFrame:
    """`path` and the CARRIED columns of a day (per_path's arguments; `pv` needs only
    visitor_id, session_id, path, ms and duration_seconds): what the sessions of `previous` add
    across the midnight. Only the sessions of `previous` matter, so `pv` and `bounced` may be
    restricted to them (the query side does, to patch a day whose previous day is not the one
    its rollup carried from)."""
    pairs = pv.select(*_KEYS, "path").unique()
    before = previous.select(*_KEYS, "path").unique()
    counted = pairs.join(before, on=[*_KEYS, "path"], how="semi").group_by("path").len("carried")
    bounces_carried = (
        before.join(bounced, on=_KEYS, how="semi")
        .join(pairs, on=[*_KEYS, "path"], how="anti")
        .group_by("path")
        .len("bounces_carried")
    )
    return (
        counted.join(bounces_carried, on="path", how="full", coalesce=True)
        .join(_seconds_carried(pv, previous), on="path", how="full", coalesce=True)
        .with_columns(pl.col(CARRIED).fill_null(0))
        .select("path", *[pl.col(c).cast(SCHEMA[c]) for c in CARRIED])
    )


def _seconds_within(pv: pl.DataFrame) -> pl.DataFrame:
    """`path`, `seconds`, `timed` of the day's views `pv` paired with a later view of the same
    day (a session's views in time order, those sharing a time in the order given, as
    trail.stats.kernels.with_time_on_page pairs them). Views without a time (0) are left out,
    as the average leaves them out."""
    spent = kernels.times_on_page_of(pv, pv["ms"].to_numpy())
    time_on_page = pl.Series("time_on_page", spent)
    return (
        pv.select("path", time_on_page)
        .filter(pl.col("time_on_page") > 0)
        .group_by("path")
        .agg(pl.col("time_on_page").cast(pl.UInt64).sum().alias("seconds"), pl.len().alias("timed"))
    )


def _seconds_carried(pv: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """`path`, `seconds_carried`, `timed_carried`: the previous day's last view of each session
    paired with the session's first view of the day `pv` (in time order, those sharing a time
    in trail.stats.kernels.TIE_ORDER, whose first two columns decide the answer here), without
    the pairs of no time."""
    order = ["ms", "duration_seconds", "path"]
    first = (
        pv.group_by(_KEYS)
        .agg(pl.col("duration_seconds").sort_by(order).first().alias("next"))
        .filter(pl.col("next") > 0)
    )
    last = previous.group_by(_KEYS).agg(pl.col("path").sort_by(order).last())
    return (
        last.join(first, on=_KEYS)
        .group_by("path")
        .agg(
            pl.col("next").cast(pl.UInt64).sum().alias("seconds_carried"),
            pl.len().alias("timed_carried"),
        )
    )


def _bounced(day_dir: Path, day: date) -> pl.DataFrame:
    """(visitor_id, session_id) of the sessions whose final state lies on `day` and bounced:
    their session rows of the day sum is_bounce * sign to 1 (a state and the row that cancels
    it share their time, so only the final state is left)."""
    sessions_dir = _sessions_dir(day_dir)
    arrow, parquet = visible_files(os.listdir(sessions_dir), Manifest.read(sessions_dir))
    frames = [pl.scan_parquet(sessions_dir / n) for n in parquet]
    frames += [pl.scan_ipc(sessions_dir / n) for n in arrow]
    empty = pl.DataFrame(schema={"visitor_id": pl.UInt64, "session_id": pl.UInt32})
    if not frames:
        return empty
    start, end = layout.day_span_ms(day)
    t = pl.col("time").cast(pl.Int64)
    cols = ["time", *_KEYS, "sign", "is_bounce"]
    rows = pl.concat([f.select(cols) for f in frames]).filter((t >= start) & (t < end))
    return bounced_sessions(rows).collect()


BOUNCE_COLUMNS = [*_KEYS, "sign", "is_bounce"]


def bounced_sessions(rows: pl.LazyFrame) -> pl.LazyFrame:
    """(visitor_id, session_id) of the sessions among one day's session rows (BOUNCE_COLUMNS)
    whose final state lies on that day and bounced (see _bounced)."""
    empty = pl.DataFrame(schema={"visitor_id": pl.UInt64, "session_id": pl.UInt32})
    return (
        rows.filter(pl.col("is_bounce"))
        .group_by(_KEYS)
        .agg(pl.col("sign").cast(pl.Int64).sum().alias("n"))
        .filter(pl.col("n") > 0)
        .select(pl.col(c).cast(t) for c, t in empty.schema.items())
    )


def _previous_views(day_dir: Path, day: date, prev_part: str) -> pl.DataFrame:
    """The previous day's page views (PREVIOUS), in the order a scan reads them."""
    empty = pl.DataFrame(schema=PREVIOUS)
    prev_dir = _previous_dir(day_dir, day)
    if prev_part == "" or prev_dir is None:
        return empty
    arrow, parquet = visible_files(os.listdir(prev_dir), Manifest.read(prev_dir))
    frames = [pl.scan_parquet(prev_dir / n) for n in parquet]
    frames += [pl.scan_ipc(prev_dir / n) for n in arrow]
    if not frames:
        return empty
    ms = pl.col("time").cast(TABLES["page_views"]["time"]).dt.epoch("ms")
    cols = [pl.col(c).cast(t) for c, t in PREVIOUS.items() if c != "ms"]
    return pl.concat([f.select(*cols, ms.alias("ms")) for f in frames]).collect()

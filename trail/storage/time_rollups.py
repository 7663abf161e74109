"""The time rollup of a compacted sessions day: page views by UTC hour, events by name.

/statistics/hours and /statistics/weekdays group a window's page views by the local hour (of
the day, of the week) of each view: visitors and sessions are distinct per slot, views are
rows, bounces are the sessions among a slot's views whose state in the window bounced
(trail.stats.sources._by_view_time). Without a filter, a slot of a zone whose offset is whole
hours and constant over the window is a set of UTC hours, so compaction writes, per UTC hour
of the day (`rollup-<n>-time.parquet`, column `kind` telling the tables apart):

- `cells` (kind 0): per UTC hour (`hour`, hours since the epoch) `views`, `sessions`
  (distinct sessions among the hour's views) and `visitors`; the visitors themselves in
  `rollup-<n>-time-visitors.parquet` as ascending positions in the day's id list (the
  sessions rollup's `rollup-<n>.u64`), delta-coded per hour, like the dimension rollup;
- `singles` (kind 1): per (`hour` of the row's time, `start_hour` of the session's start) the
  sum of sign of bounced session rows with one page view: the bounces counted by their start;
- `specials` (kind 2): the sessions that need more than sums, with the UTC hours of the day
  they viewed a page in (`view_hours`, bit h = hour h): those carried over from an earlier
  day (`carried`: a start before the day), those with a row in the day's last hour (`late`:
  the state machine continues a session over midnight only within its 30-minute timeout, see
  rust_core/src/session.rs) and those with a bounced state of several views (a reload);
- `reloads` (kind 3): per such session and UTC hour of the row's time, the sum of sign of its
  bounced rows with several views (the rows decide whether its views count as bounces);
- `events` (kind 4), for /statistics/events: per event name `count`, `duration_sum` and
  `duration_n` (the average duration is their quotient), `meta_keys`, `visitors` (positions
  in the visitors file after the cells') and `session_views`: the views (sum of page_views *
  sign over rows with a sign) of the sessions that fired it, but of the specials, which carry
  their own `session_views` and `event_names` (a session's views count once per event name
  over the window, whichever days its events and rows are on).

A session is in the sessions (and bounces) of a slot once, however many of its views the slot
holds; the hours of one day are different slots, so only a session with views on several days
can be counted twice, and every such session is a special on each of its days: the query side
(trail.stats.rollup_time) checks that every session carried into a day of the window is a
special of the day before, and reads rows when one is not.

The page views and events are read beside the sessions day (their part, or the segments
their compaction will merge: sessions are compacted first in a round). A late row of the day
comes with a session row, which makes the sessions day unusable until compaction rebuilds
both. `describe` is also what the query side runs over the rows of a day without a usable
rollup (the live day), so both describe a day the same way. Nothing here applies deletions:
the reports read rows for any window a deletion touches (trail.stats.sources.starts_hold_views).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from trail.storage import layout
from trail.storage.daydir import Manifest, visible_files
from trail.storage.schema import TABLES

log = logging.getLogger("trail.rollups")

HOUR_MS = 3_600_000
# The session columns `describe` reads (the page views: VIEW_COLUMNS).
COLUMNS = ["visitor_id", "session_id", "time", "start", "sign", "page_views", "is_bounce"]
VIEW_COLUMNS = ["visitor_id", "session_id", "time"]
_KEYS = ["visitor_id", "session_id"]
EVENT_COLUMNS = ["visitor_id", "session_id", "time", "event_name", "duration_seconds",
                 "event_meta_keys"]  # fmt: skip
CELLS, SINGLES, SPECIALS, RELOADS, EVENTS = 0, 1, 2, 3, 4
SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.UInt8(),
    "hour": pl.Int64(),
    "views": pl.Int64(),
    "sessions": pl.Int64(),
    "visitors": pl.UInt32(),
    "start_hour": pl.Int64(),
    "single": pl.Int64(),
    "visitor_id": pl.UInt64(),
    "session_id": pl.UInt32(),
    "carried": pl.Boolean(),
    "view_hours": pl.UInt32(),
    "reload": pl.Int64(),
    "name": pl.String(),
    "count": pl.Int64(),
    "duration_sum": pl.Int64(),
    "duration_n": pl.Int64(),
    "meta_keys": pl.List(pl.String()),
    "session_views": pl.Int64(),
    "event_names": pl.List(pl.String()),
}


@dataclass(frozen=True)
class DayTime:
    """One day's time tables (see the module doc) and its cells' visitors."""

    day: date
    ids: np.ndarray  # the day's sorted distinct visitor ids (of session rows with sign >= 0)
    table: pl.DataFrame  # SCHEMA, every kind
    deltas: np.ndarray  # the visitor positions in `ids` of the cells, then of the events
    kinds: dict[int, pl.DataFrame] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        parts = self.table.partition_by("kind", as_dict=True, include_key=True)
        self.kinds.update({int(k[0]): v for k, v in parts.items()})  # type: ignore[call-overload]

    def kind(self, kind: int) -> pl.DataFrame:
        return self.kinds.get(kind, self.table.clear())


def describe(
    sessions: pl.DataFrame, views: pl.DataFrame, events: pl.DataFrame, ids: np.ndarray, day: date
) -> DayTime | str:
    """The tables of one day's session rows (COLUMNS), page views (VIEW_COLUMNS) and events
    (EVENT_COLUMNS), only those of the day; a reason instead when the rows break what the
    tables rely on."""
    lo, hi = layout.day_span_ms(day)
    ms, start_ms = pl.col("time").dt.epoch("ms"), pl.col("start").dt.epoch("ms")
    views = views.select(*_KEYS, (ms // HOUR_MS).alias("hour"))
    positions = np.searchsorted(ids, views["visitor_id"].to_numpy())
    inside = positions < len(ids)
    if not inside.all() or not (ids[positions] == views["visitor_id"].to_numpy()).all():
        return "a page view's visitor has no session state that day"
    event_positions = np.searchsorted(ids, events["visitor_id"].to_numpy())
    if (event_positions >= len(ids)).any() or not (
        ids[event_positions] == events["visitor_id"].to_numpy()
    ).all():
        return "an event's visitor has no session state that day"
    keyed = pl.concat([views.select(_KEYS), events.select(_KEYS)])
    if not keyed.join(sessions.select(_KEYS), on=_KEYS, how="anti").is_empty():
        return "a page view's or event's session has no row that day"
    per_session = sessions.group_by(_KEYS).agg(
        start=start_ms.min(), last=ms.max(), carried=(start_ms < lo).any()
    )
    if not per_session.filter(pl.col("start") > pl.col("last")).is_empty():
        return "a session starts after its rows"  # then a later day would not see it carried
    views = views.with_columns(position=pl.Series(positions, dtype=pl.UInt32))
    cells = (
        views.group_by("hour")
        .agg(
            views=pl.len().cast(pl.Int64),
            sessions=pl.struct(_KEYS).n_unique().cast(pl.Int64),
            positions=pl.col("position").unique().sort(),
        )
        .sort("hour")
        .with_columns(visitors=pl.col("positions").list.len(), kind=pl.lit(CELLS, pl.UInt8))
    )
    flat = cells["positions"].explode().drop_nulls().to_numpy().astype(np.int64)
    deltas = _deltas(flat, cells["visitors"].to_numpy().astype(np.int64))
    bounced = sessions.filter(pl.col("is_bounce") & (pl.col("sign") != 0))
    sign = pl.col("sign").cast(pl.Int64)
    singles = (
        bounced.filter(pl.col("page_views") == 1)
        .group_by(hour=ms // HOUR_MS, start_hour=start_ms // HOUR_MS)
        .agg(single=sign.sum())
        .filter(pl.col("single") != 0)
        .with_columns(kind=pl.lit(SINGLES, pl.UInt8))
    )
    reloads = (
        bounced.filter(pl.col("page_views") > 1)
        .group_by(*_KEYS, hour=ms // HOUR_MS)
        .agg(reload=sign.sum())
        .with_columns(kind=pl.lit(RELOADS, pl.UInt8))
    )
    late = sessions.filter(ms >= hi - HOUR_MS).select(_KEYS).unique()
    special_keys = pl.concat(
        [per_session.filter("carried").select(_KEYS), late, reloads.select(_KEYS)]
    ).unique()
    pairs = views.select(*_KEYS, "hour").unique()
    bits = np.left_shift(np.uint32(1), (pairs["hour"].to_numpy() - lo // HOUR_MS).astype(np.uint32))
    view_hours = (
        pairs.with_columns(bit=pl.Series(bits, dtype=pl.UInt32))
        .group_by(_KEYS)
        .agg(view_hours=pl.col("bit").sum())
    )
    events = events.with_columns(position=pl.Series(event_positions, dtype=pl.UInt32))
    names, session_names = _events(sessions, events, special_keys)
    specials = (
        special_keys.join(per_session.select(*_KEYS, "carried"), on=_KEYS, how="left")
        .join(view_hours, on=_KEYS, how="left")
        .join(session_names, on=_KEYS, how="left")
        .with_columns(
            pl.col("view_hours").fill_null(0),
            pl.col("session_views").fill_null(0),
            pl.col("event_names").fill_null(pl.lit([], pl.List(pl.String))),
            kind=pl.lit(SPECIALS, pl.UInt8),
        )
    )
    event_flat = names["positions"].explode().drop_nulls().to_numpy().astype(np.int64)
    lens = names["visitors"].to_numpy().astype(np.int64)
    deltas = np.concatenate([deltas, _deltas(event_flat, lens)]).astype(np.uint32)
    parts = [cells.drop("positions"), singles, specials, reloads, names.drop("positions")]
    table = pl.concat(
        [
            p.select(
                (pl.col(c) if c in p.columns else pl.lit(None)).cast(t).alias(c)
                for c, t in SCHEMA.items()
            )
            for p in parts
        ]
    ).sort("kind", "hour", "start_hour", "name", "visitor_id", "session_id", nulls_last=False)
    return DayTime(day, ids, table, deltas)


# The metadata keys of events, as trail.stats.events lists them.
META_KEYS = pl.col("event_meta_keys").list.explode(keep_nulls=False, empty_as_null=False)


def _events(
    sessions: pl.DataFrame, events: pl.DataFrame, special_keys: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The per-name table (ordered by name, with `positions`) and, per session, its views and
    event names (for the specials)."""
    sign = pl.col("sign").cast(pl.Int64)
    views = (
        sessions.filter(pl.col("sign") != 0)
        .group_by(_KEYS)
        .agg(session_views=(pl.col("page_views").cast(pl.Int64) * sign).sum())
    )
    pairs = events.select("event_name", *_KEYS).unique()
    local = (
        pairs.join(special_keys, on=_KEYS, how="anti")
        .join(views, on=_KEYS, how="inner")
        .group_by("event_name")
        .agg(pl.col("session_views").sum())
    )
    names = (
        events.group_by("event_name")
        .agg(
            count=pl.len().cast(pl.Int64),
            duration_sum=pl.col("duration_seconds").cast(pl.Int64).sum(),
            duration_n=pl.col("duration_seconds").count().cast(pl.Int64),
            meta_keys=META_KEYS.unique().sort(),
            positions=pl.col("position").unique().sort(),
        )
        .join(local, on="event_name", how="left", nulls_equal=True)
        .sort("event_name", nulls_last=False)
        .with_columns(
            pl.col("session_views").fill_null(0),
            visitors=pl.col("positions").list.len(),
            kind=pl.lit(EVENTS, pl.UInt8),
        )
        .rename({"event_name": "name"})
    )
    session_names = (
        pairs.group_by(_KEYS)
        .agg(event_names=pl.col("event_name").sort())
        .join(views, on=_KEYS, how="full", coalesce=True)
    )
    return names, session_names


def _deltas(flat: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Positions (ascending within each list of `lens`) as deltas, each list's first as is."""
    deltas = np.diff(flat, prepend=0)
    starts = (np.cumsum(lens) - lens)[lens > 0]
    deltas[starts] = flat[starts]
    return deltas.astype(np.uint32)


def rows_beside(sessions_dir: Path, table: str, columns: list[str], day: date) -> pl.DataFrame:
    """The rows of `day` in the `table` directory beside a sessions day directory (its
    compacted part, or the segments compaction will merge into it)."""
    other = sessions_dir.parent.parent.parent / table / sessions_dir.parent.name / sessions_dir.name
    empty = pl.DataFrame(schema={c: TABLES[table][c] for c in columns})
    if not other.is_dir():
        return empty
    arrow, parquet = visible_files(os.listdir(other), Manifest.read(other))
    frames = [pl.scan_parquet(other / n) for n in parquet]
    frames += [pl.scan_ipc(other / n) for n in arrow]
    if not frames:
        return empty
    lo, hi = layout.day_span_ms(day)
    t = pl.col("time").dt.epoch("ms")
    rows = pl.concat([f.select(columns) for f in frames], how="vertical_relaxed")
    return rows.filter((t >= lo) & (t < hi)).collect()


def inputs(sessions_dir: Path) -> dict[str, str]:
    """What the time rollup of a sessions day directory read besides its own rows: the visible
    files of the same day's page_views and events directories (files are never rewritten in
    place, so their names say whether those rows changed since)."""
    out = {}
    for table in ("page_views", "events"):
        other = (
            sessions_dir.parent.parent.parent / table / sessions_dir.parent.name / sessions_dir.name
        )
        names: list[str] = []
        if other.is_dir():
            arrow, parquet = visible_files(os.listdir(other), Manifest.read(other))
            names = sorted(arrow + parquet)
        out[f"time_{table}"] = ",".join(names)
    return out


def current(sessions_dir: Path, entry: dict[str, Any]) -> bool:
    """Whether a sessions rollup entry's time rollup was built from the page views and events
    there are now (a day's page views compacted or imported after its sessions were rolled up
    make it stale until compaction rolls the day up again)."""
    return all(entry.get(k) == v for k, v in inputs(sessions_dir).items())


def build(
    sessions: pl.DataFrame, ids: np.ndarray, day_dir: Path, day: date, part: str
) -> dict[str, Any]:
    """Write the time rollup of `part` (sessions: the day's final session rows with COLUMNS,
    only those of the day; the page views and events are read beside them); the fields it
    adds to the sessions rollup's manifest entry."""
    read_from = inputs(day_dir)  # before the rows: a change meanwhile makes the rollup stale
    views = rows_beside(day_dir, "page_views", VIEW_COLUMNS, day)
    events = rows_beside(day_dir, "events", EVENT_COLUMNS, day)
    described = describe(sessions, views, events, ids, day)
    if isinstance(described, str):
        log.warning("time rollup not written for %s: %s", day_dir, described)
        return {"time_unusable": described}
    name = layout.rollup_name(part).removesuffix(".u64") + "-time.parquet"
    visitors_name = name.replace(".parquet", "-visitors.parquet")
    _write(described.table, day_dir / name)
    deltas = pl.DataFrame({"deltas": pl.Series(described.deltas, dtype=pl.UInt32)})
    _write(deltas, day_dir / visitors_name)
    return {"time_file": name, "time_visitors_file": visitors_name, **read_from}


def read(directory: str, entry: dict[str, Any], day: date, ids: np.ndarray) -> DayTime | None:
    """The DayTime a sessions rollup entry names, or None."""
    if not entry.get("time_file"):
        return None
    table = pl.read_parquet(f"{directory}/{entry['time_file']}")
    deltas = pl.read_parquet(f"{directory}/{entry['time_visitors_file']}")["deltas"].to_numpy()
    return DayTime(day, ids, table, deltas)


def _write(df: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(layout.temp_name(path.name))
    df.write_parquet(tmp, compression="zstd", compression_level=3, statistics=False)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.replace(path)

"""Lazy scans over the segment files of one site: partition pruning by directory, then predicates."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from trail.storage import tombstones
from trail.storage.daydir import list_day
from trail.storage.schema import TABLES

# Site ids are UUIDs; anything that could escape the segments directory is refused outright.
_SAFE_SITE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def utc_days(start: datetime, end: datetime) -> list[date]:
    """The UTC dates whose day directories may hold rows with start <= time < end."""
    if end <= start:
        return []
    first = start.date()
    last = (end - timedelta(milliseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def segment_files(
    data_dir: Path, table: str, site_id: str, days: list[date]
) -> tuple[list[str], list[str]]:
    """The existing (arrow, parquet) files of one site's table for the given UTC days."""
    if not _SAFE_SITE.match(site_id):
        return [], []
    site_dir = Path(data_dir) / "segments" / table / f"site={site_id}"
    arrow: list[str] = []
    parquet: list[str] = []
    if not site_dir.is_dir():
        return arrow, parquet
    for day in days:
        # Temp files being written are not named *.arrow, so a half-written segment is never read;
        # files a compacted parquet replaced are skipped (see trail.storage.daydir).
        a, p = list_day(site_dir / f"day={day.isoformat()}")
        arrow.extend(a)
        parquet.extend(p)
    return arrow, parquet


def _columns(frame: pl.LazyFrame, read: list[str], schema: dict[str, Any]) -> pl.LazyFrame:
    """Select `read`; a column added to the schema after these files were written (e.g.
    screen_width) reads as its zero value instead of failing the whole query."""
    have = set(frame.collect_schema().names())
    if all(c in have for c in read):
        return frame.select(read)
    return frame.select([pl.col(c) if c in have else _zero(schema[c]).alias(c) for c in read])


def _zero(dtype: Any) -> pl.Expr:
    if dtype == pl.Boolean():
        return pl.lit(False)
    if dtype.is_numeric():
        return pl.lit(0, dtype=dtype)
    if dtype == pl.String():
        return pl.lit("")
    return pl.lit(None, dtype=dtype)


def scan(
    data_dir: Path,
    table: str,
    site_id: str,
    start: datetime,
    end: datetime,
    columns: list[str] | None = None,
) -> pl.LazyFrame:
    """Rows of `table` for one site with start <= time < end (UTC-aware datetimes).

    Only `columns` (default: all) are read; `time` is always available for the window predicate
    but is only kept when asked for. An empty frame with the schema when no file exists.

    A day directory holds the rows of one UTC day, so days wholly inside the window need no
    time predicate: only the first and last day of a window that does not start or end on a
    UTC midnight are filtered by time (decoding and testing `time` was ~40 % of a 30-day scan).
    """
    schema = TABLES[table]
    wanted = list(schema) if columns is None else list(dict.fromkeys(columns))
    window = (pl.col("time") >= _lit_time(start)) & (pl.col("time") < _lit_time(end))
    stones = tombstones.relevant(tombstones.load(data_dir, site_id), table, _ms(start), _ms(end))
    keep = tombstones.keep_expr(stones)
    parts: list[pl.LazyFrame] = []
    for days, predicate in _day_groups(start, end, window):
        if keep is not None:
            predicate = keep if predicate is None else predicate & keep
        read = wanted if predicate is None or "time" in wanted else [*wanted, "time"]
        arrow, parquet = segment_files(data_dir, table, site_id, days)
        files: list[pl.LazyFrame] = []
        if arrow:
            files.append(_columns(pl.scan_ipc(arrow), read, schema))
        if parquet:
            files.append(_columns(pl.scan_parquet(parquet), read, schema))
        for frame in files:
            parts.append((frame if predicate is None else frame.filter(predicate)).select(wanted))
    if not parts:
        return pl.LazyFrame(schema={c: schema[c] for c in wanted})
    frame = parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical_relaxed")
    return frame.cast({c: schema[c] for c in wanted})


def _day_groups(
    start: datetime, end: datetime, window: pl.Expr
) -> list[tuple[list[date], pl.Expr | None]]:
    """The window's UTC days in order, grouped by whether they need the time predicate."""
    groups: list[tuple[list[date], pl.Expr | None]] = []
    for day in utc_days(start, end):
        lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
        inside = start <= lo and lo + timedelta(days=1) <= end
        predicate = None if inside else window
        if groups and (groups[-1][1] is None) == (predicate is None):
            groups[-1][0].append(day)
        else:
            groups.append(([day], predicate))
    return groups


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _lit_time(value: datetime) -> pl.Expr:
    return pl.lit(value).cast(pl.Datetime("ms", "UTC"))

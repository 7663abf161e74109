"""Time buckets (day/week/month/year) in the filter's time zone.

Rows are assigned to buckets by a binary search of their UTC time in the buckets' UTC start
instants: much cheaper than converting every row's time to the local zone.

A series report answers one value per bucket, empty ones included, so its size follows the
window, not the data: it holds at most MAX_BUCKETS buckets (ten years of days), and a longer
series is refused naming the parameter that starts the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import polars as pl

from trail.stats.filters import FilterError

MAX_BUCKETS = 3660


def bucket_start(day: date, scale: str) -> date:
    """The local date starting the bucket that contains `day` (weeks start on Monday)."""
    if scale == "week":
        return day - timedelta(days=day.weekday())
    if scale == "month":
        return day.replace(day=1)
    if scale == "year":
        return day.replace(month=1, day=1)
    return day


def bucket_starts(first: date, last: date, scale: str) -> list[date]:
    """Every bucket start from the bucket of `first` to the bucket of `last`, in order."""
    out = []
    current = bucket_start(first, scale)
    while current <= last:
        out.append(current)
        current = _next(current, scale)
    return out


def bucket_count(first: date, last: date, scale: str) -> int:
    """len(bucket_starts(first, last, scale)), without building them."""
    if last < first:
        return 0
    a, b = bucket_start(first, scale), bucket_start(last, scale)
    if scale == "week":
        return (b - a).days // 7 + 1
    if scale == "month":
        return (b.year - a.year) * 12 + b.month - a.month + 1
    if scale == "year":
        return b.year - a.year + 1
    return (b - a).days + 1


def series_starts(first: date, last: date, scale: str, field: str = "from") -> list[date]:
    """The bucket starts of a series report; FilterError naming `field` beyond MAX_BUCKETS."""
    n = bucket_count(first, last, scale)
    if n > MAX_BUCKETS:
        raise FilterError(
            field,
            f"a series has at most {MAX_BUCKETS} buckets and {first.isoformat()} to "
            f"{last.isoformat()} makes {n} {scale}s: choose a later {field}",
        )
    return bucket_starts(first, last, scale)


def _next(day: date, scale: str) -> date:
    if scale == "week":
        return day + timedelta(days=7)
    if scale == "month":
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    if scale == "year":
        return date(day.year + 1, 1, 1)
    return day + timedelta(days=1)


def bucket_breaks(starts: list[date], tz: ZoneInfo) -> list[int]:
    """The instant (ms) each bucket of `starts` begins: local midnight in `tz`."""
    return [
        int(datetime.combine(d, time(0), tz).astimezone(UTC).timestamp() * 1000) for d in starts
    ]


def bucket_index(starts: list[date], tz: ZoneInfo, column: str = "time") -> pl.Expr:
    """Expression `bucket`: the index in `starts` of the bucket holding each row's time (-1
    before the first; the last holds every later time)."""
    breaks = bucket_breaks(starts, tz)
    ms = pl.col(column).cast(pl.Int64)
    steps = {b - a for a, b in pairwise(breaks)}
    if breaks and len(steps) <= 1:
        # buckets of one length (days of a zone that keeps its offset over the window):
        # arithmetic, several times cheaper than a binary search per row
        step = steps.pop() if steps else 1
        return ((ms - breaks[0]) // step).clip(-1, len(breaks) - 1).alias("bucket")
    pos = pl.lit(pl.Series("breaks", breaks, dtype=pl.Int64)).search_sorted(ms, side="right")
    return (pos.cast(pl.Int64) - 1).alias("bucket")


def bucket_label(day: date) -> str:
    """How Pirsch prints a bucket: the local date at midnight with a Z suffix."""
    return f"{day.isoformat()}T00:00:00Z"


def hour_of_day(tz: ZoneInfo, column: str = "time") -> pl.Expr:
    """Local hour 0..23 of each row."""
    return pl.col(column).dt.convert_time_zone(tz.key).dt.hour().cast(pl.Int64)


def fixed_offset_ms(tz: ZoneInfo, start: datetime, end: datetime) -> int | None:
    """The zone's UTC offset in ms when it is the same all over [start, end], checked
    once a day (no zone changes its offset for less than a day), else None. Local times are
    then plain arithmetic on the epoch, much cheaper than a per-row zone conversion."""
    offsets = set()
    at = start
    while at < end + timedelta(days=1):
        offsets.add(min(at, end).astimezone(tz).utcoffset())
        if len(offsets) > 1:
            return None
        at += timedelta(days=1)
    offset = next(iter(offsets))
    return None if offset is None else int(offset.total_seconds() * 1000)


@dataclass(frozen=True)
class TimePart:
    """A local time part as arithmetic on the epoch (zones that keep one offset over the
    window): ((ms + shift) // unit + add) % modulus, rounding down; e.g. the hour of the day
    with `shift` the zone's offset, or the hour of the week (1970-01-01 was a Thursday)."""

    name: str
    shift: int
    unit: int
    add: int
    modulus: int

    def expr(self, column: str = "time") -> pl.Expr:
        ms = pl.col(column).cast(pl.Int64)
        return (((ms + self.shift) // self.unit + self.add) % self.modulus).alias(self.name)

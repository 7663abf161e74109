"""trail.stats.buckets.bucket_index against its definition (the last bucket start at or before
each time, by a binary search), for days, weeks, months and years in zones that keep or change
their offset, and times before, inside and after the buckets (damaged rows: year 1 and 9999)."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from trail.stats.buckets import bucket_breaks, bucket_index, series_starts

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


@settings(max_examples=200, deadline=None)
@given(
    first=st.dates(date(2023, 1, 1), date(2025, 12, 31)),
    days=st.integers(0, 400),
    scale=st.sampled_from(["day", "week", "month", "year"]),
    zone=st.sampled_from(ZONES),
    offsets=st.lists(st.integers(-3 * 86_400_000, 420 * 86_400_000), max_size=40),
)
def test_bucket_index_is_the_last_start_at_or_before(
    first: date, days: int, scale: str, zone: str, offsets: list[int]
) -> None:
    tz = ZoneInfo(zone)
    starts = series_starts(first, first + timedelta(days=days), scale)
    breaks = bucket_breaks(starts, tz)
    base = breaks[0]
    times = [base + o for o in offsets] + [b + d for b in breaks for d in (-1, 0, 1)]
    times += [
        int(datetime(1, 1, 2, tzinfo=UTC).timestamp() * 1000),
        int(datetime(9999, 1, 1, tzinfo=UTC).timestamp() * 1000),
    ]
    got = (
        pl.DataFrame({"time": pl.Series(times, dtype=pl.Int64)})
        .with_columns(pl.col("time").cast(pl.Datetime("ms", "UTC")))
        .select(bucket_index(starts, tz))["bucket"]
        .to_list()
    )
    assert got == [bisect_right(breaks, t) - 1 for t in times]

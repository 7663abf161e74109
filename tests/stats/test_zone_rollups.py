"""Windows of whole days in a zone that is not UTC give exactly the rows' answers.

Such a window starts and ends inside UTC days: the reports combine the whole UTC days' rollups
with the slices of the UTC days at its ends, described from their rows (trail.storage.rollups
window_parts; trail.stats.rollup_totals, rollup_dims, rollup_events). Each window is compared
with TRAIL_ROLLUPS off (rollups.ENABLED) in Berlin (+01:00), New York across its change to
summer time (2024-03-10: hours and weekdays take each hour's offset, trail.stats.rollup_time),
Kolkata (+05:30), with the live day open, and with deletions before
and after compaction. Visitors come back on other days (ids drawn from a small pool), so the
slices share visitors with the whole days.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest
from segment_rows import rounded

from bench.stats_gen import FIRST_DAY, SITE, Generator, write_day
from trail.config import Config
from trail.services import statistics as pirsch_stats
from trail.stats import cache, rollup_dims, rollup_events, rollup_time, rollup_totals
from trail.stats.buckets import TimePart
from trail.stats.filters import parse_filter
from trail.stats.sources import rows_for
from trail.storage import rollups, tombstones
from trail.tasks import compaction

DAYS = 13  # 03-01 .. 03-13; the last one stays live (its segments as written)
REPORTS = ["total", "visitor", "growth", "duration/session", "events", "hours", "weekdays",
           "country", "city", "referrer", "channel", "utm/source", "platform", "browser", "os",
           "language", "screen", "page/entry", "page/exit"]  # fmt: skip
WINDOWS = [
    ("Europe/Berlin", "2024-03-02", "2024-03-06"),
    ("America/New_York", "2024-03-08", "2024-03-11"),  # 03-10: -05:00 -> -04:00
    ("Asia/Kolkata", "2024-03-03", "2024-03-09"),
    ("Asia/Kolkata", "2024-03-10", "2024-03-13"),  # ends in the live day
    ("Europe/Berlin", "2024-03-12", "2024-03-13"),  # the live day's slice and a compacted one
]


pytestmark = pytest.mark.usefixtures("rollups_on")  # (tests/stats/conftest.py)


def closed_after(days: int) -> float:
    """A time at which the first `days` days count as closed for compaction."""
    return datetime.combine(
        FIRST_DAY + timedelta(days=days + 1), datetime.min.time(), UTC
    ).timestamp()


def site_with(tmp: Path, compacted: int = DAYS - 1) -> Path:
    """DAYS generated days whose visitors come back, the first `compacted` compacted."""
    g = Generator(page_views=1_500 * DAYS, days=DAYS, seed=5, paths=30)
    frames = [{t: _returning(df) for t, df in g.day(i).items()} for i in range(DAYS)]
    for i in range(compacted):
        write_day(tmp, i, frames[i])
    compaction.run_round(tmp, now=closed_after(compacted), grace=0)
    for i in range(compacted, DAYS):
        write_day(tmp, i, frames[i])
    return tmp


def _returning(df: pl.DataFrame) -> pl.DataFrame:
    """The rows with visitor ids from a pool of 400, the same every day."""
    dtype = df.schema["visitor_id"]
    return df.with_columns((pl.col("visitor_id") % 400 + 1).cast(dtype))


def answers(data_dir: Path, tz: str, first: str, last: str, scale: str) -> dict:
    ctx = SimpleNamespace(data_dir=data_dir, config=Config())
    site = SimpleNamespace(id=SITE, timezone=tz, group_by_title=False)
    params = {"id": [SITE], "from": [first], "to": [last], "scale": [scale], "limit": ["100"]}
    return {name: pirsch_stats.run(ctx, name, params, site) for name in REPORTS}


def assert_same_as_rows(data_dir: Path, mp: pytest.MonkeyPatch) -> None:
    mp.setattr(cache, "CLOSED_AFTER", float("inf"))
    for i, (tz, first, last) in enumerate(WINDOWS):
        for scale in ("day", "week") if i == 0 else ("day",):
            got = answers(data_dir, tz, first, last, scale)
            with mp.context() as off:
                off.setattr(rollups, "ENABLED", False)
                want = answers(data_dir, tz, first, last, scale)
            for name, value in want.items():
                assert rounded(got[name]) == rounded(value), (tz, first, last, scale, name)
            assert want["total"]["visitors"] > 0 and want["country"]


def rows_of(data_dir: Path, tz: str, first: str, last: str, **extra: str) -> Any:
    params = {"id": [SITE], "from": [first], "to": [last], "tz": [tz]}
    params.update({k: [v] for k, v in extra.items()})
    return rows_for(data_dir, parse_filter(params))


def test_window_parts_slice_the_ends(tmp_path: Path) -> None:
    data_dir = site_with(tmp_path)
    rows = rows_of(data_dir, "Asia/Kolkata", "2024-03-03", "2024-03-05")
    parts = rollups.window_parts(data_dir, "sessions", SITE, rows.start, rows.end)
    assert parts is not None
    # 03-03 00:00 in Kolkata is 03-02 18:30 UTC; 03-06 00:00 is 03-05 18:30 UTC
    assert [(p.day.day, p.start.hour, p.start.minute, p.end.hour, p.end.minute, p.whole)
            for p in parts] == [(2, 18, 30, 0, 0, False), (3, 0, 0, 0, 0, True),
                                (4, 0, 0, 0, 0, True), (5, 0, 0, 18, 30, False)]  # fmt: skip
    assert [p.rollup is not None for p in parts] == [False, True, True, False]
    # whole UTC days: what days_or_gaps lists, with the same rollups
    utc = rows_of(data_dir, "UTC", "2024-03-03", "2024-03-05")
    whole = rollups.window_parts(data_dir, "sessions", SITE, utc.start, utc.end)
    listed = rollups.days_or_gaps(data_dir, "sessions", SITE, utc.start, utc.end)
    assert whole is not None and listed is not None
    assert [(p.day, p.rollup) for p in whole] == listed and all(p.whole for p in whole)
    # days_or_gaps itself keeps answering None for such a window
    assert rollups.days_or_gaps(data_dir, "sessions", SITE, rows.start, rows.end) is None


def test_zone_windows_use_rollups_and_match_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = site_with(tmp_path)
    for tz, first, last in WINDOWS:
        rows = rows_of(data_dir, tz, first, last)
        assert rollup_totals.session_totals(rows) is not None, tz
        assert rollup_dims.grouped(rows, ["country_code"]) is not None, tz
        assert rollup_dims.platform_visitors(rows) is not None, tz
        assert rollup_events.event_stats(rows) is not None, tz
    # hours and weekdays across a change of offset by an hour: each hour takes its own offset
    week = TimePart("slot", 0, 3_600_000, 72, 168)
    hours = TimePart("hour", 0, 3_600_000, 0, 24)
    ny = rows_of(data_dir, "America/New_York", "2024-03-08", "2024-03-11")
    assert rollup_time.time_counts(ny, week, ny.f.tz) is not None
    h0, h1 = (int(t.timestamp()) // 3600 for t in (ny.start, ny.end))
    offsets = rollup_time.hour_offsets(ny.f.tz, week, h0, h1)
    assert offsets is not None and sorted(set(offsets)) == [-5, -4]
    # 19:00 at 00 and 23 UTC on 03-10: a view in the last hour makes the session a special
    assert rollup_time.time_counts(ny, hours, ny.f.tz) is not None
    # not when two other hours of a UTC day are one slot: 01:00 twice on 11-03
    fall = rows_of(data_dir, "America/New_York", "2024-11-02", "2024-11-04")
    h0, h1 = (int(t.timestamp()) // 3600 for t in (fall.start, fall.end))
    assert rollup_time.hour_offsets(ny.f.tz, week, h0, h1) is None
    assert rollup_time.hour_offsets(ny.f.tz, hours, h0, h1) is None
    kolkata = rows_of(data_dir, "Asia/Kolkata", "2024-03-03", "2024-03-09")
    assert rollup_time.time_counts(kolkata, week, kolkata.f.tz) is None  # +05:30
    berlin = rows_of(data_dir, "Europe/Berlin", "2024-03-02", "2024-03-12")
    week_starts = [FIRST_DAY + timedelta(days=d) for d in (1, 8)]
    assert rollup_totals.bucket_totals(berlin, week_starts, berlin.f.tz) is not None
    # a local day holds no whole UTC day: the rows answer the daily series
    day_starts = [FIRST_DAY + timedelta(days=d) for d in range(1, 12)]
    assert rollup_totals.bucket_totals(berlin, day_starts, berlin.f.tz) is None
    assert rollup_totals.session_totals(rows_of(data_dir, "Europe/Berlin", "2024-03-02",
                                                "2024-03-06", country="de")) is None  # fmt: skip
    assert_same_as_rows(data_dir, monkeypatch)


def test_zone_windows_with_fresh_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = site_with(tmp_path, compacted=8)  # 03-09 .. 03-13 not compacted
    # the slices at the ends do not count against MAX_OPEN_DAYS; the whole days do
    rows = rows_of(data_dir, "Europe/Berlin", "2024-03-07", "2024-03-11")
    parts = rollups.window_parts(data_dir, "sessions", SITE, rows.start, rows.end)
    # 03-06 (a slice), 03-07, 03-08, 03-09 and 03-10 (from rows), 03-11 (a slice)
    assert parts is not None and [p.rollup is None for p in parts] == [
        True, False, False, True, True, True,
    ]  # fmt: skip
    wider = rows_of(data_dir, "Europe/Berlin", "2024-03-07", "2024-03-12")
    assert rollups.window_parts(data_dir, "sessions", SITE, wider.start, wider.end) is None
    assert_same_as_rows(data_dir, monkeypatch)


def test_deletions_before_and_after_compaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = site_with(tmp_path)
    hour = 3_600_000
    for day, hours in ((3, (2, 9)), (5, (20, 23)), (9, (0, 30))):  # a whole day, end slices
        start = datetime.combine(FIRST_DAY + timedelta(days=day), datetime.min.time(), UTC)
        ms = int(start.timestamp() * 1000)
        tombstones.add(data_dir, SITE, tombstones.ALL_TABLES, ms + hours[0] * hour,
                       ms + hours[1] * hour)  # fmt: skip
    rows = rows_of(data_dir, "Europe/Berlin", "2024-03-02", "2024-03-06")
    parts = rollups.window_parts(data_dir, "sessions", SITE, rows.start, rows.end)
    assert parts is not None and [p.rollup is None for p in parts] == [
        True, False, False, True, False, True,
    ]  # fmt: skip
    assert_same_as_rows(data_dir, monkeypatch)
    compaction.run_round(data_dir, now=closed_after(DAYS - 1) + 10, grace=0)
    parts = rollups.window_parts(data_dir, "sessions", SITE, rows.start, rows.end)
    assert parts is not None and [p.rollup is None for p in parts] == [
        True, False, False, False, False, True,
    ]  # fmt: skip
    assert_same_as_rows(data_dir, monkeypatch)

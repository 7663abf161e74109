"""hours, weekdays (trail.stats.rollup_time) and events (trail.stats.rollup_events) from the
time rollups give exactly the rows' answers.

Sessions cross midnight (and some run for more than a day, so they view a page in the same
hour on two days), reload a page (a bounce with several views), and windows start on either
day, in UTC and in zones whose offset is whole hours, also across a change of it (the rollups
answer), or not (the rows answer), over compacted days, days read from rows and a mix of both.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segment_rows import SITE, SiteData

from trail.stats import breakdowns, events, index_files, rollup_events, rollup_time
from trail.stats.buckets import TimePart, fixed_offset_ms
from trail.stats.filters import parse_filter
from trail.stats.sources import rows_for
from trail.storage import memory, rollups, time_rollups, tombstones
from trail.storage.daydir import Manifest
from trail.tasks import compaction

NOW = datetime(2024, 3, 20, tzinfo=UTC)
AFTER = datetime(2024, 3, 15, tzinfo=UTC).timestamp()
BASE = datetime(2024, 3, 10, 20, 0, tzinfo=UTC)
PATHS = ["/", "/", "/a"]  # "/" twice: reloads are common
# (from, to, tz): Berlin and Honolulu keep one whole-hour offset and New York changes it by an
# hour on 2024-03-10 (each hour with its own offset), so the rollups answer hours and weekdays;
# Kolkata's offset is not whole hours: the rows answer them. Events come from the rollups in every zone (the slices of the UTC
# days at the window's ends from rows).
WINDOWS = [
    ("2024-03-10", "2024-03-12", "UTC"),
    ("2024-03-11", "2024-03-12", "UTC"),
    ("2024-03-10", "2024-03-10", "UTC"),
    ("2024-03-11", "2024-03-11", "Europe/Berlin"),
    ("2024-03-10", "2024-03-12", "Pacific/Honolulu"),
    ("2024-03-10", "2024-03-11", "America/New_York"),
    ("2024-03-11", "2024-03-11", "Asia/Kolkata"),
]
ROLLED = {"UTC", "Europe/Berlin", "Pacific/Honolulu", "America/New_York"}
SEARCH = {"search": "p", "sort": "count", "direction": "asc", "limit": "2", "offset": "1"}

# Gaps within the session timeout, as the state machine writes them; a marathon (a hit every
# 28 minutes for a day) views pages in the same hours on two days.
MARATHON = [(1700, PATHS[i % 3]) for i in range(52)]
visit = st.tuples(
    st.integers(1, 4),  # visitor
    st.one_of(
        st.lists(
            st.tuples(st.sampled_from([0, 60, 600, 1700]), st.sampled_from(PATHS)),
            min_size=1,
            max_size=6,
        ),
        st.just(MARATHON),
    ),
    st.integers(0, 60),  # start, in 5-minute steps from 20:00 on the first day
    st.dictionaries(st.integers(0, 60), st.sampled_from(["signup", "play", "buy"]), max_size=3),
)
META = {"signup": {"plan": "pro"}, "play": {}, "buy": {"sku": "1", "plan": "x"}}


@contextmanager
def site(visits: list, *, compact: bool = True) -> Iterator[Path]:
    data = SiteData(Path(tempfile.mkdtemp(prefix="trail-time-")))
    mp = pytest.MonkeyPatch()
    mp.setattr(rollups, "ENABLED", True)  # compared with off below, whatever TRAIL_ROLLUPS says
    try:
        for session_id, (visitor_id, hits, start, *fired) in enumerate(visits, start=1):
            t = BASE + timedelta(minutes=5 * start)
            times = []
            for gap, path in hits:
                t += timedelta(seconds=gap)
                times.append((t.strftime("%Y-%m-%d %H:%M:%S"), path))
            events = {i: (name, META[name]) for i, name in (fired[0] if fired else {}).items()}
            data.visit(visitor_id, session_id, times, events=events)
        for i, row in enumerate(data.rows["events"]):
            row["duration_seconds"] = i * 37 % 101
        for day in (10, 11, 12):  # every day of the windows has rows
            data.visit(9, 100 + day, [(f"2024-03-{day} 12:00:00", "/b")])
        data.write()
        if compact:
            compaction.run_round(data.data_dir, now=AFTER, grace=0)
        yield data.data_dir
    finally:
        mp.undo()
        shutil.rmtree(data.data_dir, ignore_errors=True)


REPORTS = {"hours": breakdowns.hours, "weekdays": breakdowns.weekdays, "events": events.events}


def report(data_dir: Path, name: str, frm: str, to: str, tz: str, **extra: str) -> list[dict]:
    params = {"id": [SITE], "from": [frm], "to": [to], "tz": [tz]}
    f = parse_filter(params | {k: [v] for k, v in extra.items()}, now=NOW)
    return REPORTS[name](data_dir, f)


def rolled(data_dir: Path, frm: str, to: str, tz: str) -> bool:
    f = parse_filter({"id": [SITE], "from": [frm], "to": [to], "tz": [tz]}, now=NOW)
    shift = fixed_offset_ms(f.tz, *f.window())
    part = TimePart("slot", shift or 0, time_rollups.HOUR_MS, 72, 168)
    zone = f.tz if shift is None else None  # the offset hour by hour
    return rollup_time.time_counts(rows_for(data_dir, f), part, zone) is not None


def assert_same_as_rows(
    data_dir: Path, mp: pytest.MonkeyPatch, *, fresh: bool = False, check_used: bool = True
) -> None:
    """hours and weekdays equal with rollups on and off, for every window; the rollups answer
    where the zone allows (and, for fresh days, at most rollups.MAX_OPEN_DAYS of them)."""
    for window in WINDOWS:
        days = (date.fromisoformat(window[1]) - date.fromisoformat(window[0])).days + 1
        touched = days + (window[2] != "UTC")  # the UTC days of its hours, all read whole
        expected = window[2] in ROLLED and not (fresh and touched > rollups.MAX_OPEN_DAYS)
        assert not check_used or rolled(data_dir, *window) == expected, window
        f = parse_filter({"id": [SITE], "from": [window[0]], "to": [window[1]], "tz": [window[2]]})
        used = rollup_events.event_stats(rows_for(data_dir, f)) is not None
        whole = days if window[2] == "UTC" else days - 1  # whole UTC days: the others are slices
        assert not check_used or used == (not fresh or whole <= rollups.MAX_OPEN_DAYS), window
        for name, extra in [*((n, {}) for n in REPORTS), ("events", SEARCH)]:
            got = report(data_dir, name, *window, **extra)
            with mp.context() as off:
                off.setattr(rollups, "ENABLED", False)
                want = report(data_dir, name, *window, **extra)
            assert got == want, (name, window)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(visit, min_size=1, max_size=8))
def test_compacted_days_equal_rows(visits: list) -> None:
    with site(visits) as data_dir, pytest.MonkeyPatch.context() as mp:
        assert_same_as_rows(data_dir, mp)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(visit, min_size=1, max_size=8))
def test_days_from_rows_equal_rows(visits: list) -> None:
    with site(visits, compact=False) as data_dir, pytest.MonkeyPatch.context() as mp:
        assert_same_as_rows(data_dir, mp, fresh=True)


def test_the_rollups_answer_where_they_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    # a session from 23:50 to 00:10 (a reload across midnight) and one a day long
    visits = [
        (1, [(13_800, "/"), (1200, "/")], 0),
        (2, MARATHON, 0),
        (3, [(7200, "/")], 1),
    ]
    with site(visits) as data_dir:
        assert_same_as_rows(data_dir, monkeypatch)
        hours = report(data_dir, "hours", "2024-03-10", "2024-03-12", "UTC")
        assert sum(h["views"] for h in hours) == 3 + len(MARATHON) + 3
        r = Manifest.read(_day_dir(data_dir, "2024-03-11")).rollup
        assert {r["time_file"], r["time_visitors_file"]} <= set(rollups.files_of(r))
        specials = pl.read_parquet(_day_dir(data_dir, "2024-03-11") / r["time_file"]).filter(
            pl.col("kind") == time_rollups.SPECIALS
        )
        assert set(specials["session_id"]) >= {1, 2}  # carried over midnight


def test_a_carried_session_missing_from_the_day_before_makes_rows_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # hits a day and a half apart: carried into 03-12 without rows on 03-11
    visits = [(1, [(0, "/"), (30 * 3600, "/a"), (60, "/a")], 0), (2, [(3600, "/")], 40)]
    with site(visits) as data_dir:
        assert not rolled(data_dir, "2024-03-10", "2024-03-12", "UTC")
        assert rolled(data_dir, "2024-03-12", "2024-03-12", "UTC")
        assert_same_as_rows(data_dir, monkeypatch, check_used=False)


def test_a_deletion_makes_rows_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    with site([(1, [(0, "/"), (60, "/a")], 0), (2, [(0, "/")], 30)]) as data_dir:
        assert rolled(data_dir, "2024-03-10", "2024-03-11", "UTC")
        ms = int(datetime(2024, 3, 10, 20, tzinfo=UTC).timestamp() * 1000)
        tombstones.add(data_dir, SITE, tombstones.ALL_TABLES, ms, ms + 60_000)
        assert not rolled(data_dir, "2024-03-10", "2024-03-11", "UTC")
        assert_same_as_rows(data_dir, monkeypatch, check_used=False)


def test_a_live_day_beside_compacted_days(monkeypatch: pytest.MonkeyPatch) -> None:
    visits = [(1, [(0, "/"), (1500, "/"), (1500, "/a")], 45), (2, [(0, "/")], 10)]
    with site(visits) as data_dir:
        live = SiteData(data_dir)
        live.visit(3, 77, [("2024-03-12 10:00:00", "/"), ("2024-03-12 10:10:00", "/")])
        live.visit(1, 78, [("2024-03-12 23:30:00", "/a")])
        live.write()
        assert rolled(data_dir, "2024-03-10", "2024-03-12", "UTC")
        assert_same_as_rows(data_dir, monkeypatch)


def _day_dir(data_dir: Path, day: str, table: str = "sessions") -> Path:
    return data_dir / "segments" / table / f"site={SITE}" / f"day={day}"


def test_a_remembered_answer_reads_no_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer for a window is found by the days' file identities alone: the days' tables
    are not read again while it is remembered (in the process, or for the machine in
    trail.stats.index_files), and are once it is gone."""
    visits = [(1, [(0, "/"), (1500, "/a")], 10), (2, [(0, "/")], 40)]
    with site(visits) as data_dir:
        window = ("2024-03-10", "2024-03-12", "UTC")
        reads = []
        real = time_rollups.read
        monkeypatch.setattr(time_rollups, "read", lambda *a: reads.append(a[2]) or real(*a))
        first = {n: report(data_dir, n, *window) for n in REPORTS}
        assert reads  # the days were read for the first answers
        memory.KEPT.drop("time")  # the days' tables gone, the answers kept
        reads.clear()
        assert {n: report(data_dir, n, *window) for n in REPORTS} == first
        assert reads == []
        memory.KEPT.drop("time answer")  # as in another worker: the machine's copy answers
        assert {n: report(data_dir, n, *window) for n in REPORTS} == first
        assert reads == []
        memory.KEPT.drop("time answer")
        shutil.rmtree(data_dir / "segments" / index_files.DIRECTORY)
        assert {n: report(data_dir, n, *window) for n in REPORTS} == first
        assert sorted(set(reads)) == [date(2024, 3, d) for d in (10, 11, 12)]

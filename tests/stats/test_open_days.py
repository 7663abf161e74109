"""Windows that end on a day without a rollup (the live day) give exactly the rows' answers.

The page report, entry and exit pages, totals and breakdowns combine the closed days' rollups
with the open day read from its rows (trail.stats.rollup_pages, rollup_dims, rollup_totals),
and remember the open day's description while its files stay the same (trail.stats.open_days).
Random visits cross midnight into the open day, reload their page (bounces with several views)
and view the same page on both days; each window is compared with TRAIL_ROLLUPS off
(rollups.ENABLED), before and after more rows arrive on the open day and after it is compacted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segment_rows import SITE, SiteData, compacted, hit_times, rounded

from trail.config import Config
from trail.services import statistics as pirsch_stats
from trail.stats import cache, open_days, rollup_pages, rollup_totals
from trail.stats.filters import parse_filter
from trail.stats.sources import rows_for
from trail.storage import memory, rollups
from trail.tasks import compaction

BASE = datetime(2024, 3, 9, 23, 0, tzinfo=UTC)  # visits cross into 03-10 and 03-11
# Compaction closes 03-09 and 03-10; 03-11 stays live (its segments as written).
TWO_CLOSED = datetime(2024, 3, 11, 1, 0, tzinfo=UTC).timestamp()
ALL_CLOSED = datetime(2024, 3, 14, tzinfo=UTC).timestamp()
PATHS = ["/", "/a", "/b"]
WINDOWS = [("2024-03-09", "2024-03-11"), ("2024-03-10", "2024-03-11"), ("2024-03-11", "2024-03-11")]
REPORTS = ["page", "page/entry", "page/exit", "total", "visitor", "country", "referrer",
           "platform", "browser", "duration/session"]  # fmt: skip

visit = st.tuples(
    st.integers(1, 5),  # visitor
    st.lists(st.tuples(st.integers(0, 1700), st.sampled_from(PATHS)), min_size=1, max_size=5),
    st.integers(0, 1),  # the night it starts in: 03-09 -> 03-10 or 03-10 -> 03-11
    st.integers(0, 30),  # start, in 5-minute steps from 23:00
    st.sampled_from(["de", "fr"]),
)


def add(data: SiteData, visits: list, first_session: int = 1) -> None:
    for session_id, (visitor_id, hits, night, start, country) in enumerate(visits, first_session):
        times = hit_times(BASE + timedelta(days=night, minutes=5 * start), hits)
        data.visit(visitor_id, session_id, times, country_code=country,
                   referrer_name=f"ref-{visitor_id % 2}")  # fmt: skip


@contextmanager
def site(visits: list) -> Iterator[SiteData]:
    """The visits as segments, 03-09 and 03-10 compacted (with rollups), 03-11 live."""
    with compacted("trail-open-days-", TWO_CLOSED, lambda data: add(data, visits)) as data:
        yield data


def answers(data_dir: Path, frm: str, to: str) -> dict[str, Any]:
    ctx = SimpleNamespace(data_dir=data_dir, config=Config())
    site_ns = SimpleNamespace(id=SITE, timezone="UTC", group_by_title=False)
    params = {"id": [SITE], "from": [frm], "to": [to], "limit": ["100"]}
    return {name: pirsch_stats.run(ctx, name, params, site_ns) for name in REPORTS}


def assert_same_as_rows(data_dir: Path, mp: pytest.MonkeyPatch) -> None:
    for frm, to in WINDOWS:
        got = answers(data_dir, frm, to)
        with mp.context() as off:
            off.setattr(rollups, "ENABLED", False)
            want = answers(data_dir, frm, to)
        for name in REPORTS:
            assert rounded(got[name]) == rounded(want[name]), (name, frm, to)


def used(data_dir: Path, frm: str, to: str) -> bool:
    f = parse_filter({"id": [SITE], "from": [frm], "to": [to]})
    rows = rows_for(data_dir, f)
    return rollup_pages.page_stats(rows) is not None and rollup_totals.window_days(rows) is not None


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(visit, min_size=1, max_size=8), st.lists(visit, min_size=1, max_size=3))
def test_windows_with_a_live_day_equal_rows(visits: list, later: list) -> None:
    with pytest.MonkeyPatch.context() as mp, site(visits) as data:
        mp.setattr(cache, "CLOSED_AFTER", float("inf"))
        mp.setattr(rollups, "ENABLED", True)  # compared with off below, whatever TRAIL_ROLLUPS says
        if (data.data_dir / "segments" / "page_views" / f"site={SITE}" / "day=2024-03-11").is_dir():
            assert used(data.data_dir, *WINDOWS[0])  # the live day read from its rows
        assert_same_as_rows(data.data_dir, mp)
        # More rows arrive on the live day (and on the day before: cancelled states): the
        # remembered descriptions must not answer for the new files.
        add(data, later, first_session=100)
        data.write()
        assert_same_as_rows(data.data_dir, mp)
        compaction.run_round(data.data_dir, now=ALL_CLOSED, grace=0)
        assert_same_as_rows(data.data_dir, mp)


def test_a_live_day_is_described_once_per_set_of_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollups, "ENABLED", True)
    data = SiteData(tmp_path)
    add(data, [(1, [(3000, "/"), (1500, "/a")], 0, 0, "de"), (2, [(100, "/b")], 1, 20, "fr")])
    data.write()
    compaction.run_round(tmp_path, now=TWO_CLOSED, grace=0)
    open_days.clear()
    rows = rows_for(tmp_path, parse_filter({"id": [SITE], "from": ["2024-03-09"],
                                             "to": ["2024-03-11"]}))  # fmt: skip
    first = rollup_pages.page_stats(rows)
    assert first is not None and first is rollup_pages.page_stats(rows)  # remembered
    assert set(first["path"]) == {"/", "/a", "/b"}
    late = SiteData(tmp_path)
    late.files = 100
    late.visit(3, 99, [("2024-03-11 12:00:00", "/late")])
    late.write()
    again = rollup_pages.page_stats(rows)
    assert again is not None and set(again["path"]) == {"/", "/a", "/b", "/late"}


def test_reports_asking_at_once_share_one_description_even_if_it_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dashboard load asks ~20 reports over the same open day at once: one describes it, the
    others wait and take its description, although the memory budget keeps none."""
    monkeypatch.setattr(memory, "KEPT", memory.Kept(0))
    key = ("sums", "test", 1)
    made: list[object] = []

    def make() -> object:
        deadline = time.monotonic() + 10
        while open_days._making[key].users < 4 and time.monotonic() < deadline:
            time.sleep(0.005)  # until every caller is there
        made.append(object())
        return made[-1]

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: open_days.remembered(lambda: key, make), range(4)))
    assert len(made) == 1 and all(g is made[0] for g in got)
    assert key not in open_days._making and not memory.KEPT.entries
    assert open_days.remembered(lambda: key, make) is not made[0]  # not kept: made again

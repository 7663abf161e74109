"""The page reports of a site whose zone is not UTC give exactly the rows' answers.

A window of local days starts and ends inside UTC days: /statistics/page (with and without the
average time on page), page/entry and page/exit combine the whole UTC days' page rollups with the
slices of the UTC days at the window's ends described from their rows, and take the `carried`
columns of the first whole day from the rows of the slice before it
(trail.stats.rollup_pages). Random visits start near the UTC midnights and the zones' local
midnights (Berlin +01:00, New York across its change to summer time on 2024-03-10, Kolkata
+05:30), so sessions cross the slice edges and the UTC midnights, reload their page (bounces
with several views) and view the same page on both sides; each window is compared with
TRAIL_ROLLUPS off (rollups.ENABLED), with the last day live, after more rows arrive on it and on
the day before (a part that replaces a compacted one), and after everything is compacted.
"""

from __future__ import annotations

from collections.abc import Iterator
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
from trail.stats import cache, open_days, rollup_pages
from trail.stats.filters import parse_filter
from trail.stats.sources import rows_for
from trail.storage import rollups
from trail.tasks import compaction

# 03-08 .. 03-11 compacted, 03-12 live (its segments as written).
CLOSED = datetime(2024, 3, 12, 1, 0, tzinfo=UTC).timestamp()
ALL_CLOSED = datetime(2024, 3, 16, tzinfo=UTC).timestamp()
# Where visits start (up to an hour before or after): local midnights of the windows' ends.
ANCHORS = [
    datetime(2024, 3, 8, 23, 0, tzinfo=UTC),  # Berlin 03-09 00:00: 1 h before a UTC midnight
    datetime(2024, 3, 9, 5, 0, tzinfo=UTC),  # New York 03-09 00:00 (-05:00)
    datetime(2024, 3, 9, 18, 30, tzinfo=UTC),  # Kolkata 03-10 00:00
    datetime(2024, 3, 9, 23, 0, tzinfo=UTC),  # Berlin 03-10 00:00
    datetime(2024, 3, 10, 23, 0, tzinfo=UTC),  # Berlin 03-11 00:00
    datetime(2024, 3, 11, 4, 0, tzinfo=UTC),  # New York 03-11 00:00 (-04:00)
    datetime(2024, 3, 11, 18, 30, tzinfo=UTC),  # Kolkata 03-12 00:00
    datetime(2024, 3, 11, 23, 0, tzinfo=UTC),  # Berlin 03-12 00:00
]
WINDOWS = [
    ("Europe/Berlin", "2024-03-09", "2024-03-11"),  # slice, 03-09, 03-10, slice
    ("America/New_York", "2024-03-09", "2024-03-11"),  # across the change; ends live
    ("Asia/Kolkata", "2024-03-09", "2024-03-11"),
    ("Europe/Berlin", "2024-03-10", "2024-03-10"),  # two slices, no whole UTC day
    ("Asia/Kolkata", "2024-03-12", "2024-03-12"),  # a compacted slice and a live one
    ("Europe/Berlin", "2024-03-10", "2024-03-12"),  # whole 03-10, 03-11, the live day's slice
]
PATHS = ["/", "/a", "/b"]
REPORTS = [("page", "false"), ("page", "true"), ("page/entry", "true"), ("page/exit", "false")]

# Seconds to the next hit: within a slice, or past an edge without a view in between (the
# rows need no session timeout).
gap = st.one_of(st.integers(0, 1800), st.sampled_from([3000, 3600, 5400]))
hits = st.lists(st.tuples(gap, st.sampled_from(PATHS)), min_size=1, max_size=5)
visit = st.tuples(
    st.integers(1, 5),  # visitor: they come back, so slices and days share visitors
    hits,
    # the Berlin starts twice as often: the slice before their first whole day is 1 h long
    st.sampled_from([*ANCHORS, ANCHORS[0], ANCHORS[3]]),
    st.integers(-12, 12),  # start, in 5-minute steps from the anchor
)


def add(data: SiteData, visits: list, first_session: int = 1) -> None:
    for session_id, (visitor_id, hits, anchor, steps) in enumerate(visits, first_session):
        data.visit(visitor_id, session_id, hit_times(anchor + timedelta(minutes=5 * steps), hits))
    # Titles change over time: the report shows the latest view's.
    for i, row in enumerate(data.rows["page_views"]):
        row["title"] = f"{row['path']} v{(i + first_session) % 3}"


@contextmanager
def site(visits: list) -> Iterator[SiteData]:
    with compacted("trail-zone-pages-", CLOSED, lambda data: add(data, visits)) as data:
        yield data


def answers(data_dir: Path, tz: str, frm: str, to: str) -> dict[str, Any]:
    ctx = SimpleNamespace(data_dir=data_dir, config=Config())
    site_ns = SimpleNamespace(id=SITE, timezone=tz, group_by_title=False)
    out = {}
    for name, avg in REPORTS:
        params = {"id": [SITE], "from": [frm], "to": [to], "limit": ["100"],
                  "include_avg_time_on_page": [avg]}  # fmt: skip
        out[name, avg] = pirsch_stats.run(ctx, name, params, site_ns)
    return out


def used(data_dir: Path, tz: str, frm: str, to: str) -> bool:
    f = parse_filter({"id": [SITE], "from": [frm], "to": [to], "tz": [tz]})
    return rollup_pages.page_stats(rows_for(data_dir, f)) is not None


def assert_same_as_rows(data_dir: Path, mp: pytest.MonkeyPatch) -> None:
    for tz, frm, to in WINDOWS:
        assert used(data_dir, tz, frm, to), (tz, frm, to)
        got = answers(data_dir, tz, frm, to)
        with mp.context() as off:
            off.setattr(rollups, "ENABLED", False)
            want = answers(data_dir, tz, frm, to)
        for key, value in want.items():
            assert rounded(got[key]) == rounded(value), (tz, frm, to, key)


# Later rows: on the live day and the compacted day before it (one whole day read from rows).
late_visit = st.tuples(
    st.integers(1, 5),
    hits,
    st.sampled_from(ANCHORS[-2:]),
    st.integers(-12, 12),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(visit, min_size=1, max_size=14), st.lists(late_visit, min_size=1, max_size=3))
def test_zone_page_reports_equal_rows(visits: list, later: list) -> None:
    with pytest.MonkeyPatch.context() as mp, site(visits) as data:
        mp.setattr(cache, "CLOSED_AFTER", float("inf"))
        mp.setattr(rollups, "ENABLED", True)  # compared with off below, whatever TRAIL_ROLLUPS says
        assert_same_as_rows(data.data_dir, mp)
        # More rows arrive on the live day and on compacted days (segments beside their parts):
        # the remembered descriptions must not answer for the new files.
        add(data, later, first_session=100)
        data.write()
        assert_same_as_rows(data.data_dir, mp)
        compaction.run_round(data.data_dir, now=ALL_CLOSED, grace=0)
        assert_same_as_rows(data.data_dir, mp)


def visits_across(anchor: datetime) -> list:
    """Three visitors around `anchor` (a local midnight, 1 h before a UTC midnight), 22:40 to
    00:20: views before the window's start, in its first slice and after the UTC midnight."""
    return [
        # "/" at 22:40 (before the window), 23:00 and 00:10, then "/a" at 00:11
        (1, [(0, "/"), (1200, "/"), (4200, "/"), (60, "/a")], anchor, -4),
        (2, [(0, "/b"), (2400, "/b")], anchor, 7),  # 23:35 and 00:15: a bounce with a reload
        (3, [(0, "/a"), (5400, "/a")], anchor, -2),  # 22:50 (before the window) and 00:20
    ]


def test_first_whole_day_carries_from_the_slice_only(monkeypatch: pytest.MonkeyPatch) -> None:
    berlin = ANCHORS[0]
    with site(visits_across(berlin)) as data:
        monkeypatch.setattr(cache, "CLOSED_AFTER", float("inf"))
        monkeypatch.setattr(rollups, "ENABLED", True)
        open_days.clear()
        f = parse_filter({"id": [SITE], "from": ["2024-03-09"], "to": ["2024-03-10"],
                          "tz": ["Europe/Berlin"]})  # fmt: skip
        rows = rows_for(data.data_dir, f)
        # 03-08 23:00-24:00 from rows; 03-09 from its rollup, with what it carries from that
        # slice (03-10 has no rows)
        w = rollup_pages._window(rows)
        assert w is not None and [r.day.day for r in w.closed] == [9]
        assert [(p.day.day, p.whole) for p in w.opened] == [(8, False)]
        assert list(w.patched) == [datetime(2024, 3, 9).date()]
        stats = rollup_pages.page_stats(rows)
        assert stats is not None
        got = {r["path"]: r for r in stats.to_dicts()}
        pick = ("views", "sessions", "visitors", "bounces", "average_time_spent_seconds")
        # "/": one session across the midnight (its 22:40 view is not the window's), whose
        # views are followed by 4200 s and 60 s
        assert tuple(got["/"][k] for k in pick) == (2, 1, 1, 0, 2130)
        # "/a": the session that viewed it at 22:50 counts once (not as carried), bounced, and
        # the 22:50 view's time is not the window's
        assert tuple(got["/a"][k] for k in pick) == (2, 2, 2, 1, 0)
        assert tuple(got["/b"][k] for k in pick) == (2, 1, 1, 1, 2400)
        assert_same_as_rows(data.data_dir, monkeypatch)

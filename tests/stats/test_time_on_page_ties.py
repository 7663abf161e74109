"""Page views of one session at one instant: the time on page pairs each view with the next in
(time, trail.stats.kernels.TIE_ORDER), whatever order the rows were written or read in.

Random sessions whose views fall on a few instants (so most sessions have several views at one
instant, with different paths, titles, tags and durations) are written as segments; the average
time on page per path (/statistics/page with include_avg_time_on_page, with and without page
conditions) and the daily average time on page (duration/page) must be what the definition
gives, computed here from the written rows: fresh (the rows' path, the Rust kernels asked a
second time with the ties broken), with the rows of every session reversed in the files, and
compacted (the page rollups' seconds and their carried part across midnight).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from segment_rows import SITE, SiteData, compacted

from trail.stats import pages, reports
from trail.stats.filters import parse_filter
from trail.stats.kernels import TIE_ORDER

DAYS = ("2024-03-10", "2024-03-11")
PATHS = ("/a", "/b", "/c", "/d")
TAGS: tuple[dict[str, str], ...] = ({}, {"kind": "x"}, {"kind": "y"}, {"author": "z"})
# Closed and compacted: every day of the traffic.
ALL_CLOSED = datetime(2024, 3, 14, tzinfo=UTC).timestamp()
WINDOW = {"from": [DAYS[0]], "to": [DAYS[1]]}
FILTERS: tuple[dict[str, list[str]], ...] = (
    {},
    {"path": ["/b"]},
    {"path": ["!/a"]},
    {"pattern": ["^/(a|c)$"]},
    {"tag": ["kind"]},
    {"tag_kind": ["x"]},
)


def _traffic(seed: int, reverse: bool, written: list[dict[str, Any]]) -> Callable[[SiteData], None]:
    """Sessions of 2-7 views on 2-3 instants each (some just before midnight, the next after
    it); `reverse`: each session's rows written in the opposite order. The page views written
    are added to `written`."""

    def fill(site: SiteData) -> None:
        rnd = random.Random(seed)
        for visitor in range(1, 40):
            start = datetime(2024, 3, 10, 23, 59, 50, tzinfo=UTC) if visitor % 4 == 0 else (
                datetime(2024, 3, 10, 10, tzinfo=UTC) + timedelta(minutes=rnd.randrange(600)))  # fmt: skip
            instants = sorted({rnd.randrange(0, 40) for _ in range(rnd.randrange(2, 4))})
            hits = [
                ((start + timedelta(seconds=rnd.choice(instants))).strftime("%Y-%m-%d %H:%M:%S"),
                 rnd.choice(PATHS))
                for _ in range(rnd.randrange(2, 8))
            ]  # fmt: skip
            hits.sort(key=lambda h: h[0])
            tags = {i: rnd.choice(TAGS) for i in range(len(hits))}
            first = len(site.rows["page_views"])
            site.visit(visitor, 1, hits, tags=tags)
            if reverse:
                views = site.rows["page_views"]
                views[first:] = views[first:][::-1]
        written.extend(site.rows["page_views"])

    return fill


def _paired(views: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Every view with its time on page, by the definition."""
    by_session: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for v in views:
        by_session[(v["visitor_id"], v["session_id"])].append(v)
    out = []
    for rows in by_session.values():
        rows.sort(key=lambda v: (v["time"], *(v[c] for c in TIE_ORDER)))
        out += [(v, rows[i + 1]["duration_seconds"] if i + 1 < len(rows) else 0)
                for i, v in enumerate(rows)]  # fmt: skip
    return out


def _match(v: dict[str, Any], params: dict[str, list[str]]) -> bool:
    tags = dict(zip(v["tag_keys"], v["tag_values"], strict=True))
    if "path" in params:
        want = params["path"][0]
        return v["path"] != want[1:] if want.startswith("!") else v["path"] == want
    if "pattern" in params:
        return v["path"] in ("/a", "/c")
    if "tag" in params:
        return "kind" in tags
    if "tag_kind" in params:
        return tags.get("kind") == "x"
    return True


def _expected(
    written: list[dict[str, Any]], params: dict[str, list[str]]
) -> tuple[dict[str, int], int]:
    """The average time on page per path of the matching views (zeros left out, rounded half
    to even), and the duration/page average over the window's days."""
    sessions = {(v["visitor_id"], v["session_id"]) for v in written if _match(v, params)}
    views = [v for v in written if (v["visitor_id"], v["session_id"]) in sessions]
    spent: dict[str, list[int]] = defaultdict(list)
    daily: dict[str, list[int]] = defaultdict(list)
    for v, seconds in _paired(views):
        if seconds > 0 and _match(v, params):
            spent[v["path"]].append(seconds)
            daily[v["time"].date().isoformat()].append(seconds)
    # per day unrounded, then over the days with a time (trail.stats.reports._scaled_averages)
    per_day = [sum(daily[d]) / len(daily[d]) for d in sorted(daily)]
    return (
        {p: round(sum(s) / len(s)) for p, s in spent.items()},
        round(sum(per_day) / len(per_day)) if per_day else 0,
    )


def _answers(data: Path, params: dict[str, list[str]]) -> tuple[dict[str, int], int]:
    site = {"id": [SITE], **WINDOW, **params}
    f = parse_filter({**site, "include_avg_time_on_page": ["true"], "limit": ["100"]})
    times = {r["path"]: r["average_time_spent_seconds"] for r in pages.page(data, f)
             if r["average_time_spent_seconds"]}  # fmt: skip
    daily = reports.page_duration(data, parse_filter({**site, "scale": ["month"]}))
    return times, daily[0]["average_time_spent_seconds"] if daily else 0


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("reverse", [False, True])
def test_views_at_one_instant_pair_in_tie_order(seed: int, reverse: bool) -> None:
    for fresh in (True, False):
        written: list[dict[str, Any]] = []
        with compacted(
            "ties-", 0 if fresh else ALL_CLOSED, _traffic(seed, reverse, written)
        ) as site:
            instants = [(v["visitor_id"], v["time"]) for v in written]
            assert len(instants) - len(set(instants)) > 10  # views at one instant
            for params in FILTERS:
                want = _expected(written, params)
                assert want[0], params  # some time on some page
                assert _answers(site.data_dir, params) == want, (fresh, params)

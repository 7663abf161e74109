"""Disagreements the differential search found, kept as fixed traffic against the model.

Each test builds its traffic around today (the server takes hit times from the request but
sessions and salts follow the real days), sends it through a real server like
test_differential.py, and compares the named endpoints with the model, fresh and compacted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.oracle.harness import PHASES, Oracle, describe, report
from tests.oracle.traffic import Site, Traffic, Visitor, make_hit, utc_midnight

MINUTE = 60_000


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    oracle = Oracle.start(tmp_path_factory.mktemp("oracle"))
    yield oracle
    oracle.stop()


def agree(oracle: Oracle, traffic: Traffic, queries: list[tuple[str, dict[str, list[str]]]]):
    loaded = oracle.load(traffic)
    try:
        checks = [oracle.check(loaded, "site0", params, [endpoint]) for endpoint, params in queries]
        diffs = oracle.examine(checks, PHASES)
    finally:
        oracle.unload([loaded])
    assert not diffs, f"{report(diffs)}\n\ntraffic:\n{describe(traffic)}"


def test_bounce_moved_past_midnight_by_a_keep_alive(oracle: Oracle) -> None:
    """A bounced session's only page view is on one day and its final state, moved by a
    keep-alive after midnight, on the next. A page's bounces are the sessions among its views
    in the range whose final state in the range bounced: on day D, /docs has one bounce (the
    visitor who viewed it that day), not two; per day, the view of D-1 belongs to a session
    whose final state is not on D-1, so D-1 has no bounce."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    today = datetime.fromtimestamp(now / 1000, UTC).date()
    day = today - timedelta(days=2)
    midnight = utc_midnight(day)
    site = Site("site0", "site0.oracle.test", "UTC")
    crossing, daytime = Visitor(0, 0, 10, 0, 0), Visitor(1, 1, 20, 1, 1)
    hits = [
        make_hit("page_view", midnight - 10 * MINUTE, site, crossing, "/docs"),
        make_hit("keep_alive", midnight + 5 * MINUTE, site, crossing, "/docs", follow_up=True),
        make_hit("page_view", midnight + 10 * 60 * MINUTE, site, daytime, "/docs"),
    ]
    traffic = Traffic([site], hits, now)
    d, before = day.isoformat(), (day - timedelta(days=1)).isoformat()
    agree(oracle, traffic, [
        ("page", {"tz": ["UTC"], "from": [d], "to": [d]}),
        ("visitor", {"tz": ["UTC"], "from": [before], "to": [d], "path": ["/docs"]}),
        ("page", {"tz": ["UTC"], "from": [before], "to": [d]}),
        ("visitor", {"tz": ["UTC"], "from": [before], "to": [d], "pattern": ["^/docs"]}),
    ])  # fmt: skip


def test_bounced_sessions_that_viewed_more_than_their_entry(oracle: Oracle) -> None:
    """A bounced session can view pages besides its entry: a reload keeps the bounce, and a
    non-interactive event or a keep-alive naming another page moves the exit page, so a view of
    that page is a reload too. Each page counts the bounce (page report, fresh rows and the
    page rollups), and a range that starts after the entry view counts it only for the page
    viewed inside the range."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    today = datetime.fromtimestamp(now / 1000, UTC).date()
    day = today - timedelta(days=3)
    midnight = utc_midnight(day)
    site = Site("site0", "site0.oracle.test", "UTC")
    moved, reloading, crossing = (
        Visitor(0, 0, 10, 0, 0),
        Visitor(1, 1, 20, 1, 1),
        Visitor(2, 2, 30, 2, 2),
    )
    hits = [
        make_hit("page_view", midnight + 60 * MINUTE, site, moved, "/"),
        make_hit("event", midnight + 61 * MINUTE, site, moved, "/pricing", follow_up=True,
                 event_name="play video", non_interactive=True),
        make_hit("page_view", midnight + 62 * MINUTE, site, moved, "/pricing", follow_up=True),
        make_hit("page_view", midnight + 120 * MINUTE, site, reloading, "/blog"),
        make_hit("page_view", midnight + 121 * MINUTE, site, reloading, "/blog", follow_up=True),
        # viewed /docs before midnight, moved to /about by a keep-alive, reloaded /about after
        make_hit("page_view", midnight + 24 * 60 * MINUTE - 5 * MINUTE, site, crossing, "/docs"),
        make_hit("keep_alive", midnight + 24 * 60 * MINUTE - 4 * MINUTE, site, crossing, "/about",
                 follow_up=True),
        make_hit("page_view", midnight + 24 * 60 * MINUTE + 3 * MINUTE, site, crossing, "/about",
                 follow_up=True),
    ]  # fmt: skip
    traffic = Traffic([site], hits, now)
    d, after = day.isoformat(), (day + timedelta(days=1)).isoformat()
    agree(oracle, traffic, [
        ("page", {"tz": ["UTC"], "from": [d], "to": [d]}),
        ("page", {"tz": ["UTC"], "from": [d], "to": [after]}),
        ("page", {"tz": ["UTC"], "from": [after], "to": [after]}),
        ("page", {"tz": ["Europe/Berlin"], "from": [d], "to": [after]}),
        ("visitor", {"tz": ["UTC"], "from": [d], "to": [after], "path": ["/about"]}),
        ("hours", {"tz": ["UTC"], "from": [d], "to": [after]}),
        ("hours", {"tz": ["UTC"], "from": [after], "to": [after]}),
    ])  # fmt: skip


def test_page_and_event_conditions_hold_inside_each_bucket(oracle: Oracle) -> None:
    """Under a page or event condition, the visitor report and the session duration count a
    session in a day only when the condition holds inside that day: each bucket is asked as a
    window of its own. A session whose tagged view and event are before midnight and whose
    final state a keep-alive moved past it passes on neither day; a session with its event after
    midnight passes on that day, with no views; `event=!…` lets the day without the event pass."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    today = datetime.fromtimestamp(now / 1000, UTC).date()
    day = today - timedelta(days=3)
    midnight = utc_midnight(day) + 24 * 60 * MINUTE
    site = Site("site0", "site0.oracle.test", "UTC")
    crossing, late, inside = (
        Visitor(0, 0, 10, 0, 0),
        Visitor(1, 1, 20, 1, 1),
        Visitor(2, 2, 30, 2, 2),
    )
    hits = [
        make_hit("page_view", midnight - 20 * MINUTE, site, crossing, "/", tags={"ab": "a"}),
        make_hit("event", midnight - 18 * MINUTE, site, crossing, "/", follow_up=True,
                 event_name="download", tags={"ab": "a"}),
        make_hit("keep_alive", midnight + 3 * MINUTE, site, crossing, "/", follow_up=True),
        make_hit("page_view", midnight - 10 * MINUTE, site, late, "/docs"),
        make_hit("page_view", midnight - 9 * MINUTE, site, late, "/blog", follow_up=True),
        make_hit("event", midnight + 5 * MINUTE, site, late, "/blog", follow_up=True,
                 event_name="download"),
        make_hit("page_view", midnight + 60 * MINUTE, site, inside, "/", tags={"ab": "b"}),
        make_hit("page_view", midnight + 62 * MINUTE, site, inside, "/docs", follow_up=True),
    ]  # fmt: skip
    traffic = Traffic([site], hits, now)
    d, after = day.isoformat(), (day + timedelta(days=1)).isoformat()
    both = {"tz": ["UTC"], "from": [d], "to": [after]}
    queries = []
    for condition in ({"tag": ["ab"]}, {"event": ["download"]}, {"event": ["!download"]},
                      {"path": ["/docs"]}, {"tag_ab": ["a"]}):  # fmt: skip
        for endpoint in ("visitor", "duration/session"):
            queries.append((endpoint, {**both, **condition}))
    queries.append(("duration/session", {**both, "tag": ["ab"], "scale": ["week"]}))
    agree(oracle, traffic, queries)


def test_exit_page_condition_holds_inside_each_bucket(oracle: Oracle) -> None:
    """With a page or event condition, the visitor report and the session duration ask each day
    as a window of its own, and an exit page is the one of the session's final state in that
    window. A session that crosses midnight has its final state on the second day: on the
    first day it has no exit page, so its views there do not pass `exit_path` (its first day
    only counted once the exit condition was held per day, like the page condition)."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    today = datetime.fromtimestamp(now / 1000, UTC).date()
    day = today - timedelta(days=3)
    midnight = utc_midnight(day) + 24 * 60 * MINUTE
    site = Site("site0", "site0.oracle.test", "UTC")
    crossing, inside = Visitor(5, 2, 98, 0, 0), Visitor(3, 1, 20, 1, 1)
    hits = [
        make_hit("page_view", midnight - 13 * MINUTE, site, crossing, "/Contact"),
        make_hit("page_view", midnight - 6 * MINUTE, site, crossing, "/docs", follow_up=True),
        make_hit("page_view", midnight + 1 * MINUTE, site, crossing, "/pricing", follow_up=True),
        make_hit("event", midnight + 3 * MINUTE, site, crossing, "/pricing", follow_up=True,
                 event_name="signup"),
        make_hit("page_view", midnight - 90 * MINUTE, site, inside, "/docs"),
        make_hit("page_view", midnight - 80 * MINUTE, site, inside, "/pricing", follow_up=True),
    ]  # fmt: skip
    traffic = Traffic([site], hits, now)
    d, after = day.isoformat(), (day + timedelta(days=1)).isoformat()
    both = {"tz": ["UTC"], "from": [d], "to": [after]}
    queries = []
    for condition in ({"path": ["~/"]}, {"path": ["/docs"]}, {"pattern": ["^/"]},
                      {"event": ["signup"]}, {"event": ["!signup"]}):  # fmt: skip
        for exit_path in ("~ng", "/pricing", "!/pricing"):
            for endpoint in ("visitor", "duration/session"):
                queries.append((endpoint, {**both, **condition, "exit_path": [exit_path]}))
    queries.append(("visitor", {**both, "path": ["~/"], "exit_path": ["~ng"], "scale": ["week"]}))
    agree(oracle, traffic, queries)

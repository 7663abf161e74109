"""Reports over hand-built segment files; every expected number is worked out in a comment."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from segment_rows import SITE, SiteData

from trail.stats import reports
from trail.stats.filters import parse_filter

NOW = datetime(2024, 3, 20, tzinfo=UTC)
DAY = "2024-03-10"


def q(frm: str = DAY, to: str = DAY, **params: str | list[str]):
    p = {"id": [SITE], "from": [frm], "to": [to]}
    p.update({k: v if isinstance(v, list) else [v] for k, v in params.items()})
    return parse_filter(p, now=NOW)


@pytest.fixture
def basic(site: SiteData) -> Path:
    """Four sessions of three visitors on 2024-03-10 (UTC).

    v1/s1: "/" 10:00:00, "/a" 10:00:09 (tag author=alice) -> 2 views, not bounced
    v2/s1: "/" 11:00:00, "/" 11:00:05 (reload)            -> 2 views, still bounced
    v3/s1: "/b" 12:00:00                                  -> 1 view, bounced
    v3/s2: "/" 15:00:00, "/b" 15:00:03                    -> 2 views, not bounced
    """
    site.visit(
        1,
        1,
        [("2024-03-10 10:00:00", "/"), ("2024-03-10 10:00:09", "/a")],
        tags={1: {"author": "alice"}},
        country_code="de",
        language="de",
        os="Windows",
        browser="Firefox",
        referrer_name="Google",
        desktop=True,
        mobile=False,
    )
    site.visit(
        2,
        1,
        [("2024-03-10 11:00:00", "/"), ("2024-03-10 11:00:05", "/")],
        country_code="us",
        language="en",
        os="Mac",
        browser="Safari",
        desktop=False,
        mobile=False,
    )
    site.visit(
        3,
        1,
        [("2024-03-10 12:00:00", "/b")],
        country_code="",
        language="en",
        os="Android",
        browser="Chrome",
        referrer_name="Bing",
        desktop=False,
        mobile=True,
    )
    site.visit(
        3,
        2,
        [("2024-03-10 15:00:00", "/"), ("2024-03-10 15:00:03", "/b")],
        country_code="",
        language="en",
        os="Android",
        browser="Chrome",
        referrer_name="Bing",
        desktop=False,
        mobile=True,
    )
    site.write()
    return site.data_dir


def test_total(basic: Path) -> None:
    t = reports.total(basic, q())
    # visitors {1,2,3}=3; sessions 4; views 2+2+1+2=7; bounces v2/s1 + v3/s1 = 2; rate 2/4.
    assert t == {
        "visitors": 3,
        "views": 7,
        "sessions": 4,
        "bounces": 2,
        "bounce_rate": 0.5,
        "cr": 1.0,
        "custom_metric_avg": 0.0,
        "custom_metric_total": 0.0,
    }
    # Another day: nothing, and no division by zero.
    assert reports.total(basic, q("2024-03-11", "2024-03-11"))["bounce_rate"] == 0.0


@pytest.mark.parametrize(
    ("params", "visitors", "views", "sessions", "bounces"),
    [
        ({"country": "de"}, 1, 2, 1, 0),  # v1 only
        ({"country": "!de"}, 2, 5, 3, 2),  # v2 (2 views, bounced), v3 (1+2 views, s1 bounced)
        ({"country": "null"}, 1, 3, 2, 1),  # v3: "" country
        ({"country": "!null"}, 2, 4, 2, 1),  # v1 + v2
        ({"country": ["de", "us"]}, 2, 4, 2, 1),  # positives OR: v1 + v2
        ({"country": ["!de", "!us"]}, 1, 3, 2, 1),  # negatives AND: v3
        ({"browser": "~fire"}, 1, 2, 1, 0),  # "Firefox" contains "fire", case-insensitive
        ({"browser": "^fire"}, 2, 5, 3, 2),  # v2 + v3
        ({"os": "~AN"}, 1, 3, 2, 1),  # "Android" only
        ({"language": "~de,en"}, 3, 7, 4, 2),  # list: in (de, en) = everyone
        ({"language": "^en"}, 1, 2, 1, 0),  # list: not in (en) = v1
        ({"platform": "mobile"}, 1, 3, 2, 1),  # v3
        ({"platform": "!mobile"}, 2, 4, 2, 1),  # v1 + v2
        ({"platform": "unknown"}, 1, 2, 1, 1),  # v2: neither desktop nor mobile
        ({"platform": ["desktop", "unknown"]}, 2, 4, 2, 1),
        ({"referrer_name": "Bing", "os": "Android"}, 1, 3, 2, 1),  # fields AND
        ({"entry_path": "/b"}, 1, 1, 1, 1),  # v3/s1
        ({"exit_path": "/b"}, 1, 3, 2, 1),  # v3/s1 (exit /b) + v3/s2 (exit /b)
        ({"exit_path": "/"}, 1, 2, 1, 1),  # v2/s1 only: v1's earlier exit "/" was cancelled
    ],
)
def test_total_session_filters(basic: Path, params, visitors, views, sessions, bounces) -> None:
    t = reports.total(basic, q(**params))
    assert (t["visitors"], t["views"], t["sessions"], t["bounces"]) == (
        visitors,
        views,
        sessions,
        bounces,
    )
    assert t["cr"] == visitors / 3  # denominator: all 3 visitors of the day


@pytest.mark.parametrize(
    ("params", "visitors", "views", "sessions", "bounces"),
    [
        # page views on "/b": v3/s1 and v3/s2; bounced among them: v3/s1.
        ({"path": "/b"}, 1, 2, 2, 1),
        # not "/b": v1 "/", v2 "/" x2, v3/s2 "/" = 4 views... plus v1 "/a" = 5; sessions v1,v2,v3/s2;
        # bounced: v2/s1.
        ({"path": "!/b"}, 3, 5, 3, 1),
        ({"path": ["/a", "/b"]}, 2, 3, 3, 1),  # v1 "/a" + v3 "/b" x2
        ({"path": "~A"}, 1, 1, 1, 0),  # only "/a" contains "a"
        ({"path": "^b"}, 3, 5, 3, 1),  # same as !/b here
        ({"pattern": "^/(a|b)$"}, 2, 3, 3, 1),
        ({"tag_author": "alice"}, 1, 1, 1, 0),  # v1's "/a" view
        ({"tag_author": "!alice"}, 3, 6, 4, 2),  # the other 6 views, all 4 sessions
        ({"tag_author": "null"}, 3, 6, 4, 2),  # absent tag = ""
        ({"tag": "author"}, 1, 1, 1, 0),
        ({"path": "/", "country": "us"}, 1, 2, 1, 1),  # v2's two "/" views, bounced
    ],
)
def test_total_page_filters(basic: Path, params, visitors, views, sessions, bounces) -> None:
    t = reports.total(basic, q(**params))
    assert (t["visitors"], t["views"], t["sessions"], t["bounces"]) == (
        visitors,
        views,
        sessions,
        bounces,
    )


def test_page_report(basic: Path) -> None:
    pages = reports.page(basic, q(include_avg_time_on_page="true"))
    assert [p["path"] for p in pages] == ["/", "/a", "/b"]  # visitors 3, 1, 1; ties by path
    home, a, b = pages
    # "/": views v1 1 + v2 2 + v3/s2 1 = 4; visitors 3; sessions 3; bounced with entry "/": v2/s1.
    assert (home["visitors"], home["views"], home["sessions"], home["bounces"]) == (3, 4, 3, 1)
    assert home["bounce_rate"] == pytest.approx(1 / 3)
    assert home["relative_visitors"] == 1.0 and home["relative_views"] == pytest.approx(4 / 7)
    # Time on "/": next views' durations 9 (v1), 5 (v2 reload), 0 (v2 last), 3 (v3/s2) -> avg(9,5,3)=5.67 -> 6.
    assert home["average_time_spent_seconds"] == 6
    assert (
        a["visitors"],
        a["views"],
        a["sessions"],
        a["bounces"],
        a["average_time_spent_seconds"],
    ) == (1, 1, 1, 0, 0)
    assert a["title"] == "/A" and a["relative_visitors"] == pytest.approx(1 / 3)
    # "/b": v3/s1 (bounced, entry /b) and v3/s2 -> sessions 2, bounces 1.
    assert (b["visitors"], b["views"], b["sessions"], b["bounces"], b["bounce_rate"]) == (
        1,
        2,
        2,
        1,
        0.5,
    )
    assert b["relative_views"] == pytest.approx(2 / 7)


def test_page_sort_search_paging(basic: Path) -> None:
    assert [p["path"] for p in reports.page(basic, q(sort="views", direction="asc"))] == [
        "/a",
        "/b",
        "/",
    ]
    assert [p["path"] for p in reports.page(basic, q(sort="path", direction="desc"))] == [
        "/b",
        "/a",
        "/",
    ]
    assert [p["path"] for p in reports.page(basic, q(search="B"))] == ["/b"]
    assert [p["path"] for p in reports.page(basic, q(offset="1", limit="1"))] == ["/a"]
    assert [p["path"] for p in reports.page(basic, q(sort="nonsense"))] == ["/", "/a", "/b"]
    # A filter narrows pages but relative values keep the unfiltered denominators (3 visitors, 7 views).
    [only] = reports.page(basic, q(country="us"))
    assert (only["path"], only["views"], only["relative_views"]) == ("/", 2, pytest.approx(2 / 7))


def test_visitor_report_days(basic: Path) -> None:
    days = reports.visitor(basic, q("2024-03-09", "2024-03-11"))
    assert [d["day"] for d in days] == [
        "2024-03-09T00:00:00Z",
        "2024-03-10T00:00:00Z",
        "2024-03-11T00:00:00Z",
    ]
    assert all(d["week"] is None and d["month"] is None and d["year"] is None for d in days)
    assert [d["visitors"] for d in days] == [0, 3, 0]  # empty buckets filled with zeros
    assert (days[1]["views"], days[1]["sessions"], days[1]["bounces"], days[1]["bounce_rate"]) == (
        7,
        4,
        2,
        0.5,
    )
    weeks = reports.visitor(basic, q("2024-03-01", "2024-03-20", scale="week"))
    # Mondays: 02-26 (holds 03-01), 03-04, 03-11, 03-18; 2024-03-10 is a Sunday -> week of 03-04.
    assert [w["week"] for w in weeks] == [
        f"2024-{d}T00:00:00Z" for d in ("02-26", "03-04", "03-11", "03-18")
    ]
    assert [w["visitors"] for w in weeks] == [0, 3, 0, 0] and weeks[0]["day"] is None
    [month] = reports.visitor(basic, q("2024-03-01", "2024-03-20", scale="month"))
    assert (month["month"], month["views"]) == ("2024-03-01T00:00:00Z", 7)
    # Filtered: cr per bucket = 1 of 3 visitors.
    day = reports.visitor(basic, q(country="de"))[0]
    assert (day["visitors"], day["cr"]) == (1, pytest.approx(1 / 3))


@pytest.fixture
def midnight(site: SiteData) -> Path:
    """v9/s1: "/" 2024-03-10 23:50 UTC, "/n" 2024-03-11 00:10 UTC.

    Rows: day 10 holds +1 (23:50, 1 view, bounced) and its cancel -1 (same time);
    day 11 holds +1 (00:10, 2 views, not bounced).
    v8/s1: one view "/late" at 2024-03-10 23:30 UTC = 2024-03-11 00:30 in Berlin (UTC+1).
    """
    site.visit(9, 1, [("2024-03-10 23:50:00", "/"), ("2024-03-11 00:10:00", "/n")])
    site.visit(8, 1, [("2024-03-10 23:30:00", "/late")])
    site.write()
    return site.data_dir


def test_session_crossing_midnight(midnight: Path) -> None:
    d10 = reports.total(midnight, q("2024-03-10", "2024-03-10", path=[]))
    # Day 10: visitors v8 + v9 (its +1 row is there) = 2; sessions: v8 1 + v9 (+1 -1) 0 = 1;
    # views v8 1 + v9 0 = 1; bounces v8 1.
    assert (d10["visitors"], d10["sessions"], d10["views"], d10["bounces"]) == (2, 1, 1, 1)
    d11 = reports.total(midnight, q("2024-03-11", "2024-03-11"))
    assert (d11["visitors"], d11["sessions"], d11["views"], d11["bounces"]) == (1, 1, 2, 0)
    both = reports.total(midnight, q("2024-03-10", "2024-03-11"))
    # Over both days the pair cancels: v8 (1 view, bounced) + v9 (2 views): visitors 2, sessions 2.
    assert (both["visitors"], both["sessions"], both["views"], both["bounces"]) == (2, 2, 3, 1)
    days = reports.visitor(midnight, q("2024-03-10", "2024-03-11"))
    assert [(d["visitors"], d["views"]) for d in days] == [(2, 1), (1, 2)]
    # Page views land on their own days.
    assert [p["path"] for p in reports.page(midnight, q("2024-03-11", "2024-03-11"))] == ["/n"]


def test_time_zone_moves_rows_to_local_days(midnight: Path) -> None:
    berlin = reports.visitor(midnight, q("2024-03-10", "2024-03-11", tz="Europe/Berlin"))
    # Berlin = UTC+1: v8 23:30 UTC -> 03-11 00:30; v9 23:50 -> 00:50 and 00:10 -> 01:10, all on 03-11.
    assert [(d["visitors"], d["sessions"], d["views"]) for d in berlin] == [(0, 0, 0), (2, 2, 3)]
    # New York, 03-10 (23 hours, DST): 05:00 UTC 03-10 .. 04:00 UTC 03-11 holds every row.
    ny = reports.total(midnight, q("2024-03-10", "2024-03-10", tz="America/New_York"))
    assert (ny["visitors"], ny["sessions"], ny["views"]) == (2, 2, 3)
    assert (
        reports.total(midnight, q("2024-03-11", "2024-03-11", tz="America/New_York"))["visitors"]
        == 0
    )


def test_time_on_page_conformance_scenario_1(site: SiteData) -> None:
    # 7 views with gaps 9, 2, 5, 3, 10, 7 s: page-view durations [0, 9, 2, 5, 3, 10, 7].
    times = ["10:00:00", "10:00:09", "10:00:11", "10:00:16", "10:00:19", "10:00:29", "10:00:36"]
    site.visit(1, 1, [(f"{DAY} {t}", f"/{i}") for i, t in enumerate(times)])
    # Same path in another session for the average: gaps 9,2,5,3,10,7 -> avg 36/6 = 6.
    site.visit(2, 1, [(f"{DAY} 12:{t[3:]}", "/x") for t in times])
    # Ties: "/r" followed by 2 s and 3 s -> 2.5 -> 2 (half to even); "/s" by 3 s and 4 s -> 3.5 -> 4.
    site.visit(3, 1, [(f"{DAY} 13:00:00", "/r"), (f"{DAY} 13:00:02", "/e")])
    site.visit(3, 2, [(f"{DAY} 14:00:00", "/r"), (f"{DAY} 14:00:03", "/e")])
    site.visit(4, 1, [(f"{DAY} 13:00:00", "/s"), (f"{DAY} 13:00:03", "/e")])
    site.visit(4, 2, [(f"{DAY} 14:00:00", "/s"), (f"{DAY} 14:00:04", "/e")])
    site.write()
    pages = {
        p["path"]: p["average_time_spent_seconds"]
        for p in reports.page(site.data_dir, q(include_avg_time_on_page="true"))
    }
    assert [pages[f"/{i}"] for i in range(7)] == [9, 2, 5, 3, 10, 7, 0]
    assert (pages["/x"], pages["/r"], pages["/s"], pages["/e"]) == (6, 2, 4, 0)
    # With a path filter the next view still counts although it is on another page.
    [r] = reports.page(site.data_dir, q(path="/r", include_avg_time_on_page="true"))
    assert r["average_time_spent_seconds"] == 2
    t = reports.total(site.data_dir, q())
    assert (t["views"], t["sessions"]) == (7 + 7 + 2 * 4, 6)


@pytest.fixture
def with_events(site: SiteData) -> Path:
    """v1: "/" + event signup {plan: pro, amount: 10}; v2: "/", "/x"; v3: "/p" + signup {free, 5};
    v4: "/" + event download. Interactive events clear the bounce."""
    site.visit(
        1, 1, [(f"{DAY} 10:00:00", "/")], events={0: ("signup", {"plan": "pro", "amount": "10"})}
    )
    site.visit(2, 1, [(f"{DAY} 11:00:00", "/"), (f"{DAY} 11:01:00", "/x")])
    site.visit(
        3, 1, [(f"{DAY} 12:00:00", "/p")], events={0: ("signup", {"plan": "free", "amount": "5"})}
    )
    site.visit(4, 1, [(f"{DAY} 13:00:00", "/")], events={0: ("download", {})})
    site.write()
    return site.data_dir


def test_event_filters_select_whole_sessions(with_events: Path) -> None:
    t = reports.total(with_events, q(event="signup"))
    # Sessions v1 and v3: 1 view each, not bounced; cr 2 of 4 visitors.
    assert (t["visitors"], t["sessions"], t["views"], t["bounces"], t["cr"]) == (2, 2, 2, 0, 0.5)
    assert reports.total(with_events, q(event="signup", meta_plan="pro"))["visitors"] == 1
    # A negated name also passes sessions without events (Pirsch's LEFT JOIN): v2 and v4's
    # download; with a metadata key required, v2 (no event, no metadata) does not pass.
    assert reports.total(with_events, q(event="!signup"))["visitors"] == 2
    assert reports.total(with_events, q(event="!signup", meta_plan="pro"))["visitors"] == 0
    assert reports.total(with_events, q(event="!signup", meta_plan="!pro"))["visitors"] == 2
    all_ = reports.total(with_events, q())
    # No event filter: 4 visitors, 5 views, no bounce (v2 viewed 2 pages, the others fired events).
    assert (all_["visitors"], all_["views"], all_["bounces"]) == (4, 5, 0)
    cm = reports.total(
        with_events, q(event="signup", custom_metric_key="amount", custom_metric_type="integer")
    )
    assert (cm["custom_metric_total"], cm["custom_metric_avg"]) == (15.0, 7.5)  # 10 + 5, 15 / 2
    cm = reports.total(
        with_events,
        q(event="signup", meta_plan="pro", custom_metric_key="amount", custom_metric_type="float"),
    )
    assert (cm["custom_metric_total"], cm["custom_metric_avg"]) == (10.0, 10.0)


def test_active(site: SiteData) -> None:
    now = datetime(2024, 3, 10, 12, 0, 0, tzinfo=UTC)
    site.visit(
        1, 1, [("2024-03-10 11:55:00", "/a"), ("2024-03-10 11:58:00", "/b")], country_code="de"
    )
    site.visit(2, 1, [("2024-03-10 11:59:00", "/a")], country_code="jp")
    site.visit(3, 1, [("2024-03-10 11:40:00", "/old")], country_code="de")  # 20 min ago
    site.write()
    a = reports.active(site.data_dir, parse_filter({"id": [SITE]}, now=now), now=now)
    # Last 600 s: v1 (/a, /b), v2 (/a): "/a" 2 visitors, "/b" 1; total 2; de 1, jp 1 (1/2 each).
    assert a["visitors"] == 2
    assert a["stats"] == [
        {"path": "/a", "title": "/A", "visitors": 2},
        {"path": "/b", "title": "/B", "visitors": 1},
    ]
    assert a["countries"] == [
        {"visitors": 1, "relative_visitors": 0.5, "country_code": "de"},
        {"visitors": 1, "relative_visitors": 0.5, "country_code": "jp"},
    ]
    # start=90: only v2's 11:59 view; v1's session state is 11:58:00 = 120 s ago.
    a = reports.active(
        site.data_dir, parse_filter({"id": [SITE], "start": ["90"]}, now=now), now=now
    )
    assert (a["visitors"], [s["path"] for s in a["stats"]]) == (1, ["/a"])

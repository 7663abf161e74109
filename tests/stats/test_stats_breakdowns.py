"""Breakdowns, entry/exit pages, session duration and growth; numbers worked out in comments."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from segment_rows import SiteData
from test_stats_reports import basic, q  # noqa: F401  (the shared fixture)

from trail.stats import metrics, reports


def test_dimensions(basic: Path) -> None:  # noqa: F811
    third = pytest.approx(1 / 3)
    # de, us and "" each have one of the 3 visitors; ties ordered by the field.
    assert reports.dimension(basic, q(), "country") == [
        {"visitors": 1, "relative_visitors": third, "country_code": c} for c in ("", "de", "us")
    ]
    # en: v2 + v3 = 2, de: v1.
    assert [(r["language"], r["visitors"]) for r in reports.dimension(basic, q(), "language")] == [
        ("en", 2),
        ("de", 1),
    ]
    # Page filter reads page views: only v3 viewed "/b".
    assert reports.dimension(basic, q(path="/b"), "os") == [
        {"visitors": 1, "relative_visitors": third, "os": "Android"}
    ]
    assert [r["browser"] for r in reports.dimension(basic, q(search="FIRE"), "browser")] == [
        "Firefox"
    ]
    assert [r["os"] for r in reports.dimension(basic, q(sort="os", direction="asc"), "os")] == [
        "Android",
        "Mac",
        "Windows",
    ]


def test_referrer(basic: Path) -> None:  # noqa: F811
    got = [
        (r["referrer_name"], r["visitors"], r["sessions"], r["bounces"], r["bounce_rate"])
        for r in reports.referrer(basic, q())
    ]
    # "" = v2 (1 session, bounced); Bing = v3 (2 sessions, s1 bounced); Google = v1 (1, not bounced).
    assert got == [("", 1, 1, 1, 1.0), ("Bing", 1, 2, 1, 0.5), ("Google", 1, 1, 0, 0.0)]


def test_platform(basic: Path) -> None:  # noqa: F811
    p = reports.platform(basic, q())
    # desktop v1, mobile v3, unknown 3 - 1 - 1 = 1 (v2); each of 3 unfiltered visitors.
    assert (p["platform_desktop"], p["platform_mobile"], p["platform_unknown"]) == (1, 1, 1)
    assert p["relative_platform_unknown"] == pytest.approx(1 / 3)
    assert reports.platform(basic, q(country="us"))["platform_unknown"] == 1


def test_hours_and_weekdays(basic: Path) -> None:  # noqa: F811
    h = reports.hours(basic, q())
    assert len(h) == 24 and [r["hour"] for r in h] == list(range(24))
    # Sessions end at 10 (v1, 2 views), 11 (v2, 2 views, bounced), 12 (v3/s1, bounced), 15 (v3/s2, 2 views).
    busy = {r["hour"]: (r["visitors"], r["views"], r["bounces"]) for r in h if r["visitors"]}
    assert busy == {10: (1, 2, 0), 11: (1, 2, 1), 12: (1, 1, 1), 15: (1, 2, 0)}
    berlin = reports.hours(basic, q(tz="Europe/Berlin"))
    assert [r["hour"] for r in berlin if r["visitors"]] == [11, 12, 13, 16]  # UTC+1
    w = reports.weekdays(basic, q())
    assert len(w) == 7 * 24
    # 2024-03-10 is a Sunday = 6.
    assert {(r["weekday"], r["hour"]) for r in w if r["visitors"]} == {
        (6, 10),
        (6, 11),
        (6, 12),
        (6, 15),
    }


def test_entry_and_exit_pages(basic: Path) -> None:  # noqa: F811
    entries = reports.entry_pages(basic, q(include_avg_time_on_page="true"))
    # Entries: "/" = v1/s1, v2/s1, v3/s2 = 3 of 4 sessions; "/b" = v3/s1. Visitors and sessions
    # are the pages' totals: "/" 3 visitors in 3 sessions, "/b" 1 visitor in 2 sessions.
    assert [(e["path"], e["entries"], e["visitors"], e["sessions"]) for e in entries] == [
        ("/", 3, 3, 3),
        ("/b", 1, 1, 2),
    ]
    assert [e["entry_rate"] for e in entries] == [0.75, 0.25]
    assert (
        entries[0]["average_time_spent_seconds"] == 6
    )  # avg(9, 5, 3) = 5.67, as on the page report
    exits = reports.exit_pages(basic, q())
    # Exits: "/b" = v3/s1 + v3/s2 = 2; "/" = v2/s1; "/a" = v1/s1.
    assert [(e["path"], e["exits"], e["exit_rate"]) for e in exits] == [
        ("/b", 2, 0.5),
        ("/", 1, 0.25),
        ("/a", 1, 0.25),
    ]
    assert exits[2]["title"] == "/A"


def test_session_duration_conformance_scenario_7(site: SiteData) -> None:
    # Durations 28, 5, 0, 35, 2, 0 on 03-10 -> (28+5+35+2)/4 = 17.5 -> 18 (zeros excluded).
    for visitor_id, seconds in enumerate([28, 5, 0, 35, 2, 0], start=1):
        hits = [("2024-03-10 10:00:00", "/")]
        if seconds:
            hits.append((f"2024-03-10 10:00:{seconds:02d}", "/x"))
        site.visit(visitor_id, 1, hits)
    site.visit(9, 1, [("2024-03-11 10:00:00", "/"), ("2024-03-11 10:00:10", "/x")])  # 10 s on 03-11
    site.write()
    days = reports.session_duration(site.data_dir, q("2024-03-10", "2024-03-12"))
    assert [d["average_time_spent_seconds"] for d in days] == [18, 10, 0]
    # Week of Monday 03-04 holds 03-10 (17.5); week of 03-11 holds 03-11 (10) and 03-12 (none).
    weeks = reports.session_duration(site.data_dir, q("2024-03-10", "2024-03-12", scale="week"))
    assert [(w["week"], w["average_time_spent_seconds"]) for w in weeks] == [
        ("2024-03-04T00:00:00Z", 18),
        ("2024-03-11T00:00:00Z", 10),
    ]
    [month] = reports.session_duration(site.data_dir, q("2024-03-10", "2024-03-12", scale="month"))
    assert month["average_time_spent_seconds"] == 14  # (17.5 + 10) / 2 = 13.75


@pytest.mark.parametrize(
    ("cur", "prev", "expected"), [(100, 50, 1.0), (50, 100, -0.5), (0, 0, 0.0), (7, 0, 1.0)]
)
def test_growth_formula_scenario_8(cur, prev, expected) -> None:
    assert metrics.growth(cur, prev) == expected


def test_growth_report(site: SiteData) -> None:
    # 03-03 (a week before 03-10): 1 visitor, 1 bounced view. 03-10: 2 visitors, 3 views, 1 bounce.
    site.visit(1, 1, [("2024-03-03 10:00:00", "/")])
    site.visit(1, 2, [("2024-03-10 10:00:00", "/"), ("2024-03-10 10:00:20", "/a")])
    site.visit(2, 1, [("2024-03-10 11:00:00", "/")])
    site.write()
    now = datetime(2024, 3, 20, tzinfo=UTC)
    g = reports.growth(site.data_dir, q(), now=now)
    assert g["visitors_growth"] == 1.0  # (2 - 1) / 1
    assert g["views_growth"] == 2.0  # (3 - 1) / 1
    assert g["bounces_growth"] == -0.5  # bounce rate 1/2 against 1/1
    assert g["time_spent_growth"] == 1.0  # 20 s against 0 s
    # A range compares with the window of equal length before it: 03-09..03-10 vs 03-07..03-08 (empty).
    assert (
        reports.growth(site.data_dir, q("2024-03-09", "2024-03-10"), now=now)["visitors_growth"]
        == 1.0
    )

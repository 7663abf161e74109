"""Imported statistics merged into the reports: a real `trail serve` on loopback, collected rows in
real segment files, imported rows written with trail.storage.imported.replace.

Collected (2024-03-10, UTC site): v1 views "/" then "/a" (Chrome, Windows, de, desktop, from
Google), v2 views "/" and bounces (Firefox, Linux, us, mobile, direct). Imported: 03-08 and 03-09,
plus rows on 03-10 that must not count (the site has collected data that day).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from segment_rows import SiteData

from tests.server import TrailServer
from trail.stats import cache
from trail.stats.filters import Filter
from trail.storage import imported

D0, D1, D2 = date(2024, 3, 8), date(2024, 3, 9), date(2024, 3, 10)
WINDOW = {"from": D0.isoformat(), "to": D2.isoformat()}
HUGE = 100_000  # imported counts on D2, a day with collected data: never counted


def visitors_row(d: date, visitors: int, views: int, sessions: int, bounces: int) -> dict[str, Any]:
    return {"date": d, "visitors": visitors, "views": views, "sessions": sessions,
            "bounces": bounces, "session_duration": 0}  # fmt: skip


VISITORS = [visitors_row(D0, 10, 30, 12, 6), visitors_row(D1, 5, 8, 6, 2),
            visitors_row(D2, HUGE, HUGE, HUGE, HUGE)]  # fmt: skip
PAGES = [
    {"date": D0, "path": "/", "visitors": 7, "views": 20, "sessions": 9, "bounces": 4},
    {"date": D0, "path": "/b", "visitors": 3, "views": 10, "sessions": 3, "bounces": 2},
    {"date": D1, "path": "/", "visitors": 5, "views": 8, "sessions": 6, "bounces": 2},
    {"date": D2, "path": "/", "visitors": HUGE, "views": HUGE, "sessions": HUGE, "bounces": 0},
]
ENTRY = [
    {"date": D0, "entry_path": "/", "visitors": 8, "sessions": 9},
    {"date": D1, "entry_path": "/", "visitors": 4, "sessions": 5},
    {"date": D1, "entry_path": "/b", "visitors": 1, "sessions": 1},
]
EXIT = [{"date": D0, "exit_path": "/a", "visitors": 3, "sessions": 3}]
REFERRERS = [
    {"date": D0, "referrer": "Google", "visitors": 4, "sessions": 5, "bounces": 2},
    {"date": D0, "referrer": "", "visitors": 6, "sessions": 7, "bounces": 4},
    {"date": D1, "referrer": "Bing", "visitors": 2, "sessions": 2, "bounces": 1},
]
DEVICES = [
    {"date": D0, "category": "Desktop", "visitors": 6},
    {"date": D0, "category": "Mobile", "visitors": 3},
    {"date": D0, "category": "Tablet", "visitors": 1},
    {"date": D1, "category": "Laptop", "visitors": 2},
]
COUNTRIES = [
    {"date": D0, "country_code": "de", "visitors": 6},
    {"date": D0, "country_code": "fr", "visitors": 4},
    {"date": D1, "country_code": "de", "visitors": 5},
    {"date": D2, "country_code": "de", "visitors": HUGE},
]
# Report -> (imported table, its dimension column, the report's columns before the dimension).
ONE_VALUE_REPORTS = {
    "browser": ("browser", "browser", []),
    "os": ("os", "os", []),
    "language": ("language", "language", []),
    "utm/source": ("utm_source", "utm_source", []),
    "utm/medium": ("utm_medium", "utm_medium", []),
    "utm/campaign": ("utm_campaign", "utm_campaign", []),
    "region": ("region", "region", ["country_code"]),
    "city": ("city", "city", ["country_code", "region"]),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    s = TrailServer(tmp_path_factory.mktemp("imported") / "data", workers=1).start()
    yield s
    s.stop()


def collected(data_dir: Path, site_id: str) -> None:
    site = SiteData(data_dir, site_id)
    site.visit(1, 1, [(f"{D2} 10:00:00", "/"), (f"{D2} 10:00:09", "/a")], browser="Chrome",
               os="Windows", country_code="de", region="BE", city="Berlin", language="de",
               referrer="https://google.com/", referrer_name="Google", utm_source="news",
               utm_medium="mail", utm_campaign="spring")  # fmt: skip
    site.visit(2, 1, [(f"{D2} 11:00:00", "/")], browser="Firefox", os="Linux", country_code="us",
               language="en", desktop=False, mobile=True)  # fmt: skip
    site.write()


def import_all(data_dir: Path, site_id: str) -> None:
    for table, rows in [("visitors", VISITORS), ("page", PAGES), ("entry_page", ENTRY),
                        ("exit_page", EXIT), ("referrer", REFERRERS), ("device", DEVICES),
                        ("country", COUNTRIES)]:  # fmt: skip
        imported.replace(data_dir, site_id, table, D0, D2, rows)
    for table, dim, _ in ONE_VALUE_REPORTS.values():
        imported.replace(data_dir, site_id, table, D0, D0,
                         [{"date": D0, dim: f"X-{table}", "visitors": 4}])  # fmt: skip


@pytest.fixture(scope="module")
def site(server: TrailServer) -> str:
    site_id, _ = server.create_site("merged.example.com")
    collected(server.data_dir, site_id)
    import_all(server.data_dir, site_id)
    return site_id


def counts(row: dict[str, Any], *keys: str) -> tuple[Any, ...]:
    return tuple(row[k] for k in keys)


def test_total_adds_the_imported_days_without_collected_data(
    server: TrailServer, site: str
) -> None:
    t = server.stats("total", site, **WINDOW)
    # collected 2 visitors, 3 views, 2 sessions, 1 bounce + imported 03-08 and 03-09
    assert counts(t, "visitors", "views", "sessions", "bounces") == (17, 41, 20, 9)
    assert t["bounce_rate"] == pytest.approx(9 / 20) and t["cr"] == 1.0
    only_collected = server.stats("total", site, **{"from": D2.isoformat(), "to": D2.isoformat()})
    assert counts(only_collected, "visitors", "views", "sessions", "bounces") == (2, 3, 2, 1)
    only_imported = server.stats("total", site, **{"from": D0.isoformat(), "to": D0.isoformat()})
    assert counts(only_imported, "visitors", "views", "sessions", "bounces") == (10, 30, 12, 6)


def test_visitor_series_per_day_and_month(server: TrailServer, site: str) -> None:
    days = server.stats("visitor", site, **WINDOW)
    assert [(d["day"][:10], d["visitors"], d["views"], d["sessions"], d["bounces"]) for d in days] == [
        ("2024-03-08", 10, 30, 12, 6), ("2024-03-09", 5, 8, 6, 2), ("2024-03-10", 2, 3, 2, 1),
    ]  # fmt: skip
    assert [d["bounce_rate"] for d in days] == pytest.approx([0.5, 2 / 6, 0.5])
    (month,) = server.stats("visitor", site, **WINDOW, scale="month")
    assert counts(month, "visitors", "views", "sessions", "bounces") == (17, 41, 20, 9)


def test_growth_and_overview_count_imported_days(server: TrailServer, site: str) -> None:
    # 03-09..03-10 (5 imported + 2 collected visitors) against 03-07..03-08 (10 imported)
    g = server.stats("growth", site, **{"from": D1.isoformat(), "to": D2.isoformat()})
    assert g["visitors_growth"] == pytest.approx((7 - 10) / 10)
    assert g["views_growth"] == pytest.approx((11 - 30) / 30)
    o = server.stats("overview", site, **WINDOW)
    assert (o["visitors"], o["views"]) == (17, 41)
    assert [d["visitors"] for d in o["visitors_time_series"]] == [10, 5, 2]


def test_pages(server: TrailServer, site: str) -> None:
    pages = server.stats("page", site, **WINDOW)
    assert [counts(p, "path", "visitors", "views", "sessions", "bounces") for p in pages] == [
        ("/", 14, 30, 17, 7), ("/b", 3, 10, 3, 2), ("/a", 1, 1, 1, 0),
    ]  # fmt: skip
    top = pages[0]
    # denominators: collected 2 visitors / 3 views + the imported page table's 15 / 38
    assert top["relative_visitors"] == pytest.approx(14 / 17)
    assert top["relative_views"] == pytest.approx(30 / 41)
    assert top["bounce_rate"] == pytest.approx(7 / 17)
    assert top["title"] == "/" and pages[1]["title"] == ""
    paged = server.stats("page", site, **WINDOW, offset="1", limit="1")
    assert [p["path"] for p in paged] == ["/b"]
    assert [p["path"] for p in server.stats("page", site, **WINDOW, search="b")] == ["/b"]
    by_views = server.stats("page", site, **WINDOW, sort="views", direction="asc")
    assert [p["path"] for p in by_views] == ["/a", "/b", "/"]


def test_entry_and_exit_pages(server: TrailServer, site: str) -> None:
    entries = server.stats("page/entry", site, **WINDOW)
    assert [counts(p, "path", "visitors", "sessions", "entries") for p in entries] == [
        ("/", 14, 16, 14), ("/b", 1, 1, 1),
    ]  # fmt: skip
    assert entries[0]["entry_rate"] == pytest.approx(14 / 17)  # 2 collected + 15 imported sessions
    exits = server.stats("page/exit", site, **WINDOW)
    assert [counts(p, "path", "visitors", "sessions", "exits") for p in exits] == [
        ("/a", 4, 4, 4), ("/", 2, 2, 1),
    ]  # fmt: skip
    assert [p["exit_rate"] for p in exits] == pytest.approx([4 / 5, 1 / 5])


def test_referrers(server: TrailServer, site: str) -> None:
    refs = server.stats("referrer", site, **WINDOW)
    got = [counts(r, "referrer_name", "referrer", "visitors", "sessions", "bounces") for r in refs]
    assert got == [("", "", 7, 8, 5), ("Google", "https://google.com/", 5, 6, 2),
                   ("Bing", "Bing", 2, 2, 1)]  # fmt: skip
    assert refs[1]["relative_visitors"] == pytest.approx(5 / 14)
    assert refs[0]["bounce_rate"] == pytest.approx(5 / 8)


def test_platform_from_device_categories(server: TrailServer, site: str) -> None:
    p = server.stats("platform", site, **WINDOW)
    assert counts(p, "platform_desktop", "platform_mobile", "platform_unknown") == (7, 4, 3)
    assert p["relative_platform_desktop"] == pytest.approx(7 / 14)


def test_countries(server: TrailServer, site: str) -> None:
    rows = server.stats("country", site, **WINDOW)
    assert [(r["country_code"], r["visitors"]) for r in rows] == [("de", 12), ("fr", 4), ("us", 1)]
    assert rows[0]["relative_visitors"] == pytest.approx(12 / 17)


@pytest.mark.parametrize("report", list(ONE_VALUE_REPORTS))
def test_each_dimension_adds_its_own_table(server: TrailServer, site: str, report: str) -> None:
    table, _, before = ONE_VALUE_REPORTS[report]
    rows = server.stats(report, site, **WINDOW)
    key = list(rows[0])[-1]
    imported_row = {"visitors": 4, **dict.fromkeys(before, ""), key: f"X-{table}"}
    assert {k: rows[0][k] for k in imported_row} == imported_row
    assert rows[0]["relative_visitors"] == pytest.approx(4 / 6)
    assert sum(r["visitors"] for r in rows) == 6  # and the 2 collected visitors


IMPORTED_TOTAL = (15, 38, 18, 8)  # the imported visitors table on 03-08 and 03-09


@pytest.mark.parametrize(
    ("params", "collected"),
    [
        ({"browser": "Chrome"}, (1, 2, 1, 0)),
        ({"path": "/a"}, (1, 1, 1, 0)),
        ({"platform": "mobile"}, (1, 1, 1, 1)),
        ({"country": "de"}, (1, 2, 1, 0)),
    ],
)
def test_a_filtered_total_adds_every_imported_visitor(
    server: TrailServer, site: str, params: dict[str, str], collected: tuple[int, ...]
) -> None:
    # Pirsch joins imported_visitors to a total whatever the filter: the daily rows cannot be
    # narrowed, so they are added whole; the conversion rate stays the collected one.
    t = server.stats("total", site, **WINDOW, **params)
    assert counts(t, "visitors", "views", "sessions", "bounces") == tuple(
        c + i for c, i in zip(collected, IMPORTED_TOTAL, strict=True)
    )
    assert t["cr"] == pytest.approx(1 / 2)
    assert t["bounce_rate"] == pytest.approx((collected[3] + 8) / (collected[2] + 18))


def test_a_filtered_visitor_series_and_growth_add_imported_days(
    server: TrailServer, site: str
) -> None:
    days = server.stats("visitor", site, **WINDOW, os="Linux")
    assert [(d["visitors"], d["views"]) for d in days] == [(10, 30), (5, 8), (1, 1)]
    # 03-09..03-10: 5 imported + 1 collected Chrome visitor, against 03-07..03-08: 10 imported
    g = server.stats("growth", site, **{"from": D1.isoformat(), "to": D2.isoformat()},
                     browser="Chrome")  # fmt: skip
    assert g["visitors_growth"] == pytest.approx((6 - 10) / 10)
    o = server.stats("overview", site, **WINDOW, browser="Chrome")
    assert (o["visitors"], o["views"]) == (16, 40)


def test_a_breakdown_narrows_its_own_table_by_its_own_filter(
    server: TrailServer, site: str
) -> None:
    def countries(**params: str) -> list[tuple[str, int]]:
        return [(r["country_code"], r["visitors"]) for r in server.stats("country", site, **WINDOW, **params)]  # fmt: skip

    assert countries(country="de") == [("de", 12)]  # 1 collected + 6 + 5 imported
    assert countries(country="!de") == [("fr", 4), ("us", 1)]
    assert countries(country="~de,fr") == [("de", 12), ("fr", 4)]
    assert countries(country="fr") == [("fr", 4)]  # imported only
    # relative values keep their denominator: 2 collected + the whole imported table (15)
    (de,) = server.stats("country", site, **WINDOW, country="de")
    assert de["relative_visitors"] == pytest.approx(12 / 17)
    pages = server.stats("page", site, **WINDOW, path="/b")
    assert [counts(p, "path", "visitors", "views", "sessions", "bounces") for p in pages] == [
        ("/b", 3, 10, 3, 2)
    ]
    assert pages[0]["relative_visitors"] == pytest.approx(3 / 17)
    assert [p["path"] for p in server.stats("page", site, **WINDOW, pattern="^/b$")] == ["/b"]
    entries = server.stats("page/entry", site, **WINDOW, entry_path="/b")
    assert [counts(p, "path", "visitors", "sessions", "entries") for p in entries] == [
        ("/b", 1, 1, 1)
    ]
    refs = server.stats("referrer", site, **WINDOW, referrer_name="Google")
    assert [counts(r, "referrer_name", "visitors", "sessions", "bounces") for r in refs] == [
        ("Google", 5, 6, 2)
    ]
    refs = server.stats("referrer", site, **WINDOW, referrer="Bing")
    assert [counts(r, "referrer", "visitors", "sessions", "bounces") for r in refs] == [
        ("Bing", 2, 2, 1)
    ]


def test_a_platform_filter_keeps_the_categories_of_that_platform(
    server: TrailServer, site: str
) -> None:
    keys = ("platform_desktop", "platform_mobile", "platform_unknown")
    desktop = server.stats("platform", site, **WINDOW, platform="desktop")
    assert counts(desktop, *keys) == (7, 0, 0)  # 1 collected + 6 "Desktop"
    assert desktop["relative_platform_desktop"] == pytest.approx(7 / 14)  # 2 + 12 imported
    other = server.stats("platform", site, **WINDOW, platform="!desktop")
    assert counts(other, *keys) == (0, 4, 3)  # 1 + 3 "Mobile"; "Tablet" 1 + "Laptop" 2


@pytest.mark.parametrize("report", list(ONE_VALUE_REPORTS))
def test_each_dimension_reads_its_own_filter_on_its_table(
    server: TrailServer, site: str, report: str
) -> None:
    table, dim, _ = ONE_VALUE_REPORTS[report]  # the column is also the query parameter
    rows = server.stats(report, site, **WINDOW, **{dim: f"X-{table}"})
    assert [(r[dim], r["visitors"]) for r in rows] == [(f"X-{table}", 4)]
    assert rows[0]["relative_visitors"] == pytest.approx(4 / 6)
    others = server.stats(report, site, **WINDOW, **{dim: f"!X-{table}"})
    assert sum(r["visitors"] for r in others) == 2  # the collected visitors only


def test_a_filter_on_another_field_leaves_a_breakdowns_imported_rows_out(
    server: TrailServer, site: str
) -> None:
    for params in ({"browser": "Chrome"}, {"path": "/a"}, {"platform": "desktop"}):
        countries = server.stats("country", site, **WINDOW, **params)
        assert [(r["country_code"], r["visitors"]) for r in countries] == [("de", 1)]
        assert countries[0]["relative_visitors"] == pytest.approx(1 / 2)
    pages = server.stats("page", site, **WINDOW, country="de")
    assert [(p["path"], p["visitors"]) for p in pages] == [("/", 1), ("/a", 1)]
    # a filter on the page report's own column and another one: the other one wins
    assert [p["path"] for p in server.stats("page", site, **WINDOW, path="/b", os="Linux")] == []
    p = server.stats("platform", site, **WINDOW, browser="Firefox")
    assert counts(p, "platform_desktop", "platform_mobile", "platform_unknown") == (0, 1, 0)


def test_a_time_of_day_leaves_imported_rows_out(server: TrailServer, site: str) -> None:
    day = {"from": D0.isoformat(), "to": D0.isoformat()}
    assert server.stats("total", site, **day)["visitors"] == 10
    assert server.stats("total", site, **day, from_time="00:00", to_time="23:59")["visitors"] == 0


def test_the_collected_day_is_found_in_the_sites_time_zone(server: TrailServer) -> None:
    # Collected at 23:30 UTC on 03-09 = 03-10 in Berlin: the Berlin site's 03-09 is imported only.
    site_id, _ = server.create_site("berlin.example.com", timezone="Europe/Berlin")
    data = SiteData(server.data_dir, site_id)
    data.visit(1, 1, [(f"{D1} 23:30:00", "/")])
    data.write()
    imported.replace(server.data_dir, site_id, "visitors", D1, D2,
                     [visitors_row(D1, 5, 5, 5, 0), visitors_row(D2, HUGE, 1, 1, 0)])  # fmt: skip
    days = server.stats("visitor", site_id, **{"from": D1.isoformat(), "to": D2.isoformat()})
    assert [d["visitors"] for d in days] == [5, 1]
    utc = server.stats(
        "visitor", site_id, **{"from": D1.isoformat(), "to": D2.isoformat()}, tz="UTC"
    )
    assert [d["visitors"] for d in utc] == [1, HUGE]


def domain(server: TrailServer, site_id: str) -> dict[str, Any]:
    r = server.call("GET", f"/api/v1/domain?id={site_id}", key=server.admin_key)
    assert r.status == 200, r.body
    (found,) = r.json()
    return found


def delete(server: TrailServer, site_id: str, kind: str, **dates: str) -> None:
    r = server.call("DELETE", "/api/v1/statistics", {"id": site_id, "kind": kind, **dates},
                    key=server.admin_key)  # fmt: skip
    assert r.status == 200, r.body


def test_replace_delete_flag_and_cache(server: TrailServer) -> None:
    site_id, _ = server.create_site("lifecycle.example.com")
    collected(server.data_dir, site_id)
    assert domain(server, site_id)["imported_statistics"] is False
    visitors = lambda: server.stats("total", site_id, **WINDOW)["visitors"]
    assert visitors() == 2
    imported.replace(server.data_dir, site_id, "visitors", D0, D1, VISITORS[:2])
    assert domain(server, site_id)["imported_statistics"] is True
    time.sleep(2.2)  # the result cache takes answers only over files quiet for 2 s
    assert visitors() == 17
    assert visitors() == 17  # now from the cache
    # Importing the same range again replaces it (the cached answer is not served).
    imported.replace(server.data_dir, site_id, "visitors", D0, D1, [visitors_row(D0, 1, 1, 1, 0)])
    assert visitors() == 3
    imported.replace(server.data_dir, site_id, "visitors", D0, D1, VISITORS[:2])
    time.sleep(2.2)
    assert visitors() == 17
    # "all" deletes the collected statistics only (Pirsch: "excluding imported statistics").
    delete(server, site_id, "all", to=D2.isoformat(), **{"from": D2.isoformat()})
    assert visitors() == 15
    delete(server, site_id, "imported", **{"from": D1.isoformat(), "to": D1.isoformat()})
    assert visitors() == 10
    assert domain(server, site_id)["imported_statistics"] is True
    delete(server, site_id, "imported")
    assert visitors() == 0
    assert domain(server, site_id)["imported_statistics"] is False


def test_an_empty_kind_deletes_imported_statistics_too(server: TrailServer) -> None:
    site_id, _ = server.create_site("everything.example.com")
    imported.replace(server.data_dir, site_id, "visitors", D0, D1, VISITORS[:2])
    delete(server, site_id, "events")
    assert server.stats("total", site_id, **WINDOW)["visitors"] == 15
    delete(server, site_id, "")
    assert server.stats("total", site_id, **WINDOW)["visitors"] == 0
    assert not imported.has_any(server.data_dir, site_id)


def test_deleting_the_site_removes_its_imported_files(server: TrailServer) -> None:
    site_id, _ = server.create_site("gone.example.com")
    imported.replace(server.data_dir, site_id, "visitors", D0, D0, VISITORS[:1])
    r = server.call("DELETE", f"/api/v1/domain?id={site_id}", key=server.admin_key)
    assert r.status == 200, r.body
    assert not (server.data_dir / "imported" / f"site={site_id}").exists()


def test_the_result_cache_is_keyed_by_the_imported_generation(tmp_path: Path) -> None:
    site_id = "3f1c9a0e-1111-4222-8333-444455556666"
    f = Filter(site_id=site_id, from_date=D0, to_date=D1)
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    manifest = tmp_path / "imported" / f"site={site_id}" / imported.MANIFEST
    quiet = time.time() - 60  # the cache takes only files quiet for a while
    cache.clear()
    imported.replace(tmp_path, site_id, "visitors", D0, D1, VISITORS[:2])
    os.utime(manifest, (quiet, quiet))
    assert cache.cached("total", tmp_path, f, compute) == 1
    assert cache.cached("total", tmp_path, f, compute) == 1  # served from the cache
    imported.replace(tmp_path, site_id, "visitors", D0, D1, VISITORS[:1])
    os.utime(manifest, (quiet, quiet))  # the same mtime: the generation alone tells them apart
    assert cache.cached("total", tmp_path, f, compute) == 2
    imported.delete(tmp_path, site_id)
    os.utime(manifest, (quiet, quiet))
    assert cache.cached("total", tmp_path, f, compute) == 3

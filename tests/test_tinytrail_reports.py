"""TinyTrail reports end to end: traffic through the real Pirsch ingest, numbers worked out by hand.

The data set (site shop.example, UTC, content group Blog = /blog/*):

DAY (2026-11-10)
  V1 Chrome/Windows, 1920 px, from Google:   10:00:00 /, 10:00:30 /pricing, 10:01:30 /signup
     -> 1 session, 3 views, 90 s, not bounced; entry /, exit /signup; Organic Search
  V2 Firefox/macOS, 1280 px, utm twitter/social/launch, referrer t.co:
                                              11:00:00 /blog/post-1, 11:00:20 /pricing
     -> 1 session, 2 views, 20 s; entry /blog/post-1, exit /pricing; Social
  V3 Safari/iPhone, 360 px, no referrer:      12:00:00 /blog/post-1 -> bounce; Direct
  V4 Chrome/Windows (other IP), 1440 px, referrer blog.example.org:
                                              13:00:00 /pricing, then events signup_complete,
                                              video_play, signup_complete (13:00:10/20/30)
     -> 1 session, 1 view, events clear the bounce, duration 0 (events move time by 1 ms);
        Referral
  Googlebot 10:30:00 /  -> dropped as a bot, logged in `requests` (include_bots counts it)
PREV (2026-11-09)
  V5 Chrome/Windows 09:00 /  -> bounce
  V6 Firefox/macOS  09:10 /, 09:11 /pricing -> 60 s

Totals on DAY: visits 4, visitors 4, views 3+2+1+1 = 7, bounces 1 (V3) -> 25 %,
average duration over sessions that lasted: (90 + 20) / 2 = 55 s.
On PREV: visits 2, visitors 2, views 3, bounces 1 -> 50 %, duration 60 s.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server import TrailServer, request
from tests.test_ingest_e2e import CHROME_WIN, FIREFOX_MAC, GOOGLEBOT, SAFARI_IPHONE, wait_for

DAY = "2026-11-10"
PREV = "2026-11-09"


def hit(day: str, at: str, path: str, ip: str, ua: str, **extra: Any) -> dict[str, Any]:
    return {
        "url": f"https://shop.example{path}",
        "ip": ip,
        "user_agent": ua,
        "time": f"{day}T{at}Z",
        **extra,
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data = tmp_path_factory.mktemp("tt-reports") / "data"
    s = TrailServer(
        data, workers=2, env={"TRAIL_SEAL_INTERVAL_MS": "200", "TRAIL_RATE_LIMIT_API": "100000/60"}
    ).start()
    try:
        site, key = s.create_site("shop.example")
        r = tt(
            s,
            "PATCH",
            f"/api/v1/websites/{site}",
            {"content_groups": [{"name": "Blog", "pattern": "/blog/*"}]},
        )
        assert r.status == 200, r.body
        hits = [
            hit(
                DAY,
                "10:00:00",
                "/",
                "81.2.69.1",
                CHROME_WIN,
                referrer="https://www.google.com/",
                screen_width=1920,
            ),
            hit(DAY, "10:00:30", "/pricing", "81.2.69.1", CHROME_WIN, screen_width=1920),
            hit(DAY, "10:01:30", "/signup", "81.2.69.1", CHROME_WIN, screen_width=1920),
            hit(
                DAY,
                "11:00:00",
                "/blog/post-1?utm_source=twitter&utm_medium=social&utm_campaign=launch",
                "81.2.69.2",
                FIREFOX_MAC,
                referrer="https://t.co/abc",
                screen_width=1280,
            ),
            hit(DAY, "11:00:20", "/pricing", "81.2.69.2", FIREFOX_MAC, screen_width=1280),
            hit(DAY, "12:00:00", "/blog/post-1", "81.2.69.3", SAFARI_IPHONE, screen_width=360),
            hit(
                DAY,
                "13:00:00",
                "/pricing",
                "81.2.69.4",
                CHROME_WIN,
                referrer="https://blog.example.org/links",
                screen_width=1440,
            ),
            hit(DAY, "10:30:00", "/", "66.249.66.1", GOOGLEBOT),
            hit(PREV, "09:00:00", "/", "81.2.69.5", CHROME_WIN, screen_width=1920),
            hit(PREV, "09:10:00", "/", "81.2.69.6", FIREFOX_MAC, screen_width=1280),
            hit(PREV, "09:11:00", "/pricing", "81.2.69.6", FIREFOX_MAC, screen_width=1280),
        ]
        r = s.call("POST", "/api/v1/hit/batch", hits, key=key)
        assert r.status == 200, r.body
        events = [
            hit(
                DAY,
                f"13:00:{sec}",
                "/pricing",
                "81.2.69.4",
                CHROME_WIN,
                event_name=name,
                screen_width=1440,
            )
            for sec, name in (
                ("10", "signup_complete"),
                ("20", "video_play"),
                ("30", "signup_complete"),
            )
        ]
        r = s.call("POST", "/api/v1/event/batch", events, key=key)
        assert r.status == 200, r.body
        env = {"server": s, "site": site}
        # Rows become visible when sealed: wait until the whole set is there.
        wait_for(
            lambda: report(env, "summary", start_date=DAY, end_date=DAY),
            lambda d: (
                d["metrics"]["pageviews"]["value"] >= 7
                and d["metrics"]["bounce_rate"]["value"] <= 25.0
            ),
        )
        wait_for(
            lambda: report(env, "custom-events", start_date=DAY, end_date=DAY),
            lambda d: len(d["rows"]) == 2,
        )
        yield env
    finally:
        s.stop()


def tt(s: TrailServer, method: str, path: str, body: Any = None, key: str | None = None) -> Any:
    headers = {"Content-Type": "application/json", "X-API-KEY": key or s.admin_key or ""}
    return request(method, s.url + path, body, headers)


def report(env: dict[str, Any], name: str, **params: str) -> Any:
    r = raw_report(env, name, **params)
    assert r.status == 200, r.body
    body = r.json()
    assert body["status"] == "success"
    return body["data"]


def raw_report(env: dict[str, Any], name: str, **params: str) -> Any:
    query = "&".join(f"{k}={v}" for k, v in {"website_id": env["site"], **params}.items())
    return tt(env["server"], "GET", f"/api/v1/reports/{name}?{query}")


def csv_rows(r: Any) -> list[dict[str, str]]:
    assert r.status == 200, r.body
    headers = {k.lower(): v for k, v in r.headers.items()}
    assert headers["content-type"].startswith("text/csv")
    assert headers["content-disposition"].startswith("attachment")
    return list(csv.DictReader(io.StringIO(r.body.decode())))


def one_day(**extra: str) -> dict[str, str]:
    return {"start_date": DAY, "end_date": DAY, **extra}


def test_summary_compares_with_the_previous_period(env: dict[str, Any]) -> None:
    d = report(env, "summary", **one_day(compare="previous_period"))
    assert d["period"] == {"start": DAY, "end": DAY}
    assert d["comparison"] == f"{PREV} to {PREV}"
    assert d["metrics"] == {
        "visits": {"value": 4, "previous": 2, "change_pct": 100.0},
        "unique_visitors": {"value": 4, "previous": 2, "change_pct": 100.0},
        "pageviews": {"value": 7, "previous": 3, "change_pct": 133.33},  # 4/3 = 1.3333
        "bounce_rate": {"value": 25.0, "previous": 50.0, "change_pct": -50.0},
        "avg_session_duration_sec": {"value": 55, "previous": 60, "change_pct": -8.33},  # -5/60
    }
    rows = csv_rows(raw_report(env, "summary", **one_day(compare="previous_period", format="csv")))
    assert rows[2] == {"metric": "pageviews", "value": "7", "previous": "3", "change_pct": "133.33"}
    assert [r["metric"] for r in rows] == list(d["metrics"])


def test_summary_without_compare_and_year_over_year(env: dict[str, Any]) -> None:
    d = report(env, "summary", **one_day())
    assert "comparison" not in d
    assert d["metrics"]["visits"] == {"value": 4}
    yoy = report(env, "summary", **one_day(compare="yoy"))
    assert yoy["comparison"] == "2025-11-10 to 2025-11-10"
    # Nothing a year ago: growth from 0 counts as +100 % (the shared growth definition).
    assert yoy["metrics"]["visits"] == {"value": 4, "previous": 0, "change_pct": 100.0}


def test_summary_include_bots_and_content_group(env: dict[str, Any]) -> None:
    m = report(env, "summary", **one_day(include_bots="true"))["metrics"]
    # Googlebot: one more visitor with one visit and one page view; rates stay about people.
    assert (m["visits"]["value"], m["unique_visitors"]["value"], m["pageviews"]["value"]) == (
        5,
        5,
        8,
    )
    assert m["bounce_rate"]["value"] == 25.0
    blog = report(env, "summary", **one_day(content_group="Blog"))["metrics"]
    # /blog/post-1 was viewed by V2 and V3; of the sessions entering there V3 bounced; V2 lasted 20 s.
    assert {k: v["value"] for k, v in blog.items()} == {
        "visits": 2,
        "unique_visitors": 2,
        "pageviews": 2,
        "bounce_rate": 50.0,
        "avg_session_duration_sec": 20,
    }


def test_pages(env: dict[str, Any]) -> None:
    d = report(env, "pages", **one_day())
    assert (d["page"], d["per_page"]) == (1, 50)
    assert d["rows"] == [
        {"path": "/pricing", "contentGroup": None, "pageviews": 3, "uniquePageviews": 3},
        {"path": "/blog/post-1", "contentGroup": "Blog", "pageviews": 2, "uniquePageviews": 2},
        {"path": "/", "contentGroup": None, "pageviews": 1, "uniquePageviews": 1},
        {"path": "/signup", "contentGroup": None, "pageviews": 1, "uniquePageviews": 1},
    ]
    second = report(env, "pages", **one_day(page="2", per_page="2"))
    assert [r["path"] for r in second["rows"]] == ["/", "/signup"]
    bots = report(env, "pages", **one_day(include_bots="true"))["rows"]
    assert bots[1] == {"path": "/", "contentGroup": None, "pageviews": 2, "uniquePageviews": 2}
    blog = report(env, "pages", **one_day(content_group="Blog"))["rows"]
    assert [r["path"] for r in blog] == ["/blog/post-1"]
    rows = csv_rows(raw_report(env, "pages", **one_day(format="csv")))
    assert list(rows[0]) == ["path", "contentGroup", "pageviews", "uniquePageviews"]
    assert rows[1] == {
        "path": "/blog/post-1",
        "contentGroup": "Blog",
        "pageviews": "2",
        "uniquePageviews": "2",
    }
    assert len(rows) == 4


def test_sources(env: dict[str, Any]) -> None:
    # Google -> Organic Search; utm_medium=social -> Social; no referrer -> Direct;
    # blog.example.org -> Referral. One visit each, ties by name.
    assert report(env, "sources", **one_day())["rows"] == [
        {"channel": "Direct", "visits": 1},
        {"channel": "Organic Search", "visits": 1},
        {"channel": "Referral", "visits": 1},
        {"channel": "Social", "visits": 1},
    ]
    assert report(env, "sources", **one_day(group_by="domain"))["rows"] == [
        {"referrer": "blog.example.org", "visits": 1},
        {"referrer": "google.com", "visits": 1},
        {"referrer": "t.co", "visits": 1},
    ]
    assert report(env, "sources", **one_day(group_by="utm"))["rows"] == [
        {"utmSource": "twitter", "utmMedium": "social", "utmCampaign": "launch", "visits": 1},
    ]
    rows = csv_rows(raw_report(env, "sources", **one_day(format="csv", per_page="1")))
    assert rows == [{"channel": "Direct", "visits": "1"}]


def test_devices(env: dict[str, Any]) -> None:
    d = report(env, "devices", **one_day())
    assert d["device_types"] == [
        {"deviceType": "desktop", "visits": 3},
        {"deviceType": "mobile", "visits": 1},
    ]
    assert d["browsers"] == [
        {"browserFamily": "Chrome", "visits": 2},
        {"browserFamily": "Firefox", "visits": 1},
        {"browserFamily": "Safari", "visits": 1},
    ]
    assert d["os_families"] == [
        {"osFamily": "Windows", "visits": 2},
        {"osFamily": "Mac", "visits": 1},
        {"osFamily": "iOS", "visits": 1},
    ]
    # 1280 and 1440 -> 1025-1440, 1920 -> 1441+, 360 -> 320-375.
    assert d["screen_resolutions"] == [
        {"bucket": "1025-1440", "visits": 2},
        {"bucket": "1441+", "visits": 1},
        {"bucket": "320-375", "visits": 1},
    ]
    rows = csv_rows(raw_report(env, "devices", **one_day(format="csv")))
    assert rows == [
        {"deviceType": "desktop", "visits": "3"},
        {"deviceType": "mobile", "visits": "1"},
    ]


def test_flow(env: dict[str, Any]) -> None:
    d = report(env, "flow", **one_day())
    assert d["landing_pages"] == [
        {"path": "/blog/post-1", "entries": 2},
        {"path": "/", "entries": 1},
        {"path": "/pricing", "entries": 1},
    ]
    # V4's events moved its exit to the event's path, /pricing.
    assert d["exit_pages"] == [
        {"path": "/pricing", "exits": 2},
        {"path": "/blog/post-1", "exits": 1},
        {"path": "/signup", "exits": 1},
    ]
    rows = csv_rows(raw_report(env, "flow", **one_day(format="csv")))
    assert rows[0] == {"path": "/blog/post-1", "entries": "2"} and len(rows) == 3


def test_funnel(env: dict[str, Any]) -> None:
    d = report(env, "funnel", **one_day(**{"steps[]": "/pricing&steps[]=signup_complete"}))
    # /pricing: V1, V2, V4; then signup_complete in the same session: V4 -> 1/3.
    assert d["funnel"] == [
        {"step": "/pricing", "sessions": 3, "conversion_rate": 100.0},
        {"step": "signup_complete", "sessions": 1, "conversion_rate": 33.33},
    ]
    three = report(env, "funnel", **one_day(**{"steps[]": "/&steps[]=/pricing&steps[]=/signup"}))
    assert [s["sessions"] for s in three["funnel"]] == [1, 1, 1]
    # Order matters: V1 saw / before /pricing, nobody saw /pricing before /.
    backwards = report(env, "funnel", **one_day(**{"steps[]": "/pricing&steps[]=/"}))
    assert [s["sessions"] for s in backwards["funnel"]] == [3, 0]
    rows = csv_rows(
        raw_report(
            env, "funnel", **one_day(format="csv", **{"steps[]": "/pricing&steps[]=/signup"})
        )
    )
    assert rows == [
        {"step": "/pricing", "sessions": "3", "conversion_rate": "100.0"},
        {"step": "/signup", "sessions": "1", "conversion_rate": "33.33"},
    ]


def test_custom_events(env: dict[str, Any]) -> None:
    d = report(env, "custom-events", **one_day())
    assert d["rows"] == [
        {"name": "signup_complete", "count": 2},
        {"name": "video_play", "count": 1},
    ]
    only = report(env, "custom-events", **one_day(event_name="video_play"))
    assert only["rows"] == [{"name": "video_play", "count": 1}]
    rows = csv_rows(raw_report(env, "custom-events", **one_day(format="csv")))
    assert rows == [{"name": "signup_complete", "count": "2"}, {"name": "video_play", "count": "1"}]


@pytest.mark.parametrize(
    ("metric", "extra", "values"),
    [
        ("pageviews", {}, [3, 7]),
        ("visits", {}, [2, 4]),
        # PREV: V5 (/), V6 (/, /pricing) = 3 pairs; DAY: V1 3, V2 2, V3 1, V4 1 = 7.
        ("unique_pageviews", {}, [3, 7]),
        ("bounce_rate", {}, [50.0, 25.0]),
        ("avg_session_duration", {}, [60, 55]),
        ("landing_page_entries", {"path": "/"}, [2, 1]),
        ("exit_page_exits", {"path": "/pricing"}, [1, 2]),
        ("pageviews", {"path": "/pricing"}, [1, 3]),
        ("pageviews", {"include_bots": "true"}, [3, 8]),
    ],
)
def test_timeseries(
    env: dict[str, Any], metric: str, extra: dict[str, str], values: list[Any]
) -> None:
    d = report(env, "timeseries", start_date=PREV, end_date=DAY, metric=metric, **extra)
    assert d["metric"] == metric and d["path"] == extra.get("path", "*")
    assert d["series"] == [{"date": PREV, "value": values[0]}, {"date": DAY, "value": values[1]}]


def test_timeseries_csv_and_default_metric(env: dict[str, Any]) -> None:
    rows = csv_rows(raw_report(env, "timeseries", start_date=PREV, end_date=DAY, format="csv"))
    assert rows == [{"date": PREV, "value": "3"}, {"date": DAY, "value": "7"}]


def test_period_all_starts_at_the_first_stored_day(env: dict[str, Any]) -> None:
    d = report(env, "summary", period="all")
    assert d["period"]["start"] == PREV
    assert d["metrics"]["visits"]["value"] == 6


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("summary", {"website_id": ""}, "website_id"),
        ("summary", {"website_id": "nope"}, "website_id"),
        ("summary", {"period": "week"}, "period"),
        ("summary", {"start_date": "2026-13-01"}, "start_date"),
        ("summary", {"start_date": DAY, "end_date": PREV}, "start_date"),
        ("summary", {"compare": "last_year"}, "compare"),
        ("summary", {"include_bots": "maybe"}, "include_bots"),
        ("summary", {"content_group": "Docs"}, "content_group"),
        ("pages", {"per_page": "501"}, "per_page"),
        ("pages", {"page": "0"}, "page"),
        ("pages", {"format": "xml"}, "format"),
        ("sources", {"group_by": "country"}, "group_by"),
        ("funnel", {"steps[]": "/only"}, "steps[]"),
        ("timeseries", {"metric": "revenue"}, "metric"),
    ],
)
def test_validation_names_the_field(
    env: dict[str, Any], name: str, params: dict[str, str], field: str
) -> None:
    r = raw_report(env, name, **params)
    assert r.status == 400, r.body
    assert r.json()["error"]["code"] == "INVALID_PAYLOAD"
    assert r.json()["error"]["message"].startswith(f"{field}: ")


def test_realtime(env: dict[str, Any]) -> None:
    s = env["server"]
    site, key = s.create_site("live.example")
    now_hits = [
        {"url": "https://live.example/", "ip": "81.2.70.1", "user_agent": CHROME_WIN},
        {"url": "https://live.example/a", "ip": "81.2.70.2", "user_agent": FIREFOX_MAC},
    ]
    assert s.call("POST", "/api/v1/hit/batch", now_hits, key=key).status == 200
    ev = {
        "url": "https://live.example/a",
        "ip": "81.2.70.2",
        "user_agent": FIREFOX_MAC,
        "event_name": "scroll_50",
    }
    assert s.call("POST", "/api/v1/event", ev, key=key).status == 200
    live = {"server": s, "site": site}
    # A seal makes a worker's tables visible one after the other: wait until all of them are.
    d = wait_for(
        lambda: report(live, "realtime"),
        lambda d: len(d["events_by_type"]) == 2 and len(d["top_pages"]) == 2,
    )
    assert d == {
        "active_visitors": 2,
        "top_pages": [{"path": "/", "visitors": 1}, {"path": "/a", "visitors": 1}],
        "events_by_type": [
            {"eventType": "page_view", "count": 2},
            {"eventType": "scroll_50", "count": 1},
        ],
    }

"""Browser collection over HTTP: TinyTrail /api/v1/collect, /js/tracker.js and the Pirsch browser
SDK routes, against a real `trail serve`.

The server trusts 127.0.0.1 as a proxy, so each test picks its visitors' IPs with
X-Forwarded-For: tests stay out of each other's per-IP rate-limit windows, and excluded IPs can be
exercised. Numbers are worked out by hand in the comments.
"""

from __future__ import annotations

import gzip
import http.client
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.server import Reply, TrailServer, request
from tests.test_ingest_e2e import CHROME_WIN, FIREFOX_MAC, GOOGLEBOT, wait_for

TRACKER = Path(__file__).parent.parent / "trail" / "static" / "tracker.js"
ORIGIN = "https://shop.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    data = tmp_path_factory.mktemp("collect") / "data"
    data.mkdir()
    env = {"TRAIL_SEAL_INTERVAL_MS": "200", "TRAIL_TRUSTED_PROXIES": "127.0.0.1"}
    s = TrailServer(data, workers=2, env=env).start()
    yield s
    s.stop()


_sites: dict[str, str] = {}


def new_site(s: TrailServer, hostname: str) -> str:
    site, _ = s.create_site(hostname)
    return site


def collect(
    s: TrailServer,
    body: Any,
    ip: str,
    ua: str = CHROME_WIN,
    origin: str | None = ORIGIN,
    content_type: str = "text/plain;charset=UTF-8",
) -> Reply:
    """POST /api/v1/collect as tracker.js does (text/plain, so no preflight) from client `ip`."""
    headers = {"Content-Type": content_type, "User-Agent": ua, "X-Forwarded-For": ip}
    if origin:
        headers["Origin"] = origin
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request("POST", s.url + "/api/v1/collect", data, headers)


def event(
    site: str, event_type: str, path: str = "/", host: str = "shop.test", **extra: Any
) -> dict[str, Any]:
    return {
        "website_id": site,
        "event_type": event_type,
        "url": f"https://{host}{path}",
        "path": path,
        **extra,
    }


def today() -> dict[str, str]:
    day = datetime.now(UTC).date().isoformat()
    return {"from": day, "to": day}


def tt_error(r: Reply) -> tuple[int, str, str]:
    body = r.json()
    assert body["status"] == "error"
    return r.status, body["error"]["code"], body["error"]["message"]


# -- tracker.js -----------------------------------------------------------------------------------


def test_tracker_js_is_served_small_and_cacheable(server: TrailServer) -> None:
    r = request("GET", server.url + "/js/tracker.js")
    assert r.status == 200
    assert r.headers["content-type"] == "application/javascript"
    assert r.headers["cache-control"] == "public, max-age=86400"
    assert r.body == TRACKER.read_bytes()
    assert len(gzip.compress(r.body, compresslevel=9)) <= 1536, (
        "tracker.js must stay <= 1.5 KB gzipped"
    )
    text = r.body.decode()
    for needle in (
        "sendBeacon",
        "keepalive",
        "pushState",
        "replaceState",
        "popstate",
        "visibilitychange",
        "data-allow-localhost",
        "data-disabled",
        "trail_ignore",
        "/api/v1/collect",
    ):
        assert needle in text, needle
    assert "import " not in text and "require(" not in text  # no dependencies


# -- CORS -----------------------------------------------------------------------------------------


def test_preflight_echoes_a_websites_origin(server: TrailServer) -> None:
    new_site(server, "shop.test")
    for origin in (ORIGIN, "http://www.shop.test:8080"):
        r = request(
            "OPTIONS",
            server.url + "/api/v1/collect",
            None,
            {
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert r.status == 204, origin
        assert r.body == b""
        assert r.headers["access-control-allow-origin"] == origin
        assert r.headers["access-control-allow-credentials"] == "true"
        assert r.headers["access-control-allow-methods"] == "POST, OPTIONS"
        assert r.headers["access-control-allow-headers"] == "Content-Type"
        assert r.headers["vary"] == "Origin"
    # An origin that is no website's: answered, but the browser is not allowed to go on.
    r = request(
        "OPTIONS",
        server.url + "/api/v1/collect",
        None,
        {"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
    )
    assert r.status == 204
    assert "access-control-allow-origin" not in r.headers
    assert r.headers["vary"] == "Origin"


def test_collect_answers_202_with_cors_for_the_websites_origin(server: TrailServer) -> None:
    site = new_site(server, "cors.test")
    r = collect(
        server, event(site, "page_view", host="cors.test"), "81.2.69.10", origin="https://cors.test"
    )
    assert (r.status, r.json()) == (202, {"status": "accepted"})
    assert r.headers["access-control-allow-origin"] == "https://cors.test"
    assert r.headers["access-control-allow-credentials"] == "true"
    assert r.headers["vary"] == "Origin"
    # application/json works too (after a preflight, in a browser).
    r = collect(
        server,
        event(site, "page_view", "/b", host="cors.test"),
        "81.2.69.10",
        origin="https://cors.test",
        content_type="application/json",
    )
    assert r.status == 202
    # Another site's origin may send (the URL decides what counts) but may not read the answer.
    r = collect(
        server, event(site, "page_view", "/c", host="cors.test"), "81.2.69.10", origin=ORIGIN
    )
    assert r.status == 202
    assert "access-control-allow-origin" not in r.headers and r.headers["vary"] == "Origin"


def test_answers_carry_each_requests_own_cors_headers(server: TrailServer) -> None:
    # The handlers reuse one answer per (status, Origin): alternating Origins of two sites and a
    # foreign one, every answer names the Origin of its own request, or none.
    first, second = new_site(server, "one.test"), new_site(server, "two.test")
    for i, (site, host, origin, allowed) in enumerate(
        [
            (first, "one.test", "https://one.test", True),
            (second, "two.test", "https://two.test", True),
            (first, "one.test", ORIGIN, False),
            (first, "one.test", "https://one.test", True),
            (second, "two.test", "https://one.test", False),
            (second, "two.test", "https://two.test", True),
        ]
    ):
        r = collect(
            server, event(site, "page_view", f"/{i}", host=host), "81.2.69.11", origin=origin
        )
        assert (r.status, r.json()) == (202, {"status": "accepted"})
        assert r.headers.get("access-control-allow-origin") == (origin if allowed else None)
        assert r.headers.get("access-control-allow-credentials") == ("true" if allowed else None)
        assert r.headers["vary"] == "Origin"
        assert r.headers["access-control-allow-methods"] == "POST, OPTIONS"


def test_a_request_with_two_origins_may_not_read_its_answer(server: TrailServer) -> None:
    # No browser sends two Origin headers. The handler reads the Origin from the flat dict the
    # engine reads (a repeated header's values joined with ", "), which names no one origin: no
    # website's Origin is echoed, whatever the order. The page view is judged by its URL and kept.
    site = new_site(server, "twice.test")
    body = json.dumps(event(site, "page_view", "/", host="twice.test")).encode()
    for origins in (("https://other.test", "https://twice.test"), ("https://twice.test",) * 2):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.putrequest("POST", "/api/v1/collect")
        conn.putheader("Content-Type", "text/plain;charset=UTF-8")
        conn.putheader("User-Agent", CHROME_WIN)
        conn.putheader("X-Forwarded-For", "81.2.69.12")
        for origin in origins:
            conn.putheader("Origin", origin)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        assert (r.status, r.read()) == (202, b'{"status":"accepted"}'), origins
        assert r.getheader("access-control-allow-origin") is None, origins
        assert r.getheader("vary") == "Origin"
        conn.close()


# -- validation -----------------------------------------------------------------------------------

SITE = "00000000-0000-4000-8000-000000000000"
VALID = {"website_id": SITE, "event_type": "page_view", "url": "https://shop.test/", "path": "/"}
INVALID = [
    ({k: v for k, v in VALID.items() if k != "website_id"}, "website_id"),
    ({**VALID, "website_id": 42}, "website_id"),
    ({k: v for k, v in VALID.items() if k != "event_type"}, "event_type"),
    ({**VALID, "event_type": "click"}, "event_type"),
    ({k: v for k, v in VALID.items() if k != "url"}, "url"),
    ({**VALID, "url": "/relative"}, "url"),
    ({**VALID, "url": "javascript:alert(1)"}, "url"),
    ({k: v for k, v in VALID.items() if k != "path"}, "path"),
    ({**VALID, "path": "blog"}, "path"),
    ({**VALID, "referrer": 5}, "referrer"),
    ({**VALID, "screen_width": "wide"}, "screen_width"),
    ({**VALID, "screen_height": -1}, "screen_height"),
    ({**VALID, "screen_width": True}, "screen_width"),
    ({**VALID, "properties": [1, 2]}, "properties"),
    ({**VALID, "event_type": "custom", "properties": {"name": 7}}, "properties.name"),
    ({**VALID, "utm_source": ["x"]}, "utm_source"),
    (b'{"website_id": ', "body"),
    (b"[]", "body"),
    (b"", "body"),
    (b"\xff\xfe{}", "body"),
    (json.dumps({**VALID, "title": "x" * 20000}).encode(), "body"),
]


@pytest.mark.parametrize(("case", "body", "field"), [(i, *c) for i, c in enumerate(INVALID)])
def test_invalid_payload_names_the_field(
    server: TrailServer, case: int, body: Any, field: str
) -> None:
    r = collect(server, body, f"81.2.70.{case + 1}")  # one client per case: no rate limit here
    status, code, message = tt_error(r)
    assert (status, code) == (400, "INVALID_PAYLOAD")
    assert message.startswith(f"{field}: "), message


# -- silent drops ---------------------------------------------------------------------------------


def test_silent_drops_answer_204(server: TrailServer) -> None:
    site = new_site(server, "drops.test")
    ok = event(site, "page_view", host="drops.test")
    cases = [
        ("unknown website", event(str(uuid.uuid4()), "page_view", host="drops.test"), CHROME_WIN),
        ("not a website id", event("nope", "page_view", host="drops.test"), CHROME_WIN),
        ("crawler", ok, GOOGLEBOT),
        ("script", ok, "curl/8.4.0"),
        ("another hostname", event(site, "page_view", host="elsewhere.test"), CHROME_WIN),
        ("close_tab without a visit", event(site, "close_tab", host="drops.test"), FIREFOX_MAC),
    ]
    for i, (label, body, ua) in enumerate(cases):
        r = collect(server, body, f"81.2.71.{i + 1}", ua=ua)
        assert (r.status, r.body) == (204, b""), label
    # Nothing above was counted: one real page view makes the site's first and only visitor.
    assert collect(server, ok, "81.2.71.100").status == 202
    total = wait_for(lambda: server.stats("total", site, **today()), lambda t: t["views"] >= 1)
    assert (total["visitors"], total["views"]) == (1, 1)


def test_excluded_ips_and_ranges_answer_204(server: TrailServer) -> None:
    site = new_site(server, "office.test")
    r = server.call(
        "PATCH",
        f"/api/v1/websites/{site}",
        {"excluded_ips": ["198.51.100.0/24", "2001:db8::7"]},
        key=server.admin_key,
    )
    assert r.status == 200, r.body
    page = event(site, "page_view", host="office.test")
    for ip in ("198.51.100.7", "198.51.100.200", "2001:db8::7"):
        assert collect(server, page, ip).status == 204, ip
    assert collect(server, page, "198.51.101.7").status == 202  # just outside the /24
    total = wait_for(lambda: server.stats("total", site, **today()), lambda t: t["views"] >= 1)
    assert (total["visitors"], total["views"]) == (1, 1)


# -- rate limit -----------------------------------------------------------------------------------


def test_collect_is_limited_to_10_per_10_seconds_per_ip(server: TrailServer) -> None:
    site = new_site(server, "busy.test")
    page = event(site, "page_view", host="busy.test")
    origin = "https://busy.test"
    # The limit counts in fixed 10-second windows of the clock: start at the top of one, so the
    # 11 requests below cannot straddle two windows on a slow machine.
    into_window = time.time() % 10
    if into_window > 1:
        time.sleep(10 - into_window + 0.05)
    answers = [collect(server, page, "81.2.72.1", origin=origin).status for _ in range(10)]
    assert answers == [202] * 10
    r = collect(server, page, "81.2.72.1", origin=origin)
    status, code, _ = tt_error(r)
    assert (status, code) == (429, "RATE_LIMITED")
    assert 1 <= int(r.headers["retry-after"]) <= 10
    assert r.headers["access-control-allow-origin"] == origin  # the page may read why
    assert (
        collect(server, page, "81.2.72.2", origin=origin).status == 202
    )  # another visitor is not affected
    # The Pirsch browser routes share the per-IP budget (in the Pirsch error shape).
    r = request(
        "GET",
        f"{server.url}/api/v1/hit?code=whatever&url=https%3A%2F%2Fbusy.test%2F",
        None,
        {"User-Agent": CHROME_WIN, "X-Forwarded-For": "81.2.72.1"},
    )
    assert r.status == 429 and "retry-after" in r.headers
    assert set(r.json()) == {"validation", "error"}


# -- event types ----------------------------------------------------------------------------------


def test_event_types_reach_the_reports(server: TrailServer) -> None:
    site = new_site(server, "types.test")
    ip = "81.2.73.1"
    sent = [
        event(
            site,
            "page_view",
            "/post",
            host="types.test",
            referrer="https://www.google.com/",
            screen_width=1920,
            screen_height=1080,
            title="A post",
            utm_campaign="launch",
        ),
        event(site, "scroll_25", "/post", host="types.test"),
        event(site, "scroll_50", "/post", host="types.test"),
        event(
            site,
            "outbound_link",
            "/post",
            host="types.test",
            properties={"url": "https://other.test/x"},
        ),
        event(
            site, "custom", "/post", host="types.test", properties={"name": "signup", "plan": "pro"}
        ),
        event(site, "custom", "/post", host="types.test", properties={"nested": {"ignored": 1}}),
        event(site, "close_tab", "/post", host="types.test"),
    ]
    for body in sent:
        assert collect(server, body, ip).status == 202, body["event_type"]
    span = today()
    events = wait_for(lambda: server.stats("events", site, **span), lambda e: len(e) >= 5)
    assert {e["name"]: e["count"] for e in events} == {
        "scroll_25": 1,
        "scroll_50": 1,
        "outbound_link": 1,
        "signup": 1,
        "custom": 1,
    }
    listed = {e["name"]: e["meta"] for e in server.stats("event/list", site, **span)}
    assert listed["outbound_link"] == {"url": "https://other.test/x"}
    assert listed["signup"] == {"plan": "pro"}  # the name is the event's, not metadata
    assert listed["custom"] == {}  # nested properties are not metadata
    # One page view; close_tab is a keep-alive, not a page view or event.
    [page] = server.stats("page", site, **span)
    assert (page["path"], page["title"], page["views"]) == ("/post", "A post", 1)
    [session] = wait_for(
        lambda: server.stats("session/list", site, **span),
        lambda s: bool(s) and s[0]["extended"] >= 1,
    )
    assert (session["extended"], session["exit_path"], session["is_bounce"]) == (1, "/post", False)
    assert (session["referrer_name"], session["utm_campaign"]) == ("Google", "launch")
    assert session["screen_class"] != ""


def test_scrolls_and_close_tab_do_not_unbounce(server: TrailServer) -> None:
    """A visitor who reads one page to the end and leaves is a bounce; one who clicks is not."""
    site = new_site(server, "bounce.test")
    for ip, extra in (("81.2.74.1", None), ("81.2.74.2", "outbound_link")):
        kinds = [
            "page_view",
            "scroll_25",
            "scroll_50",
            "scroll_75",
            *([extra] if extra else []),
            "close_tab",
        ]
        for kind in kinds:
            props = {"url": "https://x.test/"} if kind == "outbound_link" else None
            assert (
                collect(server, event(site, kind, host="bounce.test", properties=props), ip).status
                == 202
            )
    total = wait_for(
        lambda: server.stats("total", site, **today()),
        lambda t: t["sessions"] >= 2 and t["views"] >= 2 and t["bounces"] <= 1,
    )
    assert (total["visitors"], total["views"], total["bounces"]) == (2, 2, 1)


# -- the Pirsch browser SDK ------------------------------------------------------------------------


def _code(s: TrailServer, site: str) -> str:
    r = s.call("GET", f"/api/v1/domain?id={site}", key=s.admin_key)
    assert r.status == 200, r.body
    return str(r.json()[0]["identification_code"])


def test_pirsch_browser_hit_by_identification_code(server: TrailServer) -> None:
    site = new_site(server, "pa.test")
    code = _code(server, site)
    headers = {
        "User-Agent": CHROME_WIN,
        "X-Forwarded-For": "81.2.75.1",
        "Origin": "https://pa.test",
    }
    r = request(
        "OPTIONS",
        server.url + "/api/v1/hit",
        None,
        {"Origin": "https://pa.test", "Access-Control-Request-Method": "GET"},
    )
    assert r.status == 204 and r.headers["access-control-allow-origin"] == "https://pa.test"
    query = (
        f"nc=1700000000000&code={code}&url=https%3A%2F%2Fpa.test%2Fdocs%3Fx%3D1&t=Docs"
        "&ref=https%3A%2F%2Fwww.google.com%2F&w=1920&h=1080&tag_author=kim"
    )
    r = request("GET", f"{server.url}/api/v1/hit?{query}", None, headers)
    assert (r.status, r.body) == (200, b"")
    assert r.headers["access-control-allow-origin"] == "https://pa.test"
    assert r.headers["access-control-allow-credentials"] == "true"
    # Errors keep the Pirsch shape and CORS headers.
    for q, status, field in (
        (f"code={code}&url=https%3A%2F%2Fpa.test%2F&w=wide", 400, "w"),
        (f"code={code}", 400, "url"),
        ("url=https%3A%2F%2Fpa.test%2F", 400, "code"),
        ("code=nosuchcode&url=https%3A%2F%2Fpa.test%2F", 404, None),
    ):
        r = request("GET", f"{server.url}/api/v1/hit?{q}", None, headers)
        assert r.status == status, q
        assert set(r.json()) == {"validation", "error"}
        if field:
            assert field in r.json()["validation"], r.body
    # A bot answered 200 (nothing to learn for it) but is not counted.
    r = request(
        "GET",
        f"{server.url}/api/v1/hit?{query}",
        None,
        {**headers, "User-Agent": GOOGLEBOT, "X-Forwarded-For": "81.2.75.2"},
    )
    assert r.status == 200
    span = today()
    [page] = wait_for(lambda: server.stats("page", site, **span), lambda p: bool(p))
    assert (page["path"], page["title"], page["views"], page["visitors"]) == ("/docs", "Docs", 1, 1)
    tags = server.stats("tag/details", site, tag="author", **span)
    assert [(t["value"], t["visitors"]) for t in tags] == [("kim", 1)]
    assert server.stats("total", site, **span)["visitors"] == 1


def test_pirsch_browser_event_without_an_api_key(server: TrailServer) -> None:
    site = new_site(server, "pe.test")
    code = _code(server, site)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": FIREFOX_MAC,
        "X-Forwarded-For": "81.2.76.1",
        "Origin": "https://pe.test",
    }
    r = request(
        "OPTIONS",
        server.url + "/api/v1/event",
        None,
        {
            "Origin": "https://pe.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert r.status == 204
    assert r.headers["access-control-allow-origin"] == "https://pe.test"
    assert "POST" in r.headers["access-control-allow-methods"]
    body = {
        "identification_code": code,
        "url": "https://pe.test/pricing",
        "title": "Pricing",
        "event_name": "Download",
        "event_duration": 4,
        "event_meta": {"file": "a.pdf"},
        # An unauthenticated body cannot choose its own user agent or skip the bot filter.
        "user_agent": CHROME_WIN,
        "disable_bot_filter": True,
    }
    r = request("POST", server.url + "/api/v1/event", json.dumps(body).encode(), headers)
    assert (r.status, r.body) == (200, b"")
    assert r.headers["access-control-allow-origin"] == "https://pe.test"
    r = request(
        "POST",
        server.url + "/api/v1/event",
        json.dumps(body).encode(),
        {**headers, "User-Agent": GOOGLEBOT, "X-Forwarded-For": "81.2.76.2"},
    )
    assert r.status == 200  # dropped as a bot despite the body's user_agent and disable_bot_filter
    # Unknown code: 404; no code and no key: the authenticated route's 401, as before.
    r = request(
        "POST",
        server.url + "/api/v1/event",
        json.dumps({**body, "identification_code": "nosuchcode"}).encode(),
        headers,
    )
    assert r.status == 404
    r = request(
        "POST",
        server.url + "/api/v1/event",
        json.dumps({k: v for k, v in body.items() if k != "identification_code"}).encode(),
        headers,
    )
    assert r.status == 401
    r = request(
        "POST",
        server.url + "/api/v1/event",
        json.dumps({**body, "event_name": ""}).encode(),
        headers,
    )
    assert r.status == 400 and "event_name" in r.json()["validation"]
    span = today()
    [ev] = wait_for(lambda: server.stats("events", site, **span), lambda e: bool(e))
    assert (ev["name"], ev["count"], ev["visitors"], ev["average_duration_seconds"]) == (
        "Download",
        1,
        1,
        4,
    )
    [session] = server.stats("session/list", site, **span)
    assert session["browser"] == "Firefox"  # from the request's header, not the body


def test_disabled_scripts_drop_browser_hits(server: TrailServer) -> None:
    site = new_site(server, "quiet.test")
    page = event(site, "page_view", host="quiet.test")
    r = server.call("POST", "/api/v1/domain/scripts", {"domain_id": site}, key=server.admin_key)
    assert r.status == 200, r.body
    assert collect(server, page, "81.2.73.1").status == 204
    r = server.call(
        "POST", "/api/v1/domain/scripts", {"domain_id": site}, key=server.admin_key
    )  # on again
    assert r.status == 200, r.body
    assert collect(server, page, "81.2.73.2").status == 202
    total = wait_for(lambda: server.stats("total", site, **today()), lambda t: t["views"] >= 1)
    assert (total["visitors"], total["views"]) == (1, 1)

"""End to end over real ingestion: reference scenarios 5 and 9 read back through the statistics
routes, the goal and funnel definitions and their reports, the CSV export, errors."""

from __future__ import annotations

import io
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.server import TrailServer

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
DAY = "2026-11-20"
SPAN = {"from": DAY, "to": DAY}


def wait_for(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 15) -> Any:
    """Poll until sealed rows are visible; the caller then asserts exact values."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = fetch()
    return value


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    data = tmp_path_factory.mktemp("stats-e2e") / "data"
    data.mkdir()
    s = TrailServer(data, workers=2, env={"TRAIL_SEAL_INTERVAL_MS": "200"}).start()
    yield s
    if s.proc and s.proc.poll() is None:
        s.stop()


def send(s: TrailServer, key: str, hits: list[dict[str, Any]]) -> None:
    r = s.call("POST", "/api/v1/hit/batch", hits, key=key)
    assert r.status == 200, r.body


def hit(n: int, url: str, at: str = "10:00:00", **extra: Any) -> dict[str, Any]:
    """A page view of visitor n (one IP each) on DAY."""
    return {"url": url, "ip": f"81.2.69.{n}", "user_agent": CHROME, "time": f"{DAY}T{at}Z", **extra}


def get(s: TrailServer, path: str, **params: str) -> Any:
    r = s.call("GET", f"{path}?{urllib.parse.urlencode(params)}", key=s.admin_key)
    return r


def test_conformance_5_referrers(server: TrailServer) -> None:
    site, key = server.create_site("mysite.org")
    send(server, key, [
        hit(1, "https://mysite.org/", referrer="https://www.google.pl/products"),
        hit(2, "https://mysite.org/", referrer="http%3A%2F%2Finstagram.com%2F"),
        hit(3, "https://mysite.org/", referrer="https://www.example.com/"),
        hit(4, "https://mysite.org/", referrer="ReferrerName"),
        hit(5, "https://mysite.org/", referrer="http://81.2.69.200/"),
        hit(6, "https://mysite.org/?ref=google.com", referrer="https://bing.com/"),
        hit(7, "https://mysite.org/?utm_source=x", referrer="https://duckduckgo.com/"),
    ])  # fmt: skip
    rows = wait_for(lambda: server.stats("referrer", site, **SPAN),
                    lambda r: sum(x["visitors"] for x in r) >= 7)  # fmt: skip
    by_name = {r["referrer_name"]: r for r in rows}
    # Google: google.pl (name Google or the product-search entry) and ?ref=google.com (v6).
    google = [r for r in rows if r["referrer_name"].startswith("Google")]
    assert sum(r["visitors"] for r in google) == 2
    assert by_name["Instagram"]["referrer"] == "http://instagram.com"
    assert by_name["example.com"]["referrer"] == "https://www.example.com"
    assert by_name["ReferrerName"]["referrer"] == ""
    assert by_name["DuckDuckGo"]["visitors"] == 1  # utm_source does not override the header
    assert by_name[""]["visitors"] == 1  # the IP referrer is dropped
    assert "Bing" not in by_name  # ?ref= overrides the header
    assert sum(r["relative_visitors"] for r in rows) == pytest.approx(1.0)
    # A referrer filter groups by the full referrer.
    [one] = server.stats("referrer", site, **SPAN, referrer="http://instagram.com")
    assert (one["referrer"], one["referrer_name"], one["visitors"]) == (
        "http://instagram.com",
        "Instagram",
        1,
    )
    assert server.stats("total", site, **SPAN, referrer_name="Instagram")["visitors"] == 1
    assert server.stats("total", site, **SPAN, referrer_name="!Instagram")["visitors"] == 6


def test_conformance_9_channels(server: TrailServer) -> None:
    site, key = server.create_site("channels.org")
    send(server, key, [
        hit(11, "https://channels.org/?utm_medium=foo+ppc"),
        hit(12, "https://channels.org/?utm_medium=paid+bar"),
        hit(13, "https://channels.org/", referrer="https://perplexity.ai/"),
        hit(14, "https://channels.org/"),
    ])  # fmt: skip
    rows = wait_for(lambda: server.stats("channel", site, **SPAN),
                    lambda r: sum(x["visitors"] for x in r) >= 4)  # fmt: skip
    assert {r["channel"]: r["visitors"] for r in rows} == {"Direct": 2, "Paid Other": 1, "AI": 1}
    assert rows[0] == {"visitors": 2, "relative_visitors": 0.5, "channel": "Direct"}
    assert server.stats("total", site, **SPAN, channel="AI")["visitors"] == 1
    assert server.stats("options/utm/medium", site, **SPAN) == ["foo ppc", "paid bar"]


@pytest.fixture(scope="module")
def shop(server: TrailServer) -> tuple[str, str]:
    """v21: / -> /pricing -> signup event; v22: / -> /blog; v23: /pricing (bounce)."""
    site, key = server.create_site("shop.org")
    send(server, key, [
        hit(21, "https://shop.org/", "10:00:00"), hit(21, "https://shop.org/pricing", "10:00:20"),
        hit(22, "https://shop.org/", "11:00:00"), hit(22, "https://shop.org/blog/one", "11:00:30"),
        hit(23, "https://shop.org/pricing", "12:00:00"),
    ])  # fmt: skip
    event = hit(
        21, "https://shop.org/pricing", "10:00:40", event_name="signup", event_meta={"plan": "pro"}
    )
    assert server.call("POST", "/api/v1/event/batch", [event], key=key).status == 200
    wait_for(lambda: server.stats("events", site, **SPAN), lambda r: len(r) == 1)
    wait_for(lambda: server.stats("total", site, **SPAN), lambda t: t["views"] >= 5)
    return site, key


def test_goals_api_and_report(server: TrailServer, shop: tuple[str, str]) -> None:
    site, _ = shop
    admin = server.admin_key
    r = server.call("POST", "/api/v1/goal", {"domain_id": site, "name": "Pricing", "path_pattern": "/pricing",
                                               "visitors": 0, "email_reached": True}, key=admin)  # fmt: skip
    assert r.status == 200, r.body
    pricing = r.json()
    assert (pricing["pattern"], pricing["visitor_goal"], pricing["event_name"]) == (
        "(?i)^/pricing$",
        None,
        None,
    )
    r = server.call(
        "POST",
        "/api/v1/goal",
        {"domain_id": site, "name": "Blog", "path_pattern": "/blog/*"},
        key=admin,
    )
    blog = r.json()
    r = server.call("POST", "/api/v1/goal", {"domain_id": site, "name": "Signup", "event_name": "signup",
                                               "event_meta_key": "plan", "event_meta_value": "pro"}, key=admin)  # fmt: skip
    assert r.status == 200
    assert [g["name"] for g in get(server, "/api/v1/goal", id=site).json()] == [
        "Blog",
        "Pricing",
        "Signup",
    ]
    stats = {g["page_goal"]["name"]: g["stats"] for g in server.stats("goals", site, **SPAN)}
    # /pricing: v21 and v23 (2 of 3 visitors, 2 views); /blog/*: v22; signup: v21 (its session's 2 views).
    assert (stats["Pricing"]["visitors"], stats["Pricing"]["views"]) == (2, 2)
    assert stats["Pricing"]["cr"] == pytest.approx(2 / 3)
    assert (stats["Blog"]["visitors"], stats["Signup"]["visitors"], stats["Signup"]["views"]) == (
        1,
        1,
        2,
    )
    # Update keeps id and def_time; delete removes.
    r = server.call("PUT", "/api/v1/goal", {"domain_id": site, "name": "Blog posts", "path_pattern": "/blog/**",
                                              "id": blog["id"]}, key=admin)  # fmt: skip
    assert (
        r.status == 200
        and r.json()["def_time"] == blog["def_time"]
        and r.json()["pattern"] == "(?i)^/blog/.*$"
    )
    assert server.call("DELETE", f"/api/v1/goal?id={blog['id']}", key=admin).status == 200
    assert server.call("DELETE", f"/api/v1/goal?id={blog['id']}", key=admin).status == 404
    assert len(get(server, "/api/v1/goal", id=site).json()) == 2
    # The regex endpoint: test a pattern, or convert a glob.
    r = server.call(
        "POST", "/api/v1/goal/regex", {"regex": "(?i)^/path/[^/]*$", "sample": "/Path/x"}, key=admin
    )
    assert r.status == 200 and r.json()["match"] is True
    r = server.call("POST", "/api/v1/goal/regex", {"path_pattern": "/path/*"}, key=admin)
    assert r.json() == {"regex": "(?i)^/path/[^/]*$"}
    r = server.call("POST", "/api/v1/goal/regex", {"regex": "(", "sample": "x"}, key=admin)
    assert r.status == 400 and "regex" in r.json()["validation"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "path_pattern": "/a"}, "domain_id"),
        ({"name": "", "path_pattern": "/a"}, "name"),
        ({"name": "x"}, "path_pattern"),
        (
            {
                "name": "x",
                "event_name": "e",
                "custom_metric_type": "string",
                "custom_metric_key": "k",
            },
            "custom_metric_type",
        ),
        ({"name": "x", "event_name": "e", "visitors": "many"}, "visitors"),
        ({"name": "x", "event_name": "e", "delete_reached": "yes"}, "delete_reached"),
    ],
)
def test_goal_validation(
    server: TrailServer, shop: tuple[str, str], body: dict, field: str
) -> None:
    if field != "domain_id":
        body = {"domain_id": shop[0], **body}
    r = server.call("POST", "/api/v1/goal", body, key=server.admin_key)
    assert r.status == 400 and field in r.json()["validation"], r.body


def test_funnel_api_and_report(server: TrailServer, shop: tuple[str, str]) -> None:
    site, key = shop
    admin = server.admin_key
    body = {"domain_id": site, "name": "Signup", "steps": [
        {"name": "Home", "filter": {"path": ["/"]}},
        {"name": "Pricing", "filter": {"path": ["/pricing"]}},
        {"name": "Signed up", "filter": {"event_name": ["signup"]}},
    ]}  # fmt: skip
    r = server.call("POST", "/api/v1/funnel", body, key=admin)
    assert r.status == 200, r.body
    funnel = r.json()
    assert [s["step"] for s in funnel["steps"]] == [0, 1, 2]
    assert [f["id"] for f in get(server, "/api/v1/funnel", id=site).json()] == [funnel["id"]]
    out = server.stats("funnel", site, **SPAN, funnel_id=funnel["id"])
    # Sessions with "/": v21, v22; then "/pricing": v21 (v23 never saw "/"); then signup: v21.
    assert [d["visitors"] for d in out["data"]] == [2, 1, 1]
    assert [d["drop_off"] for d in out["data"]] == [0.0, 0.5, 0.0]
    assert out["definition"]["name"] == "Signup"
    r = get(server, "/api/v1/statistics/funnel", id=site, funnel_id="nope", **SPAN)
    assert r.status == 400 and "funnel_id" in r.json()["validation"]
    r = server.call("POST", "/api/v1/funnel", {**body, "steps": body["steps"][:1]}, key=admin)
    assert r.status == 400 and "steps" in r.json()["validation"]
    bad = {**body, "steps": [body["steps"][0], {"name": "x", "filter": {"platform": "tablet"}}]}
    r = server.call("POST", "/api/v1/funnel", bad, key=admin)
    assert r.status == 400 and "steps[1].filter.platform" in r.json()["validation"]
    # Access keys are write-only; an unknown domain is a 404.
    assert server.call("POST", "/api/v1/funnel", body, key=key).status in (401, 403)
    assert (
        server.call("POST", "/api/v1/funnel", {**body, "domain_id": "nope"}, key=admin).status
        == 404
    )
    assert server.call("DELETE", f"/api/v1/funnel?id={funnel['id']}", key=admin).status == 200
    assert get(server, "/api/v1/funnel", id=site).json() == []


def test_new_reports_over_http(server: TrailServer, shop: tuple[str, str]) -> None:
    site, _ = shop
    [ev] = server.stats("events", site, **SPAN)
    assert (ev["name"], ev["count"], ev["visitors"], ev["meta_keys"]) == ("signup", 1, 1, ["plan"])
    [meta] = server.stats("event/meta", site, **SPAN, event="signup", event_meta_key="plan")
    assert meta["meta_value"] == "pro"
    [page] = server.stats("event/page", site, **SPAN, event="signup")
    assert page["path"] == "/pricing"
    sessions = server.stats("session/list", site, **SPAN)
    assert len(sessions) == 3 and all(isinstance(s["visitor_id"], str) for s in sessions)
    v21 = next(s for s in sessions if s["entry_path"] == "/" and s["exit_path"] == "/pricing")
    details = server.stats("session/details", site, **SPAN, visitor_id=v21["visitor_id"],
                           session_id=str(v21["session_id"]))  # fmt: skip
    assert [d["page_view"]["path"] if d["page_view"] else d["event"]["name"] for d in details] == [
        "/",
        "/pricing",
        "signup",
    ]
    assert details[0]["page_view"]["duration_seconds"] == 20
    assert server.stats("options/page", site, **SPAN) == ["/", "/blog/one", "/pricing"]
    assert server.stats("hostname", site, **SPAN)[0]["hostname"] == "shop.org"
    overview = server.stats("overview", site, **SPAN)
    assert (overview["visitors"], overview["views"], overview["member"]) == (3, 5, 1)
    # limit hard maximum and the Go SDK's empty parameters.
    assert len(server.stats("page", site, **SPAN, limit="0", offset="0", sort="", platform="")) == 3
    assert [p["path"] for p in server.stats("page", site, **SPAN, limit="1")] == [
        "/"
    ]  # 2 visitors, ties by path
    # Percent-decoding is trail's: "~%2Fblog" is "contains /blog".
    r = server.call("GET", f"/api/v1/statistics/total?id={site}&from={DAY}&to={DAY}&path=~%2Fblog",
                    key=server.admin_key)  # fmt: skip
    assert r.json()["visitors"] == 1
    # Repeated parameters OR together.
    r = server.call("GET", f"/api/v1/statistics/total?id={site}&from={DAY}&to={DAY}&path=/blog/one&path=/pricing",
                    key=server.admin_key)  # fmt: skip
    assert r.json()["visitors"] == 3


def test_export_zip(server: TrailServer, shop: tuple[str, str]) -> None:
    site, _ = shop
    r = get(
        server, "/api/v1/statistics", id=site, pages="true", events="1", visitors="false", **SPAN
    )
    assert r.status == 200, r.body
    assert r.headers.get("content-type") == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.body))
    assert sorted(z.namelist()) == ["events.csv", "pages.csv"]
    assert z.read("pages.csv").decode().splitlines()[0].startswith("path,title,visitors")
    # Sections named like filters (os, platform, country, ...) are flags, not filters.
    r = get(server, "/api/v1/statistics", id=site, platform="true", os="1", **SPAN)
    assert r.status == 200, r.body
    z = zipfile.ZipFile(io.BytesIO(r.body))
    assert sorted(z.namelist()) == ["os.csv", "platform.csv"]
    platforms = z.read("platform.csv").decode().splitlines()
    assert len(platforms) == 2 and int(platforms[1].split(",")[0]) > 0, platforms
    r = get(server, "/api/v1/statistics", id=site, pages="true", **{"from": "bad", "to": DAY})
    assert r.status == 400 and "from" in r.json()["validation"]


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("keywords", {}, 400, None),
        ("total", {"tz": "Mars/Base"}, 400, "tz"),
        ("page", {"limit": "ten"}, 400, "limit"),
        ("page", {"visitor_id": "-1"}, 400, "visitor_id"),
        ("event/meta", {"event": "signup"}, 400, "event_meta_key"),
        ("total", {"from": "2026-13-01"}, 400, "from"),
    ],
)
def test_errors_name_the_field(server: TrailServer, shop, path, params, status, field) -> None:
    r = get(server, f"/api/v1/statistics/{path}", id=shop[0], **{**SPAN, **params})
    assert r.status == status, r.body
    body = r.json()
    assert body["error"] and (field is None or field in body["validation"])


def test_outsiders_learn_nothing(server: TrailServer, shop: tuple[str, str]) -> None:
    site, key = shop
    assert (
        server.call("GET", f"/api/v1/statistics/keywords?id={site}&from={DAY}&to={DAY}").status
        == 401
    )
    assert get(server, "/api/v1/goal", id="00000000-0000-0000-0000-000000000000").status == 404
    assert server.call("GET", f"/api/v1/goal?id={site}", key=key).status == 403  # write-only key
    assert (
        server.call(
            "GET", f"/api/v1/statistics?id={site}&from={DAY}&to={DAY}&pages=1", key=key
        ).status
        == 403
    )


def test_access_link_reads_statistics(server: TrailServer, shop: tuple[str, str]) -> None:
    site, _ = shop
    r = server.call(
        "POST",
        "/api/v1/domain/link",
        {"domain_id": site, "description": "public"},
        key=server.admin_key,
    )
    assert r.status == 200, r.body
    code = r.json()["code"]
    q = f"id={site}&from={DAY}&to={DAY}&access={code}"
    assert server.call("GET", f"/api/v1/statistics/total?{q}").json()["visitors"] == 3
    assert server.call("GET", f"/api/v1/statistics/options/page?{q}").json() == [
        "/",
        "/blog/one",
        "/pricing",
    ]
    assert server.call("GET", f"/api/v1/statistics?{q}&pages=1").status == 200
    assert (
        server.call(
            "GET", f"/api/v1/statistics/total?id={site}&from={DAY}&to={DAY}&access=wrong"
        ).status
        == 404
    )
    # An access link reads; it never writes definitions.
    assert server.call("POST", f"/api/v1/goal?access={code}", {"domain_id": site, "name": "x",
                                                                "path_pattern": "/"}).status == 401  # fmt: skip

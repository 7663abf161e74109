"""End to end: a real `trail serve` on loopback, real traffic over HTTP, numbers worked out by hand."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import TrailServer, request

CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
DAY = "2026-11-20"
FAST_SEAL = {"TRAIL_SEAL_INTERVAL_MS": "200"}


def wait_for(fetch: Callable[[], Any], done: Callable[[Any], bool], timeout: float = 15) -> Any:
    """Poll until rows are sealed and visible; the caller then asserts exact values."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = fetch()
    return value


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TrailServer]:
    s = TrailServer(tmp_path / "data", workers=2, env=FAST_SEAL).start()
    yield s
    if s.proc and s.proc.poll() is None:
        s.stop()


def hit(url: str, ip: str, ua: str, at: str, **extra: Any) -> dict[str, Any]:
    return {"url": url, "ip": ip, "user_agent": ua, "time": f"{DAY}T{at}Z", **extra}


def day_complete(total: dict[str, Any]) -> bool:
    """Both requests of send_realistic_day are visible (the event un-bounces V2: 3 -> 2)."""
    return total["views"] >= 7 and total["bounces"] <= 2


def send_realistic_day(s: TrailServer, key: str) -> None:
    """Three visitors, a reload, a timeout, an event and two bots on DAY (UTC)."""
    hits = [
        # V1: /, /pricing 30 s later, reload of /pricing 30 s after that: one session, not bounced.
        hit(
            "https://example.com/",
            "81.2.69.1",
            CHROME_WIN,
            "10:00:00",
            referrer="https://www.google.com/",
            screen_width=1920,
            accept_language="de-DE,de;q=0.9",
        ),
        hit("https://example.com/pricing", "81.2.69.1", CHROME_WIN, "10:00:30"),
        hit("https://example.com/pricing", "81.2.69.1", CHROME_WIN, "10:01:00"),
        # V2: one page view, then an event (below): the event clears the bounce.
        hit("https://example.com/", "81.2.69.2", FIREFOX_MAC, "11:00:00"),
        # V3: /blog and a reload 10 s later (still a bounce), then a new session after 2 h.
        hit("https://example.com/blog", "81.2.69.3", SAFARI_IPHONE, "12:00:00", screen_width=390),
        hit("https://example.com/blog", "81.2.69.3", SAFARI_IPHONE, "12:00:10", screen_width=390),
        hit("https://example.com/blog", "81.2.69.3", SAFARI_IPHONE, "14:00:00", screen_width=390),
        # Bots: dropped with a reason, never counted.
        hit("https://example.com/", "66.249.66.1", GOOGLEBOT, "10:30:00"),
        hit("https://example.com/", "81.2.69.9", "curl/8.4.0", "10:31:00"),
    ]
    r = s.call("POST", "/api/v1/hit/batch", hits, key=key)
    assert r.status == 200, r.body
    event = hit(
        "https://example.com/",
        "81.2.69.2",
        FIREFOX_MAC,
        "11:00:20",
        event_name="signup",
        event_meta={"plan": "pro"},
    )
    r = s.call("POST", "/api/v1/event/batch", [event], key=key)
    assert r.status == 200, r.body


def test_realistic_traffic_statistics(server: TrailServer) -> None:
    site, key = server.create_site()
    send_realistic_day(server, key)
    total = wait_for(lambda: server.stats("total", site, **{"from": DAY, "to": DAY}), day_complete)
    # visitors V1-V3; sessions V1, V2, V3a, V3b; views 3+1+2+1; bounces V3a and V3b.
    assert total["visitors"] == 3
    assert total["sessions"] == 4
    assert total["views"] == 7
    assert total["bounces"] == 2
    assert total["bounce_rate"] == pytest.approx(0.5)

    pages = {
        p["path"]: p
        for p in server.stats(
            "page", site, **{"from": DAY, "to": DAY, "include_avg_time_on_page": "true"}
        )
    }
    assert set(pages) == {"/", "/pricing", "/blog"}
    assert (pages["/"]["visitors"], pages["/"]["views"], pages["/"]["sessions"]) == (2, 2, 2)
    assert (pages["/pricing"]["visitors"], pages["/pricing"]["views"]) == (1, 2)
    assert (pages["/blog"]["visitors"], pages["/blog"]["views"], pages["/blog"]["sessions"]) == (
        1,
        3,
        2,
    )
    assert pages["/blog"]["bounces"] == 2 and pages["/blog"]["bounce_rate"] == pytest.approx(1.0)
    assert pages["/"]["bounces"] == 0
    assert pages["/"]["relative_visitors"] == pytest.approx(2 / 3)
    assert pages["/"]["relative_views"] == pytest.approx(2 / 7)
    # Time on page = duration of the next view in the session: / -> 30 s, /pricing -> 30 s, /blog -> 10 s.
    assert pages["/"]["average_time_spent_seconds"] == 30
    assert pages["/pricing"]["average_time_spent_seconds"] == 30
    assert pages["/blog"]["average_time_spent_seconds"] == 10

    days = server.stats("visitor", site, **{"from": "2026-11-19", "to": "2026-11-21"})
    assert [d["day"][:10] for d in days] == ["2026-11-19", "2026-11-20", "2026-11-21"]
    assert [d["visitors"] for d in days] == [0, 3, 0]
    assert [d["views"] for d in days] == [0, 7, 0]
    assert all(d["week"] is None and d["month"] is None for d in days)


def test_timezone_moves_hits_to_the_local_day(server: TrailServer) -> None:
    site, key = server.create_site()
    # 23:30 UTC on DAY is 00:30 on the next day in Berlin (UTC+1 in November).
    r = server.call(
        "POST",
        "/api/v1/hit/batch",
        [hit("https://example.com/", "81.2.69.7", CHROME_WIN, "23:30:00")],
        key=key,
    )
    assert r.status == 200
    utc = wait_for(
        lambda: server.stats("total", site, **{"from": DAY, "to": DAY}), lambda t: t["views"] >= 1
    )
    assert utc["views"] == 1
    berlin = server.stats("total", site, **{"from": DAY, "to": DAY, "tz": "Europe/Berlin"})
    assert berlin["views"] == 0
    next_day = server.stats(
        "total", site, **{"from": "2026-11-21", "to": "2026-11-21", "tz": "Europe/Berlin"}
    )
    assert next_day["views"] == 1


def test_single_hits_event_and_keep_alive_now(server: TrailServer) -> None:
    site, key = server.create_site()
    body = {
        "url": "https://example.com/live",
        "ip": "81.2.69.50",
        "user_agent": CHROME_WIN,
        "title": "Live",
    }
    assert server.call("POST", "/api/v1/hit", body, key=key).status == 200
    assert (
        server.call(
            "POST", "/api/v1/session", {"ip": "81.2.69.50", "user_agent": CHROME_WIN}, key=key
        ).status
        == 200
    )
    ev = {**body, "event_name": "play", "event_duration": 12, "non_interactive": True}
    assert server.call("POST", "/api/v1/event", ev, key=key).status == 200
    # Sealing writes the sessions file before the page_views file: wait for both.
    active = wait_for(
        lambda: server.stats("active", site), lambda a: a["visitors"] >= 1 and a["stats"]
    )
    assert active["visitors"] == 1
    assert [(p["path"], p["visitors"]) for p in active["stats"]] == [("/live", 1)]
    today = time.strftime("%Y-%m-%d", time.gmtime())
    total = server.stats("total", site, **{"from": today, "to": today})
    # One page view; the non-interactive event keeps the session bounced.
    assert (total["visitors"], total["views"], total["sessions"], total["bounces"]) == (1, 1, 1, 1)


def test_a_path_only_url_is_counted_under_the_site_hostname(server: TrailServer) -> None:
    # Server SDKs send the path of the request they handle (Go's r.URL.String()): "/blog?x=1".
    site, key = server.create_site("shop.example")
    path_only = {"url": "/blog?x=1", "ip": "81.2.69.60", "user_agent": CHROME_WIN,
                 "referrer": "/previous"}  # fmt: skip
    absolute = {"url": "https://shop.example/about", "ip": "81.2.69.61", "user_agent": FIREFOX_MAC}
    for body in (path_only, absolute):
        assert server.call("POST", "/api/v1/hit", body, key=key).status == 200
    today = time.strftime("%Y-%m-%d", time.gmtime())
    span = {"from": today, "to": today}
    hosts = wait_for(
        lambda: server.stats("hostname", site, **span), lambda h: sum(r["views"] for r in h) >= 2
    )
    assert [(h["hostname"], h["visitors"], h["views"]) for h in hosts] == [("shop.example", 2, 2)]
    assert server.stats("options/hostname", site, **span) == ["shop.example"]
    assert sorted(p["path"] for p in server.stats("page", site, **span)) == ["/about", "/blog"]
    # Its path-only referrer is the site itself: no referrer, as for the absolute hit.
    referrers = server.stats("referrer", site, **span)
    assert all(r["referrer"] == "" and r["referrer_name"] == "" for r in referrers), referrers
    blog = server.stats("hostname", site, path="/blog", **span)
    assert [(h["hostname"], h["views"]) for h in blog] == [("shop.example", 1)]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/hit", {"ip": "81.2.69.1", "user_agent": CHROME_WIN}, "url"),
        ("/api/v1/hit", {"url": "https://example.com/", "user_agent": CHROME_WIN}, "ip"),
        ("/api/v1/hit", {"url": 5, "ip": "81.2.69.1"}, "url"),
        (
            "/api/v1/hit",
            {"url": "https://example.com/", "ip": "1.2.3.4", "screen_width": "wide"},
            "screen_width",
        ),
        ("/api/v1/event", {"url": "https://example.com/", "ip": "81.2.69.1"}, "event_name"),
        (
            "/api/v1/hit/batch",
            [{"url": "https://example.com/", "ip": "81.2.69.1", "time": "yesterday"}],
            "[0].time",
        ),
        ("/api/v1/hit/batch", {"url": "https://example.com/"}, "body"),
        ("/api/v1/hit", b'{"url": "https://example.com/", ', "body"),
        ("/api/v1/hit", b"\xff\xfe not utf-8", "body"),
        ("/api/v1/hit", b"", "body"),
    ],
)
def test_bad_input_gets_400_naming_the_field(
    server: TrailServer, path: str, body: Any, field: str
) -> None:
    _, key = server.create_site()
    r = server.call("POST", path, body, key=key)
    assert r.status == 400, r.body
    assert field in r.json()["validation"], r.json()


def test_ingest_needs_the_sites_access_key(server: TrailServer) -> None:
    body = {"url": "https://example.com/", "ip": "81.2.69.1", "user_agent": CHROME_WIN}
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer pa_" + "x" * 45}):
        r = request(
            "POST", server.url + "/api/v1/hit", body=json.dumps(body).encode(), headers=headers
        )
        assert r.status == 401, (headers, r.body)
        assert r.json()["error"], r.body


def test_data_survives_a_restart(server: TrailServer) -> None:
    site, key = server.create_site()
    send_realistic_day(server, key)
    before = wait_for(lambda: server.stats("total", site, **{"from": DAY, "to": DAY}), day_complete)
    assert server.stop() == 0
    server.start()
    after = server.stats("total", site, **{"from": DAY, "to": DAY})
    assert after == before
    assert after["views"] == 7


def test_kill_9_loses_no_acknowledged_hit(tmp_path: Path) -> None:
    # Slow sealing: acknowledged rows sit in the WAL only, so recovery has real work to do.
    s = TrailServer(tmp_path / "data", workers=2, env={"TRAIL_SEAL_INTERVAL_MS": "60000"}).start()
    site, key = s.create_site()
    acked = 0
    sent = 0
    lock = threading.Lock()
    stop = threading.Event()

    def burst(worker: int) -> None:
        nonlocal acked, sent
        i = 0
        while not stop.is_set():
            i += 1
            # A distinct IP per hit: every acknowledged hit is its own visitor and page view.
            ip = f"81.{worker}.{i // 250 % 250}.{i % 250 + 1}"
            body = {"url": f"https://example.com/k{i % 7}", "ip": ip, "user_agent": CHROME_WIN}
            with lock:
                sent += 1
            try:
                r = s.call("POST", "/api/v1/hit", body, key=key)
            except OSError:
                continue
            if r.status == 200:
                with lock:
                    acked += 1

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(1, 5)]
    for t in threads:
        t.start()
    time.sleep(3)
    s.kill9()  # mid-burst: requests are in flight
    stop.set()
    for t in threads:
        t.join()
    assert acked > 100, "the burst should have been acknowledged many hits"
    s.env["TRAIL_SEAL_INTERVAL_MS"] = "200"
    s.start()
    today = time.strftime("%Y-%m-%d", time.gmtime())
    total = wait_for(
        lambda: s.stats("total", site, **{"from": today, "to": today}),
        lambda t: t["views"] >= acked,
    )
    s.stop()
    assert acked <= total["views"] <= sent
    assert total["visitors"] == total["views"]


def test_drops_are_logged_with_their_reason(server: TrailServer) -> None:
    import polars as pl

    site, key = server.create_site()
    send_realistic_day(server, key)
    files = server.data_dir / "segments" / "requests" / f"site={site}" / f"day={DAY}"
    wait_for(
        lambda: sorted(files.glob("*.arrow")),
        lambda fs: sum(pl.read_ipc(f).height for f in fs) >= 6,
    )
    requests = pl.concat([pl.read_ipc(f) for f in sorted(files.glob("*.arrow"))])
    bots = requests.filter(pl.col("bot")).sort("time")
    # Googlebot and curl were dropped, each with a reason; one bot=false row per new session (4).
    assert bots["user_agent"].to_list() == [GOOGLEBOT, "curl/8.4.0"]
    assert all(reason for reason in bots["bot_reason"].to_list())
    assert requests.filter(~pl.col("bot")).height == 4


def test_fewer_workers_after_a_crash_still_recover_every_hit(tmp_path: Path) -> None:
    s = TrailServer(tmp_path / "data", workers=2, env={"TRAIL_SEAL_INTERVAL_MS": "60000"}).start()
    site, key = s.create_site()
    wal_dir = s.data_dir / "wal"
    # SO_REUSEPORT spreads connections unevenly over short bursts (hundreds in a row can land on
    # one worker), so send until each worker has written a WAL file: a worker creates its first
    # generation on its first acknowledged hit, and nothing seals within the minute.
    acked = 0
    for i in range(3000):
        if acked >= 60 and all(any(wal_dir.glob(f"worker-{w}-*.wal")) for w in (0, 1)):
            break
        body = {
            "url": f"https://example.com/r{i % 3}",
            "ip": f"81.2.{70 + i // 250}.{i % 250 + 1}",
            "user_agent": CHROME_WIN,
        }
        r = s.call("POST", "/api/v1/hit", body, key=key)
        assert r.status == 200, r.body
        acked += 1
    wals = sorted(p.name for p in wal_dir.glob("*.wal"))
    assert any(name.startswith("worker-1-") for name in wals), wals  # worker 1 took some hits
    s.kill9()
    # Restart with one worker: the maintenance process replays worker 1's WAL.
    s.workers = 1
    s.env["TRAIL_SEAL_INTERVAL_MS"] = "200"
    s.start()
    today = time.strftime("%Y-%m-%d", time.gmtime())
    total = wait_for(
        lambda: s.stats("total", site, **{"from": today, "to": today}),
        lambda t: t["views"] >= acked,
    )
    s.stop()
    assert total["views"] == acked
    assert not list(wal_dir.glob("worker-1-*.wal"))


def test_geoip_fills_country_region_city(tmp_path: Path) -> None:
    mmdb = Path(__file__).resolve().parent.parent / "rust_core" / "tests" / "data" / "geo-test.mmdb"
    s = TrailServer(
        tmp_path / "data", workers=1, env={**FAST_SEAL, "TRAIL_GEOIP_DB": str(mmdb)}
    ).start()
    site, key = s.create_site()
    hits = [
        hit(
            "https://example.com/", "81.2.69.160", CHROME_WIN, "09:00:00"
        ),  # fixture: gb / England / London
        hit(
            "https://example.com/", "89.160.20.112", FIREFOX_MAC, "09:01:00"
        ),  # se / Östergötland / Linköping
        hit(
            "https://example.com/", "198.51.100.7", SAFARI_IPHONE, "09:02:00"
        ),  # not in the fixture
    ]
    assert s.call("POST", "/api/v1/hit/batch", hits, key=key).status == 200
    span = {"from": DAY, "to": DAY}
    wait_for(lambda: s.stats("total", site, **span), lambda t: t["views"] >= 3)
    countries = {c["country_code"]: c["visitors"] for c in s.stats("country", site, **span)}
    cities = {(c["country_code"], c["region"], c["city"]) for c in s.stats("city", site, **span)}
    s.stop()
    assert countries == {"gb": 1, "se": 1, "": 1}
    assert ("gb", "England", "London") in cities
    assert ("se", "Östergötland", "Linköping") in cities


def test_blocked_ips_from_config_are_dropped(tmp_path: Path) -> None:
    s = TrailServer(
        tmp_path / "data", workers=1, env={**FAST_SEAL, "TRAIL_BLOCKED_IPS": "81.2.99.0/24"}
    ).start()
    site, key = s.create_site()
    hits = [
        hit("https://example.com/", "81.2.99.5", CHROME_WIN, "08:00:00"),
        hit("https://example.com/", "81.2.98.5", CHROME_WIN, "08:00:01"),
    ]
    assert s.call("POST", "/api/v1/hit/batch", hits, key=key).status == 200
    total = wait_for(
        lambda: s.stats("total", site, **{"from": DAY, "to": DAY}), lambda t: t["views"] >= 1
    )
    s.stop()
    assert total["views"] == 1  # only 81.2.98.5
    import polars as pl

    requests = pl.read_ipc(next((s.data_dir / "segments" / "requests").rglob("*.arrow")))
    assert requests.filter(pl.col("bot"))["bot_reason"].to_list() == ["ip_blocked"]


@pytest.fixture
def uncached(tmp_path: Path) -> Iterator[TrailServer]:
    """One worker that re-reads site rules and access keys on every hit (both caches at 0)."""
    env = {**FAST_SEAL, "TRAIL_RULES_CACHE_MS": "0", "TRAIL_ACCESS_KEY_CACHE_MS": "0"}
    s = TrailServer(tmp_path / "data", workers=1, env=env).start()
    yield s
    s.stop()


def test_rules_cache_ms_0_applies_a_new_filter_to_the_next_hit(uncached: TrailServer) -> None:
    import polars as pl

    s = uncached
    site, key = s.create_site()
    first = {"url": "https://example.com/a", "ip": "81.2.69.1", "user_agent": CHROME_WIN}
    assert s.call("POST", "/api/v1/hit", first, key=key).status == 200  # the worker has the rules
    body = {"domain_id": site, "type": "path", "filter": "/blocked/*"}
    assert s.call("POST", "/api/v1/filter", body, key=s.admin_key).status == 200
    second = {"url": "https://example.com/blocked/x", "ip": "81.2.69.2", "user_agent": CHROME_WIN}
    assert s.call("POST", "/api/v1/hit", second, key=key).status == 200  # no wait in between
    today = time.strftime("%Y-%m-%d", time.gmtime())
    files = s.data_dir / "segments" / "requests" / f"site={site}" / f"day={today}"
    wait_for(
        lambda: sorted(files.glob("*.arrow")),
        lambda fs: sum(pl.read_ipc(f).height for f in fs) >= 2,
    )
    requests = pl.concat([pl.read_ipc(f) for f in sorted(files.glob("*.arrow"))])
    assert requests.filter(pl.col("bot"))["bot_reason"].to_list() == ["filter_path"]


def test_access_key_cache_ms_0_refuses_a_deleted_key_at_once(uncached: TrailServer) -> None:
    s = uncached
    site, key = s.create_site()
    body = {"url": "https://example.com/", "ip": "81.2.69.1", "user_agent": CHROME_WIN}
    assert s.call("POST", "/api/v1/hit", body, key=key).status == 200  # the worker knows the key
    clients = s.call("GET", f"/api/v1/client?id={site}", key=s.admin_key).json()
    assert len(clients) == 1, clients
    r = s.call("DELETE", f"/api/v1/client?id={clients[0]['id']}", key=s.admin_key)
    assert r.status == 200, r.body
    assert s.call("POST", "/api/v1/hit", body, key=key).status == 401  # no wait in between

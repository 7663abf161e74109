"""One rule set for every ingest path, through a real server: the Pirsch API (single hits and
batch items) refuses what the browser paths (TinyTrail collect, pa.js) refuse, each with a 400
naming the field; a batch item's `time` must lie within the configured window around now.

The rules and their numbers live in rust_core/src/validate.rs (table-driven tests there); these
tests check that every HTTP path reaches them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.server import Reply, TrailServer, request
from tests.test_ingest_e2e import CHROME_WIN

HOST = "valid.test"
# A narrow window, so the test also shows that the settings reach the engine.
ENV = {
    "TRAIL_SEAL_INTERVAL_MS": "200",
    "TRAIL_TRUSTED_PROXIES": "127.0.0.1",
    "TRAIL_RATE_LIMIT_COLLECT": "0",
    "TRAIL_RATE_LIMIT_API": "0",
    "TRAIL_MAX_HIT_AGE_DAYS": "30",
    "TRAIL_MAX_HIT_FUTURE_SECONDS": "600",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    data = tmp_path_factory.mktemp("validation") / "data"
    data.mkdir()
    s = TrailServer(data, workers=1, env=ENV).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def site(server: TrailServer) -> tuple[str, str]:
    """(site id, pa_ access key) of a site on HOST."""
    return server.create_site(HOST)


def at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def page(**extra: Any) -> dict[str, Any]:
    return {"url": f"https://{HOST}/", "ip": "81.2.69.1", "user_agent": CHROME_WIN, **extra}


def refused_field(r: Reply) -> str:
    """The one field a Pirsch 400 names."""
    assert r.status == 400, (r.status, r.body)
    body = r.json()
    assert body["error"] and len(body["validation"]) == 1, body
    return str(next(iter(body["validation"])))


# -- the Pirsch API: what the browser paths refuse, refused here too ------------------------------

INVALID = [
    # (route, extra fields, field)
    ("hit", {"screen_width": -1}, "screen_width"),
    ("hit", {"screen_height": -1080}, "screen_height"),
    ("hit", {"screen_width": 100_001}, "screen_width"),
    ("hit", {"url": "javascript:alert(1)"}, "url"),
    ("hit", {"url": "ftp://valid.test/file"}, "url"),
    ("hit", {"url": "valid.test/no-scheme"}, "url"),
    ("hit", {"ip": "not-an-ip"}, "ip"),
    ("hit", {"ip": "999.1.1.1"}, "ip"),
    ("hit", {"referrer": "https://r.test/" + "x" * 9000}, "referrer"),
    ("event", {"event_name": "play", "event_duration": -5}, "event_duration"),
    ("event", {"event_name": "play", "event_duration": 10**9}, "event_duration"),
    ("event", {"event_name": "play", "event_duration": "forever"}, "event_duration"),
    ("session", {"url": "mailto:someone@valid.test"}, "url"),
]


@pytest.mark.parametrize(("route", "extra", "field"), INVALID)
def test_a_single_hit_is_refused_naming_the_field(
    server: TrailServer, site: tuple[str, str], route: str, extra: dict[str, Any], field: str
) -> None:
    _, key = site
    r = server.call("POST", f"/api/v1/{route}", page(**extra), key=key)
    assert refused_field(r) == field


@pytest.mark.parametrize(("route", "extra", "field"), INVALID)
def test_a_batch_item_is_refused_naming_the_item_and_field(
    server: TrailServer, site: tuple[str, str], route: str, extra: dict[str, Any], field: str
) -> None:
    _, key = site
    good = page(event_name="play", time=at(-timedelta(minutes=5)))
    bad = {**good, **extra}
    r = server.call("POST", f"/api/v1/{route}/batch", [good, bad], key=key)
    assert refused_field(r) == f"[1].{field}"


def test_accepted_edges_still_pass(server: TrailServer, site: tuple[str, str]) -> None:
    _, key = site
    ok = [
        ("hit", page(screen_width=0, screen_height=100_000, title="t" * 5000)),
        ("hit", page(url="/a/path?only=1", ip="81.2.69.2:51234")),  # the Go SDK's defaults
        ("hit", page(ip="10.0.0.1, 81.2.69.3")),  # a raw X-Forwarded-For list
        ("event", page(event_name="play", event_duration=86_400)),
        ("event", page(event_name="play", event_duration="12")),
        ("session", {"ip": "81.2.69.1", "user_agent": CHROME_WIN}),
    ]
    for route, body in ok:
        r = server.call("POST", f"/api/v1/{route}", body, key=key)
        assert r.status == 200, (route, body, r.body)


# -- batch times ----------------------------------------------------------------------------------

BAD_TIMES: list[Any] = [
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    # relative to the clock when the test runs (ids fixed at collection, the same in every
    # pytest-xdist worker)
    pytest.param(-timedelta(days=31), id="31-days-ago"),  # older than max_hit_age_days = 30
    pytest.param(timedelta(hours=1), id="in-an-hour"),  # past max_hit_future_seconds = 600
    "2026-11-20T10:00:00",  # no timezone
    "2026-11-20",
    "2026-11-20 10:00",
    "+275760-09-13T00:00:00Z",
    "yesterday",
    "",
    1_795_168_800,
]


@pytest.mark.parametrize("time", BAD_TIMES)
@pytest.mark.parametrize("route", ["hit", "event", "session"])
def test_a_batch_time_outside_the_window_is_a_400_naming_time(
    server: TrailServer, site: tuple[str, str], route: str, time: Any
) -> None:
    _, key = site
    if isinstance(time, timedelta):
        time = at(time)
    good = page(event_name="play", time=at(-timedelta(minutes=1)))
    r = server.call("POST", f"/api/v1/{route}/batch", [good, {**good, "time": time}], key=key)
    assert refused_field(r) == "[1].time"


def test_times_inside_the_window_are_accepted(server: TrailServer, site: tuple[str, str]) -> None:
    _, key = site
    items = [
        page(time=at(-timedelta(days=29))),
        page(time=at(timedelta(minutes=5))),
        page(time=at(timedelta(0)).replace("Z", "+00:00")),
        page(time=(datetime.now(UTC) - timedelta(hours=1)).astimezone().isoformat()),
        page(time=None),  # no time: the item happened now
        page(),
    ]
    r = server.call("POST", "/api/v1/hit/batch", items, key=key)
    assert r.status == 200, r.body


def test_a_single_hit_ignores_time(server: TrailServer, site: tuple[str, str]) -> None:
    # Pirsch honours `time` on batch items only; a single hit happens when it arrives.
    _, key = site
    r = server.call("POST", "/api/v1/hit", page(time="0000-01-01T00:00:00Z"), key=key)
    assert r.status == 200, r.body


# -- the browser paths refuse the same inputs -----------------------------------------------------


def collect(server: TrailServer, site_id: str, ip: str, **extra: Any) -> Reply:
    body = {
        "website_id": site_id,
        "event_type": "page_view",
        "url": f"https://{HOST}/",
        "path": "/",
        **extra,
    }
    headers = {"Content-Type": "text/plain", "User-Agent": CHROME_WIN, "X-Forwarded-For": ip}
    return request("POST", server.url + "/api/v1/collect", json.dumps(body).encode(), headers)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"screen_width": -1}, "screen_width"),
        ({"screen_height": 100_001}, "screen_height"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "ftp://valid.test/file"}, "url"),
        ({"url": "http://[::1"}, "url"),
    ],
)
def test_collect_refuses_the_same_inputs(
    server: TrailServer, site: tuple[str, str], extra: dict[str, Any], field: str
) -> None:
    site_id, _ = site
    r = collect(server, site_id, "81.2.80.1", **extra)
    assert r.status == 400, r.body
    body = r.json()
    assert body["error"]["code"] == "INVALID_PAYLOAD"
    assert body["error"]["message"].startswith(f"{field}: "), body


def test_collect_cuts_a_long_title_like_the_api(server: TrailServer, site: tuple[str, str]) -> None:
    site_id, _ = site
    assert collect(server, site_id, "81.2.80.2", title="t" * 5000).status == 202


def identification_code(server: TrailServer, site_id: str) -> str:
    r = server.call("GET", f"/api/v1/domain?id={site_id}", key=server.admin_key)
    assert r.status == 200, r.body
    return str(r.json()[0]["identification_code"])


@pytest.mark.parametrize("duration", [-5, 10**9, "forever"])
def test_browser_events_refuse_absurd_durations(
    server: TrailServer, site: tuple[str, str], duration: Any
) -> None:
    site_id, _ = site
    body = {
        "identification_code": identification_code(server, site_id),
        "url": f"https://{HOST}/",
        "event_name": "play",
        "event_duration": duration,
    }
    headers = {
        "Content-Type": "application/json",
        "User-Agent": CHROME_WIN,
        "X-Forwarded-For": "81.2.80.3",
    }
    r = request("POST", server.url + "/api/v1/event", json.dumps(body).encode(), headers)
    assert refused_field(r) == "event_duration"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"w": "-5"}, "w"),
        ({"h": "100001"}, "h"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "ftp://valid.test/"}, "url"),
    ],
)
def test_pa_js_hits_refuse_the_same_inputs(
    server: TrailServer, site: tuple[str, str], params: dict[str, str], field: str
) -> None:
    site_id, _ = site
    query = {"code": identification_code(server, site_id), "url": f"https://{HOST}/", **params}
    qs = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
    headers = {"User-Agent": CHROME_WIN, "X-Forwarded-For": "81.2.80.4"}
    r = request("GET", f"{server.url}/api/v1/hit?{qs}", None, headers)
    assert refused_field(r) == field

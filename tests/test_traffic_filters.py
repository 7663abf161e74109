"""Traffic filters (`/api/v1/filter`) end to end: CRUD and validation, then hits through a real
server that the filters drop, with their reason in the `requests` log. Also `/api/v1/billing`,
whose page views come from the same data."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.server import CACHE_MS, TrailServer
from tests.test_ingest_e2e import CHROME_WIN, FIREFOX_MAC, SAFARI_IPHONE, wait_for

GEO_DB = Path(__file__).resolve().parents[1] / "rust_core" / "tests" / "data" / "geo-test.mmdb"
ENV = {"TRAIL_SEAL_INTERVAL_MS": "200", "TRAIL_GEOIP_DB": str(GEO_DB)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    s = TrailServer(tmp_path_factory.mktemp("filters") / "data", workers=2, env=ENV).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def refused_site(server: TrailServer) -> str:
    return server.create_site("refused.example")[0]


def save(s: TrailServer, body: dict[str, Any], key: str | None = None) -> Any:
    return s.call("POST", "/api/v1/filter", body, key=key or s.admin_key)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "ip", "filter": "10.0.0.0/33"}, "filter"),
        ({"type": "ip", "filter": "81.2.69.300"}, "filter"),
        ({"type": "ip", "filter": "example.com"}, "filter"),
        ({"type": "address", "filter": "10.0.0.1"}, "type"),
        ({"filter": "10.0.0.1"}, "type"),
        ({"type": "ip"}, "filter"),
        ({"type": "ip", "filter": 42}, "filter"),
        ({"type": "country", "filter": "GBR"}, "filter"),
        ({"type": "hostname", "filter": "https://example.com/"}, "filter"),
        ({"type": "path", "filter": "admin"}, "filter"),
        ({"type": "ip", "filter": "10.0.0.1", "description": ["x"]}, "description"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(
    server: TrailServer, refused_site: str, body: dict[str, Any], field: str
) -> None:
    site = refused_site
    r = save(server, {"domain_id": site, **body})
    assert r.status == 400, r.body
    assert field in r.json()["validation"]
    assert server.call("GET", f"/api/v1/filter?domain_id={site}", key=server.admin_key).json() == []


def test_filter_crud_round_trip(server: TrailServer) -> None:
    site, key = server.create_site("crud.example")
    r = save(
        server, {"domain_id": site, "type": "ip", "filter": "10.0.0.0/8", "description": "office"}
    )
    assert r.status == 200, r.body
    created = r.json()
    assert {k: created[k] for k in ("domain_id", "type", "filter", "description")} == {
        "domain_id": site,
        "type": "ip",
        "filter": "10.0.0.0/8",
        "description": "office",
    }
    assert len(created["id"]) == 10 and created["def_time"].endswith("Z")
    r = save(
        server, {"id": created["id"], "type": "country", "filter": "se", "description": "no sweden"}
    )
    assert r.status == 200, r.body
    assert (r.json()["type"], r.json()["filter"], r.json()["def_time"]) == (
        "country",
        "SE",
        created["def_time"],
    )
    listed = server.call("GET", f"/api/v1/filter?domain_id={site}", key=server.admin_key).json()
    assert [(f["id"], f["filter"]) for f in listed] == [(created["id"], "SE")]
    # The write-only access key and a domain client of another site learn nothing.
    assert server.call("GET", f"/api/v1/filter?domain_id={site}", key=key).status == 403
    other, _ = server.create_site("other.example")
    client = server.call(
        "POST", "/api/v1/client", {"domain_id": other, "type": "oauth"}, key=server.admin_key
    ).json()
    token = server.call(
        "POST",
        "/api/v1/token",
        {"client_id": client["client_id"], "client_secret": client["client_secret"]},
    ).json()["access_token"]
    assert server.call("GET", f"/api/v1/filter?domain_id={site}", key=token).status == 404
    assert server.call("DELETE", f"/api/v1/filter?id={created['id']}", key=token).status == 404
    assert (
        save(server, {"id": created["id"], "type": "ip", "filter": "1.2.3.4"}, key=token).status
        == 404
    )
    assert server.call("GET", f"/api/v1/filter?domain_id={site}").status == 401
    assert server.call("GET", "/api/v1/filter", key=server.admin_key).status == 400
    # Delete: gone, and deleting again is a 404.
    assert (
        server.call("DELETE", f"/api/v1/filter?id={created['id']}", key=server.admin_key).status
        == 200
    )
    assert server.call("GET", f"/api/v1/filter?domain_id={site}", key=server.admin_key).json() == []
    assert (
        server.call("DELETE", f"/api/v1/filter?id={created['id']}", key=server.admin_key).status
        == 404
    )


def test_filters_drop_hits_with_their_reason(server: TrailServer) -> None:
    import polars as pl

    site, key = server.create_site("example.com")
    # staging.example.com is an allowed alternative, then filtered: the filter must be what drops it.
    r = server.call(
        "POST",
        "/api/v1/domain/alternative",
        {"domain_id": site, "hostname": "staging.example.com"},
        key=server.admin_key,
    )
    assert r.status == 200, r.body
    filters = [
        ("ip", "10.0.0.0/8"),
        ("ip", "81.2.69.7"),
        ("path", "/admin/*"),
        ("user_agent", "QA-Probe"),
        ("country", "SE"),
        ("hostname", "staging.example.com"),
    ]
    for kind, text in filters:
        assert save(server, {"domain_id": site, "type": kind, "filter": text}).status == 200
    time.sleep(3 * CACHE_MS / 1000)  # workers re-read a site's rules at most every CACHE_MS

    def hit(url: str, ip: str, ua: str) -> dict[str, Any]:
        return {"url": url, "ip": ip, "user_agent": ua}

    hits = [
        hit("https://example.com/", "81.2.69.1", CHROME_WIN),  # kept (GB)
        hit("https://example.com/pricing", "81.2.69.2", FIREFOX_MAC),  # kept (GB)
        hit("https://example.com/", "10.1.2.3", CHROME_WIN),  # filter_ip (CIDR)
        hit("https://example.com/", "81.2.69.7", FIREFOX_MAC),  # filter_ip (single address)
        hit("https://example.com/admin/users", "81.2.69.3", SAFARI_IPHONE),  # filter_path
        hit("https://example.com/", "81.2.69.4", CHROME_WIN + " QA-Probe/1.0"),  # filter_user_agent
        hit("https://example.com/", "89.160.20.5", CHROME_WIN),  # filter_country (SE)
        hit("https://staging.example.com/", "81.2.69.5", CHROME_WIN),  # filter_hostname
    ]
    for h in hits:  # one by one: the /hit route, as a server-side integration sends them
        assert server.call("POST", "/api/v1/hit", h, key=key).status == 200
    today = datetime.now(UTC).date().isoformat()
    files = server.data_dir / "segments" / "requests" / f"site={site}" / f"day={today}"
    wait_for(
        lambda: sorted(files.glob("*.arrow")),
        lambda fs: sum(pl.read_ipc(f).height for f in fs) >= 8,
    )
    total = wait_for(
        lambda: server.stats("total", site, **{"from": today, "to": today}),
        lambda t: t["views"] >= 2,
    )
    # Only the first two hits count: two visitors, two page views.
    assert (total["visitors"], total["views"]) == (2, 2)
    requests = pl.concat([pl.read_ipc(f) for f in sorted(files.glob("*.arrow"))])
    dropped = requests.filter(pl.col("bot"))
    assert sorted(dropped["bot_reason"].to_list()) == sorted(
        [
            "filter_ip",
            "filter_ip",
            "filter_path",
            "filter_user_agent",
            "filter_country",
            "filter_hostname",
        ]
    )
    assert requests.filter(~pl.col("bot")).height == 2

    # Billing: page views per site for the period, from the same statistics.
    r = server.call("GET", f"/api/v1/billing?from={today}&to={today}", key=server.admin_key)
    assert r.status == 200, r.body
    usage = {row["domain"]["hostname"]: row["page_views"] for row in r.json()}
    assert usage["example.com"] == 2
    assert usage["crud.example"] == 0
    assert (
        r.json() == server.call("GET", "/api/v1/billing", key=server.admin_key).json()
    )  # default: this month
    assert (
        server.call("GET", "/api/v1/billing", key=key).status == 403
    )  # access keys are write-only
    assert server.call("GET", "/api/v1/billing").status == 401
    r = server.call("GET", "/api/v1/billing?from=2026-13-01", key=server.admin_key)
    assert r.status == 400 and "from" in r.json()["validation"]

"""Short links (`/api/v1/link`) and the public redirect `/l/<id>` through a real server: the click
is recorded as the link's event with its UTM values, then answered with a 302."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.server import TrailServer
from tests.test_ingest_e2e import CHROME_WIN, wait_for

FAST_SEAL = {"TRAIL_SEAL_INTERVAL_MS": "200"}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def follow(s: TrailServer, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects, as a browser's first request: (status, headers, body)."""
    opener = urllib.request.build_opener(_NoRedirect)
    req = urllib.request.Request(
        s.url + path, headers={"User-Agent": CHROME_WIN, "Accept-Language": "de-DE"}
    )
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    s = TrailServer(tmp_path_factory.mktemp("links") / "data", workers=2, env=FAST_SEAL).start()
    yield s
    s.stop()


def create(s: TrailServer, site: str, **fields: Any) -> Any:
    body = {
        "domain_id": site,
        "name": "promo",
        "urls": [{"url": "https://example.com/landing?x=1"}],
        **fields,
    }
    return s.call("POST", "/api/v1/link", body, key=s.admin_key)


def test_link_validation_and_crud(server: TrailServer) -> None:
    site, key = server.create_site("crud.example")
    for fields, field in [
        ({"name": ""}, "name"),
        ({"urls": []}, "urls"),
        ({"urls": [{"url": "javascript:x"}]}, "urls"),
        ({"urls": "https://example.com"}, "urls"),
        ({"expires_at": "soon"}, "expires_at"),
        ({"expired_url": "nope"}, "expired_url"),
        ({"webhook_endpoint": "ftp://x"}, "webhook_endpoint"),
        ({"tags": "a"}, "tags"),
        ({"allow_indexing": "yes"}, "allow_indexing"),
    ]:
        r = create(server, site, **fields)
        assert r.status == 400 and field in r.json()["validation"], (fields, r.body)
    r = create(
        server,
        site,
        event_name="Click",
        tags=["spring"],
        webhook_endpoint="https://hooks.example.com/x",
    )
    assert r.status == 200, r.body
    link = r.json()
    assert (link["name"], link["event_name"], link["tags"], link["path"]) == (
        "promo",
        "Click",
        ["spring"],
        f"/l/{link['id']}",
    )
    hooks = server.call("GET", f"/api/v1/webhook?domain_id={site}", key=server.admin_key).json()
    assert [(h["id"], h["event"], h["endpoint"]) for h in hooks] == [
        (link["webhook_id"], "Click", "https://hooks.example.com/x")
    ]
    r = server.call(
        "POST",
        "/api/v1/link",
        {"id": link["id"], "name": "promo 2", "urls": [{"url": "https://example.com/b"}]},
        key=server.admin_key,
    )
    assert (r.json()["name"], r.json()["webhook_id"]) == (
        "promo 2",
        "",
    )  # no endpoint any more: webhook removed
    assert (
        server.call("GET", f"/api/v1/webhook?domain_id={site}", key=server.admin_key).json() == []
    )
    assert [
        x["id"]
        for x in server.call(
            "GET", f"/api/v1/link?id={site}&search=PROMO", key=server.admin_key
        ).json()
    ] == [link["id"]]
    assert (
        server.call("GET", f"/api/v1/link?id={site}&search=zzz", key=server.admin_key).json() == []
    )
    assert server.call("GET", f"/api/v1/link?id={site}", key=key).status == 403
    assert (
        server.call("DELETE", f"/api/v1/link?id={link['id']}", key=server.admin_key).status == 200
    )
    assert follow(server, f"/l/{link['id']}")[0] == 404
    assert follow(server, "/l/unknown")[0] == 404


def test_click_records_the_event_with_utm_and_redirects(server: TrailServer) -> None:
    import polars as pl

    site, _ = server.create_site("example.com")
    utm = {"utm_source": "news", "utm_medium": "email", "utm_campaign": "launch"}
    link = create(server, site, event_name="newsletter", **utm).json()
    status, headers, _ = follow(server, f"/l/{link['id']}")
    assert status == 302
    assert (
        headers["location"]
        == "https://example.com/landing?x=1&utm_source=news&utm_medium=email&utm_campaign=launch"
    )
    assert headers["x-robots-tag"] == "noindex"
    # A destination on another host is recorded under the link's own path on the site.
    away = create(
        server,
        site,
        name="partner",
        event_name="partner click",
        urls=[{"url": "https://partner.org/p"}],
        utm_source="partner",
    ).json()
    status, headers, _ = follow(server, f"/l/{away['id']}")
    assert (status, headers["location"]) == (302, "https://partner.org/p?utm_source=partner")

    today = datetime.now(UTC).date().isoformat()
    period = {"from": today, "to": today}
    events = wait_for(lambda: server.stats("events", site, **period), lambda e: len(e) >= 2)
    assert sorted((e["name"], e["visitors"], e["count"]) for e in events) == [
        ("newsletter", 1, 1),
        ("partner click", 1, 1),
    ]
    sources = {s["utm_source"]: s["visitors"] for s in server.stats("utm/source", site, **period)}
    assert sources == {"news": 1, "partner": 1}
    files = sorted(
        (server.data_dir / "segments" / "events" / f"site={site}" / f"day={today}").glob("*.arrow")
    )
    rows = pl.concat([pl.read_ipc(f) for f in files]).sort("event_name")
    assert rows["path"].to_list() == ["/landing", f"/l/{away['id']}"]
    meta = [
        dict(zip(k, v))
        for k, v in zip(rows["event_meta_keys"].to_list(), rows["event_meta_values"].to_list())
    ]
    assert meta == [
        {"link": "promo", "link_id": link["id"]},
        {"link": "partner", "link_id": away["id"]},
    ]


def test_expired_and_protected_links(server: TrailServer) -> None:
    site, _ = server.create_site("expiry.example")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    gone = create(server, site, expires_at=past, expired_url="https://example.com/expired").json()
    status, headers, _ = follow(server, f"/l/{gone['id']}")
    assert (status, headers["location"]) == (302, "https://example.com/expired")
    assert follow(server, f"/l/{create(server, site, expires_at=past).json()['id']}")[0] == 410
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    live = create(server, site, expires_at=future, password="s3cret").json()
    assert live["password_protected"] is True and "password" not in live
    assert follow(server, f"/l/{live['id']}")[0] == 401
    assert follow(server, f"/l/{live['id']}?password=wrong")[0] == 401
    assert follow(server, f"/l/{live['id']}?password=s3cret")[0] == 302

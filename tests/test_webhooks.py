"""Webhooks: CRUD through a real server; delivery by the real maintenance process to a local
HTTP receiver; and, in-process against a real data dir, retries with backoff and disabling."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.receiver import receiver
from tests.server import TrailServer
from tests.test_ingest_e2e import FIREFOX_MAC

FAST_SEAL = {"TRAIL_SEAL_INTERVAL_MS": "200"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    s = TrailServer(tmp_path_factory.mktemp("webhooks") / "data", workers=2, env=FAST_SEAL).start()
    yield s
    s.stop()


def signup(s: TrailServer, key: str, plan: str = "pro") -> None:
    event = {
        "url": "https://example.com/pricing",
        "ip": "81.2.69.11",
        "user_agent": FIREFOX_MAC,
        "event_name": "signup",
        "event_meta": {"plan": plan},
    }
    assert s.call("POST", "/api/v1/event", event, key=key).status == 200


def test_webhook_crud_and_validation(server: TrailServer) -> None:
    site, key = server.create_site("crud.example")
    admin = server.admin_key
    for body, field in [
        ({"event": "signup", "endpoint": "ftp://example.com/x"}, "endpoint"),
        ({"event": "signup", "endpoint": "not a url"}, "endpoint"),
        ({"endpoint": "https://example.com/hook"}, "event"),
        ({"event": "signup"}, "endpoint"),
    ]:
        r = server.call("POST", "/api/v1/webhook", {"domain_id": site, **body}, key=admin)
        assert r.status == 400 and field in r.json()["validation"], r.body
    r = server.call(
        "POST",
        "/api/v1/webhook",
        {
            "domain_id": site,
            "event": "signup",
            "description": "crm",
            "endpoint": "https://example.com/hook",
        },
        key=admin,
    )
    assert r.status == 200, r.body
    hook = r.json()
    assert set(hook) == {
        "id",
        "def_time",
        "mod_time",
        "domain_id",
        "description",
        "event",
        "endpoint",
        "active",
    }
    assert (hook["domain_id"], hook["event"], hook["active"]) == (site, "signup", True)
    r = server.call(
        "POST",
        "/api/v1/webhook",
        {"id": hook["id"], "event": "purchase", "endpoint": "https://example.com/hook2"},
        key=admin,
    )
    assert (r.json()["event"], r.json()["endpoint"], r.json()["id"]) == (
        "purchase",
        "https://example.com/hook2",
        hook["id"],
    )
    listed = server.call("GET", f"/api/v1/webhook?domain_id={site}", key=admin).json()
    assert [h["id"] for h in listed] == [hook["id"]]
    assert server.call("GET", f"/api/v1/webhook?domain_id={site}", key=key).status == 403
    assert server.call("DELETE", "/api/v1/webhook?id=nope", key=admin).status == 404
    assert server.call("DELETE", f"/api/v1/webhook?id={hook['id']}", key=admin).status == 200
    assert server.call("GET", f"/api/v1/webhook?domain_id={site}", key=admin).json() == []


def test_maintenance_posts_the_event_to_the_endpoint(server: TrailServer) -> None:
    site, key = server.create_site("example.com")
    with receiver() as rec:
        r = server.call(
            "POST",
            "/api/v1/webhook",
            {"domain_id": site, "event": "signup", "endpoint": rec.url + "/hook?src=trail"},
            key=server.admin_key,
        )
        hook = r.json()
        signup(server, key)
        other = {
            "url": "https://example.com/",
            "ip": "81.2.69.12",
            "user_agent": FIREFOX_MAC,
            "event_name": "download",
        }
        assert server.call("POST", "/api/v1/event", other, key=key).status == 200
        # Sealed within 0.2 s, scanned 3 s behind the clock, maintenance runs every 5 s.
        got = rec.wait(1, timeout=30)
        assert len(got) == 1, got
        # The same visitor signs up again: the row carries its session's time (first event
        # + 1 ms), already behind the webhook's cursor, and must still be delivered once.
        signup(server, key, plan="team")
        got = rec.wait(2, timeout=30)
        assert rec.wait(3, timeout=6) == got  # once each; "download" is not this webhook's
    assert [p["json"]["meta"]["plan"] for p in got] == ["pro", "team"]
    post = got[0]
    assert post["path"] == "/hook?src=trail"
    assert post["headers"]["Content-Type"] == "application/json"
    body = post["json"]
    assert {
        k: body[k] for k in ("webhook_id", "domain_id", "hostname", "event", "path", "meta")
    } == {
        "webhook_id": hook["id"],
        "domain_id": site,
        "hostname": "example.com",
        "event": "signup",
        "path": "/pricing",
        "meta": {"plan": "pro"},
    }
    assert body["time"].endswith("Z")


def test_failed_deliveries_retry_with_backoff_then_disable(tmp_path: Path) -> None:
    from trail.services import webhooks
    from trail.storage.documents import records
    from trail.storage.meta import MetaStore

    s = TrailServer(tmp_path / "data", workers=1, env=FAST_SEAL).start()
    site, key = s.create_site("example.com")
    with receiver() as rec:
        hook = s.call(
            "POST",
            "/api/v1/webhook",
            {"domain_id": site, "event": "signup", "endpoint": rec.url},
            key=s.admin_key,
        ).json()
        signup(s, key)
        s.stop()  # seals the event; stopping within the 3 s scan lag leaves it to us
        meta = MetaStore.open(s.data_dir / "meta")
        try:
            now_ms = lambda: int(time.time() * 1000)
            assert webhooks.scan_events(meta, s.data_dir, now_ms=now_ms(), lag_ms=0) == 1
            rec.statuses = [500, 503]
            t = time.time()
            deliver = lambda at: webhooks.deliver_due(meta, now=at, base_delay=10, max_failures=3)
            assert deliver(t) == 0  # 500
            assert (
                deliver(t + 5) == 0 and len(rec.received) == 1
            )  # backing off: not due before t+10
            assert deliver(t + 10) == 0 and len(rec.received) == 2  # 503; next in 20 s
            assert deliver(t + 29) == 0 and len(rec.received) == 2
            assert deliver(t + 30) == 1 and len(rec.received) == 3  # delivered
            assert [r["status"] for r in rec.received] == [500, 503, 200]
            assert all(r["json"] == rec.received[0]["json"] for r in rec.received)
            assert records(meta, webhooks.OUTBOX).find() == []
            assert records(meta, webhooks.WEBHOOKS).get(hook["id"])["failures"] == 0

            # A second event, and an endpoint that keeps failing: disabled after 3 failures.
            s.start()
            signup(s, key, plan="team")
            s.stop()
            assert webhooks.scan_events(meta, s.data_dir, now_ms=now_ms(), lag_ms=0) == 1
            rec.statuses = [500] * 10
            assert [deliver(t + d) for d in (0, 10, 30, 70, 1000)] == [0] * 5
            assert len(rec.received) == 6  # three more attempts, then nothing
            stored = records(meta, webhooks.WEBHOOKS).get(hook["id"])
            assert (stored["active"], stored["failures"]) == (False, 3)
            assert records(meta, webhooks.OUTBOX).find() == []
        finally:
            meta.close()
    # The API shows it disabled; saving it again, unchanged, re-activates it.
    s.start()
    try:
        listed = s.call("GET", f"/api/v1/webhook?domain_id={site}", key=s.admin_key).json()
        assert [h["active"] for h in listed] == [False]
        body: dict[str, Any] = {k: hook[k] for k in ("id", "event", "endpoint")}
        r = s.call("POST", "/api/v1/webhook", body, key=s.admin_key)
        assert r.status == 200 and r.json()["active"] is True
    finally:
        s.stop()

"""GET /health on a real server, and the degraded answer when storage is unusable."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import trail
from tests.server import Reply, TrailServer, request
from trail.api.health import check
from trail.storage.meta import MetaStore


def test_health_ok(shared_server: TrailServer) -> None:
    r = request("GET", shared_server.url + "/health")
    assert r.status == 200
    assert r.json() == {
        "status": "ok",
        "db": "connected",
        "storage": {
            "ok": True,
            "error": None,
            "last_error": None,
            "last_error_at_ms": None,
            "errors": 0,
        },
        "session_store": {"backend": "lmdb", "ok": True, "error": None},
        "version": trail.__version__,
    }


def test_degraded_when_meta_store_is_closed(tmp_path: Path) -> None:
    meta = MetaStore.open(tmp_path / "meta")
    ctx = SimpleNamespace(meta=meta, data_dir=tmp_path)
    assert check(ctx) == (True, "connected")  # type: ignore[arg-type]
    meta.close()
    ok, db = check(ctx)  # type: ignore[arg-type]
    assert not ok and "meta store" in db


def test_degraded_when_data_dir_is_gone(tmp_path: Path) -> None:
    meta = MetaStore.open(tmp_path / "meta")
    ctx = SimpleNamespace(meta=meta, data_dir=tmp_path / "missing")
    ok, db = check(ctx)  # type: ignore[arg-type]
    assert not ok and "not writable" in db
    meta.close()


def test_degraded_while_the_background_seal_fails_and_ok_again_after(tmp_path: Path) -> None:
    """A disk problem the request path does not see (rows stay in the WAL, unsealed) still makes
    /health answer 503, with the error; once sealing works again it answers 200."""
    s = TrailServer(tmp_path / "data", workers=1, env={"TRAIL_SEAL_INTERVAL_MS": "100"}).start()
    try:
        _, key = s.create_site("health.example")
        blocker = s.data_dir / "segments" / "page_views"
        shutil.rmtree(blocker, ignore_errors=True)
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_bytes(b"")  # a file where the table's directory must go
        hit = {"url": "https://health.example/", "ip": "81.2.69.1", "user_agent": CHROME}
        assert s.call("POST", "/api/v1/hit", hit, key=key).status == 200
        r = wait_for_health(s, 503)
        storage = r.json()["storage"]
        assert r.json()["status"] == "degraded" and not storage["ok"]
        assert "seal" in storage["error"] and storage["errors"] >= 1
        blocker.unlink()
        r = wait_for_health(s, 200)
        assert r.json()["storage"]["error"] is None
        assert "seal" in r.json()["storage"]["last_error"]
    finally:
        s.stop()


CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def wait_for_health(s: TrailServer, status: int, timeout: float = 15.0) -> Reply:
    deadline = time.monotonic() + timeout
    while True:
        r = request("GET", s.url + "/health")
        if r.status == status or time.monotonic() > deadline:
            assert r.status == status, r.body
            return r
        time.sleep(0.1)

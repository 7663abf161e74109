"""GET /health on a real server, and the degraded answer when storage is unusable."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import trail
from tests.server import TrailServer, request
from trail.api.health import check
from trail.storage.meta import MetaStore


def test_health_ok(shared_server: TrailServer) -> None:
    r = request("GET", shared_server.url + "/health")
    assert r.status == 200
    assert r.json() == {"status": "ok", "db": "connected", "version": trail.__version__}


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

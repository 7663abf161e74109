"""The official Pirsch JS SDK (npm `pirsch-sdk`, tests/sdk/) against a real trail on loopback.

tests/sdk/run.mjs sends hits, a batch, an event and a session (oauth client and pa_ access key),
then reads statistics through the SDK; this test checks what every call returned.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import TrailServer

SDK_DIR = Path(__file__).resolve().parent / "sdk"
FAST_SEAL = {"TRAIL_SEAL_INTERVAL_MS": "200"}


def ensure_sdk() -> None:
    """`npm ci` once (the lock file pins pirsch-sdk and axios) unless node_modules is current."""
    # Node.js is part of the machine the project runs on; its absence is a failure, not a skip.
    assert shutil.which("node") and shutil.which("npm"), "node and npm are needed for the SDK test"
    marker = SDK_DIR / "node_modules" / ".package-lock.json"
    lock = SDK_DIR / "package-lock.json"
    if marker.is_file() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=SDK_DIR,
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    ensure_sdk()
    s = TrailServer(tmp_path_factory.mktemp("sdk") / "data", workers=2, env=FAST_SEAL).start()
    yield s
    s.stop()


def run_sdk(server: TrailServer) -> dict[str, Any]:
    site, key = server.create_site("example.com")
    other, _ = server.create_site("other.org")
    r = server.call(
        "POST",
        "/api/v1/client",
        {"domain_id": site, "type": "oauth", "description": "sdk"},
        key=server.admin_key,
    )
    assert r.status == 200, r.body
    client = r.json()
    cfg = {
        "baseUrl": server.url,
        "hostname": "example.com",
        "clientId": client["client_id"],
        "clientSecret": client["client_secret"],
        "accessKey": key,
        "siteId": site,
        "otherSiteId": other,
    }
    done = subprocess.run(
        ["node", "run.mjs", json.dumps(cfg)],
        cwd=SDK_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"_site": site}


def test_sdk_round_trip(server: TrailServer) -> None:
    out = run_sdk(server)
    # Writes: hit/batch/event/session answer 200 with an empty body -> the SDK returns undefined.
    for name in ("oauth_hit", "key_hit", "key_batch", "key_event", "key_session"):
        assert out[name] is None, (name, out[name])
    # The SDK refuses domain() in access-key mode before any request.
    assert out["key_domain"]["thrown"] is True
    assert out["domain"]["id"] == out["_site"]
    assert out["domain"]["hostname"] == "example.com"
    # Four visitors: V1 / (oauth), V2 /pricing (+ signup event, + session keep-alive),
    # V3 /about and V4 / (batch); four page views, the event un-bounces V2.
    total = out["total"]
    assert (total["visitors"], total["views"], total["sessions"]) == (4, 4, 4)
    assert total["bounces"] == 3
    pages = {p["path"]: (p["visitors"], p["views"]) for p in out["pages"]}
    assert pages == {"/": (2, 2), "/pricing": (1, 1), "/about": (1, 1)}
    assert sum(v["visitors"] for v in out["visitors"]) == 4
    assert [(e["name"], e["visitors"], e["count"]) for e in out["events"]] == [("signup", 1, 1)]
    assert [(m["meta_value"], m["visitors"]) for m in out["event_meta"]] == [("pro", 1)]
    assert {b["browser"] for b in out["browser"]} == {"Chrome", "Firefox", "Safari"}
    # A domain client sees nothing of another site: 404, as if it did not exist.
    assert out["other_site"]["code"] == 404

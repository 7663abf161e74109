"""End to end: a real `trail serve` on loopback, real segment files, the statistics routes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from segment_rows import SiteData

from tests.server import TrailServer

pytest.importorskip("trail._core")

DAY = "2024-03-10"


def _request(url: str, key: str, body: dict | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {key}"})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("trail") / "data"
    s = TrailServer(data, workers=1).start()
    assert s.admin_key, "".join(s.output)
    yield s.url, s.admin_key, data
    s.stop()


def test_statistics_over_http(server) -> None:
    base, key, data = server
    status, domain = _request(f"{base}/api/v1/domain", key, {"hostname": "stats.example", "subdomain": "stats",
                                                               "timezone": "Europe/Berlin"})  # fmt: skip
    assert status == 200, domain
    site_id = domain["id"]  # type: ignore[index]
    site = SiteData(Path(data), site_id)
    # v1: "/" then "/a" 9 s later; v2: "/" once (bounced). 10:00 UTC = 11:00 in Berlin, same day.
    site.visit(1, 1, [(f"{DAY} 10:00:00", "/"), (f"{DAY} 10:00:09", "/a")])
    site.visit(2, 1, [(f"{DAY} 11:00:00", "/")])
    site.write()
    stats = f"{base}/api/v1/statistics"
    q = f"id={site_id}&from={DAY}&to={DAY}"
    status, total = _request(f"{stats}/total?{q}", key)
    # 2 visitors, 3 views, 2 sessions, 1 bounce.
    assert status == 200
    assert total == {"visitors": 2, "views": 3, "sessions": 2, "bounces": 1, "bounce_rate": 0.5, "cr": 1.0,
                     "custom_metric_avg": 0.0, "custom_metric_total": 0.0}  # fmt: skip
    # The Go SDK sends every parameter, empty ones included.
    status, pages = _request(
        f"{stats}/page?{q}&include_avg_time_on_page=true&platform=&sort=&limit=0&offset=0", key
    )
    assert status == 200 and [(p["path"], p["average_time_spent_seconds"]) for p in pages] == [
        ("/", 9),
        ("/a", 0),
    ]  # type: ignore[union-attr, index]
    status, body = _request(f"{stats}/total?{q}&path=%2Fa", key)
    assert (status, body["visitors"], body["cr"]) == (200, 1, 0.5)  # type: ignore[index]
    status, body = _request(f"{stats}/visitor?id={site_id}&from={DAY}", key)
    assert status == 400 and "to" in body["validation"]  # type: ignore[index]
    status, body = _request(f"{stats}/total?{q}&tz=Nowhere%2FLand", key)
    assert status == 400 and "tz" in body["validation"]  # type: ignore[index]
    status, body = _request(f"{stats}/total?from={DAY}&to={DAY}", key)
    assert status == 400 and "id" in body["validation"]  # type: ignore[index]
    status, body = _request(
        f"{stats}/total?id=00000000-0000-4000-8000-000000000000&from={DAY}&to={DAY}", key
    )
    assert status == 404

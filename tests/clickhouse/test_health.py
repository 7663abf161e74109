"""/health and /metrics with storage = "clickhouse": the shipper's figures, 503 while
ClickHouse cannot be reached."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.clickhouse.test_schema import ROOT
from tests.clickhouse.traffic import FAST_SEAL, send_traffic, wait_until
from tests.server import TrailServer, free_port
from tests.test_ingest_e2e import CHROME_WIN
from trail.clickhouse import health


def _health(s: TrailServer) -> tuple[int, dict[str, Any]]:
    r = s.call("GET", "/health")
    return r.status, r.json()


def _metrics(s: TrailServer) -> dict[str, float]:
    r = s.call("GET", "/metrics")
    assert r.status == 200
    lines = [line for line in r.body.decode().splitlines() if not line.startswith("#")]
    return {name: float(value) for name, value in (line.split(" ") for line in lines)}


def test_health_and_metrics_show_the_shipper(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'ch'}"
    env = {**FAST_SEAL, "TRAIL_STORAGE": "clickhouse", "TRAIL_CLICKHOUSE_URL": url}
    data = tmp_path / "data"
    s = TrailServer(data, workers=1, env=env).start(timeout=120)
    try:
        _site, key = s.create_site()
        send_traffic(s, key, hits=300)
        up = wait_until(
            lambda: (
                (h := _health(s)[1]["clickhouse"])["rows_shipped"] > 0
                and h["pending_rows"] == 0
                and h
            )
        )
        assert up["connected"] and up["reachable"] and up["last_error"] == ""
        assert up["target"] == f"chdb://{tmp_path / 'ch'} (database trail)"
        figures = _metrics(s)
        assert figures["trail_clickhouse_rows_shipped_total"] == up["rows_shipped"]
        assert figures["trail_clickhouse_reachable"] == 1
        assert figures["trail_clickhouse_pending_rows"] == 0
        assert figures["trail_up"] == 1
    finally:
        s.stop()

    # Another process holds the engine's directory: for this node, ClickHouse is away.
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.clickhouse.chq", url, "--hold"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().startswith("{")
    s = TrailServer(data, workers=1, env=env).start(timeout=120)
    try:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        hit = {"url": "https://example.com/again", "ip": "10.9.9.9", "user_agent": CHROME_WIN,
               "time": now}  # fmt: skip
        r = s.call("POST", "/api/v1/hit/batch", [hit], key=key)
        assert r.status == 200, r.body
        _status, down = wait_until(lambda: (got := _health(s))[0] == 503 and got)
        assert down["status"] == "degraded"
        assert not down["clickhouse"]["reachable"] and down["clickhouse"]["error"]
        assert down["clickhouse"]["pending_rows"] > 0  # the row waits on disk
        figures = _metrics(s)
        assert figures["trail_clickhouse_reachable"] == 0
        assert figures["trail_clickhouse_retries_total"] >= 1

        holder.stdin.close()
        assert holder.wait(60) == 0
        back = wait_until(
            lambda: (got := _health(s))[0] == 200 and got[1]["clickhouse"]["connected"] and got[1]
        )
        assert back["clickhouse"]["reachable"]
        assert back["clickhouse"]["rows_shipped"] > up["rows_shipped"]
    finally:
        s.stop()
        if holder.poll() is None:
            holder.kill()


def test_a_server_that_does_not_answer_is_unreachable(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    state = health.state(tmp_path, f"http://trail:secret@127.0.0.1:{port}/trail")
    assert state["reachable"] is False
    assert "refused" in state["error"].lower()
    assert state["target"] == f"http://trail@127.0.0.1:{port}/trail"  # no password
    assert "secret" not in str(state)

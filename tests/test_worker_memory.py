"""What a worker keeps in memory: pyarrow (~35 MiB RSS per worker) only once a request needs it.

The statistics run on Polars alone; pyarrow is loaded by the raw-row export and by the
admin's compaction. Read from the worker's own memory map (/proc/<pid>/maps), on a server with
one worker so every request reaches the process that is looked at.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.server import TrailServer, request

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TrailServer]:
    s = TrailServer(tmp_path / "data", workers=1).start()
    yield s
    if s.proc and s.proc.poll() is None:
        s.stop()


def worker_pid(s: TrailServer) -> int:
    workers = [
        pid for pid in s.processes() if b"trail.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(workers) == 1, workers
    return workers[0]


def mapped(pid: int, library: str) -> bool:
    """Whether the process has a file whose name starts with `library` mapped."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[5:]
        if path and os.path.basename(path[0]).startswith(library):
            return True
    return False


def test_hits_and_statistics_leave_pyarrow_unloaded_an_export_loads_it(
    server: TrailServer,
) -> None:
    site, key = server.create_site()
    today = datetime.now(UTC).date().isoformat()
    for i in range(3):
        body = {"url": f"https://example.com/p{i}", "ip": f"81.2.69.{i}", "user_agent": CHROME}
        assert server.call("POST", "/api/v1/hit", body, key=key).status == 200
    total = server.stats("total", site, **{"from": today, "to": today})
    assert "visitors" in total
    pid = worker_pid(server)
    assert mapped(pid, "_polars_runtime")  # the maps are read right: the statistics engine is in
    assert not mapped(pid, "libarrow")

    query = urllib.parse.urlencode({"id": site, "from": today, "to": today, "format": "csv"})
    r = request(
        "GET",
        f"{server.url}/api/v1/export?{query}",
        headers={"Authorization": f"Bearer {server.admin_key}"},
        timeout=60,
    )
    assert r.status == 200, r.body[:300]
    assert worker_pid(server) == pid
    assert mapped(pid, "libarrow")

"""What a worker keeps in memory (issue 14: a worker <= 200 MB at steady load).

- pyarrow (~35 MiB RSS per worker) only once a request needs it: the statistics run on Polars
  alone; pyarrow is loaded by the raw-row export and by the admin's compaction.
- The allocators as the supervisor sets them: no transparent huge pages for mimalloc's arena
  (trail._core's heap), Polars' jemalloc returning freed pages at once.
- The uap-core rules compiled only as hits need them: a worker's own memory (RssAnon) after
  start and a few hits stays well below what compiling all 1,270 rules took (~40 MiB more).

Read from the worker's own /proc files, on a server with one worker so every request reaches
the process that is looked at. Figures: bench/RESULTS-memory.md.
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


def status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


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


def test_workers_run_with_the_allocator_settings(server: TrailServer) -> None:
    pid = worker_pid(server)
    env = dict(
        entry.split(b"=", 1)
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if b"=" in entry
    )
    assert env[b"MIMALLOC_ALLOW_THP"] == b"0"
    assert b"muzzy_decay_ms:0" in env[b"_RJEM_MALLOC_CONF"]
    # mimalloc turns transparent huge pages off for the whole process (prctl) when told so.
    assert status(pid)["THP_enabled"] == "0"


# A worker's own memory after start and a few hits: ~65 MiB on the development machine; ~105
# when the uap-core rules were compiled up front and mimalloc's arena had huge pages.
MAX_RSS_ANON_MIB = 90


def test_a_worker_after_start_and_hits_holds_little_memory_of_its_own(server: TrailServer) -> None:
    _, key = server.create_site()
    agents = [
        CHROME,
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
        ),
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ]
    for i, agent in enumerate(agents * 5):
        body = {"url": f"https://example.com/p{i}", "ip": f"81.2.69.{i}", "user_agent": agent}
        assert server.call("POST", "/api/v1/hit", body, key=key).status == 200
    anon_mib = int(status(worker_pid(server))["RssAnon"].split()[0]) / 1024
    assert anon_mib < MAX_RSS_ANON_MIB, f"RssAnon {anon_mib:.0f} MiB"

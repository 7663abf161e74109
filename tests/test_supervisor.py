"""The process model: clean SIGTERM, restarting dead workers, no orphans, start-up checks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import TrailServer, request


def children(pid: int) -> dict[int, str]:
    """pid -> command line of the direct children of `pid`."""
    out: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out[int(entry)] = cmdline
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(cond, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def read_lines(s: TrailServer) -> list[str]:
    """Everything the server printed on stdout so far (TrailServer made the pipe non-blocking)."""
    assert s.proc is not None and s.proc.stdout is not None
    line = s.proc.stdout.readline()
    if line:
        s.output.append(line)
    return s.output


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TrailServer]:
    data = tmp_path / "data"
    data.mkdir()
    s = TrailServer(data, workers=2).start()
    yield s
    if s.proc and s.proc.poll() is None:
        s.stop()


def test_sigterm_stops_everything_cleanly(server: TrailServer) -> None:
    assert server.proc is not None
    kids = children(server.proc.pid)
    assert sum("trail.worker" in c for c in kids.values()) == 2
    assert sum("trail.tasks.maintenance" in c for c in kids.values()) == 1
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 5
    assert not [pid for pid in kids if alive(pid)]


def health_with_retries(server: TrailServer) -> int:
    """/health's status, retrying connection errors for up to half a second.

    SO_REUSEPORT keeps one accept queue per worker socket: connections the kernel had queued on
    the killed worker's socket are reset, and while the replacement binds the port a connection
    can be refused. A client retry must then be answered by the surviving worker.
    """
    deadline = time.monotonic() + 0.5
    while True:
        try:
            return request("GET", server.url + "/health", timeout=5).status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_a_killed_worker_is_restarted(server: TrailServer) -> None:
    assert server.proc is not None
    workers = {pid: c for pid, c in children(server.proc.pid).items() if "trail.worker" in c}
    victim = next(pid for pid, c in workers.items() if "--id 0" in c)
    os.kill(victim, signal.SIGKILL)
    # Connections queued on the dying worker's socket are reset (SO_REUSEPORT keeps one accept
    # queue per socket); once it is gone, the other worker answers while worker 0 comes back.
    assert wait_until(lambda: not alive(victim))
    for _ in range(20):
        assert health_with_retries(server) == 200
        time.sleep(0.02)

    def restarted() -> bool:
        now = children(server.proc.pid)  # type: ignore[union-attr]
        return any("--id 0" in c and pid != victim for pid, c in now.items())

    assert wait_until(restarted)
    assert server.stop() == 0


def test_workers_leave_when_the_supervisor_is_killed(server: TrailServer) -> None:
    assert server.proc is not None
    kids = children(server.proc.pid)
    server.proc.kill()
    server.proc.wait()
    assert wait_until(lambda: not [pid for pid in kids if alive(pid)], timeout=10)


def test_second_start_prints_no_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    first = TrailServer(data, workers=1).start()
    assert first.admin_key
    assert first.stop() == 0
    second = TrailServer(data, workers=1).start()
    try:
        assert second.admin_key is None
        assert second.call("GET", "/api/v1/domain", key=first.admin_key).status == 200
        assert wait_until(
            lambda: any(
                "trail listening on http://127.0.0.1" in line for line in read_lines(second)
            )
        )
    finally:
        assert second.stop() == 0


def test_port_in_use_is_a_config_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "trail",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path),
                "--workers",
                "1",
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2
    assert done.stderr.startswith(f"trail: config: port: cannot bind 127.0.0.1:{port}")


def test_sigterm_seals_accepted_hits(tmp_path: Path) -> None:
    """With sealing far away, only the workers' clean shutdown can turn the hit into a segment."""
    data = tmp_path / "data"
    data.mkdir()
    slow_seal = {"TRAIL_SEAL_INTERVAL_MS": "3600000", "TRAIL_SEAL_ROWS": "1000000"}
    s = TrailServer(data, workers=1, env=slow_seal).start()
    site, key = s.create_site()
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
    hit = {"url": "https://example.com/a", "ip": "203.0.113.9", "user_agent": ua}
    assert s.call("POST", "/api/v1/hit", hit, key=key).status == 200
    assert not list(data.glob(f"segments/page_views/site={site}/**/*.arrow"))
    assert s.stop() == 0
    assert list(data.glob(f"segments/page_views/site={site}/**/*.arrow"))


def test_jemalloc_goes_to_the_children_unless_told_otherwise() -> None:
    from trail.supervisor import JEMALLOC_CONF, child_allocator_env, jemalloc_env

    def found(name: str) -> str:
        return f"lib{name}.so.2"

    assert jemalloc_env({}, find=found) == {
        "LD_PRELOAD": "libjemalloc.so.2",
        "MALLOC_CONF": JEMALLOC_CONF,
    }
    assert jemalloc_env({"MALLOC_CONF": "narenas:2"}, find=found)["MALLOC_CONF"] == "narenas:2"
    for off in ("off", "0", "false", "No"):
        assert jemalloc_env({"TRAIL_JEMALLOC": off}, find=found) == {}
    assert jemalloc_env({"LD_PRELOAD": "/opt/libtcmalloc.so"}, find=found) == {}
    assert jemalloc_env({}, find=lambda name: None) == {}  # not installed: glibc's malloc stays
    # ClickHouse in the process brings its own malloc: the two crash together
    assert jemalloc_env({}, find=found, clickhouse_url="chdb:///var/lib/trail/ch") == {}
    assert jemalloc_env({}, find=found, clickhouse_url="https://ch.example:8443/trail") != {}
    env = child_allocator_env({"LD_PRELOAD": "/opt/libtcmalloc.so"})
    assert env["LD_PRELOAD"] == "/opt/libtcmalloc.so"


def _mapped(pid: int, library: str) -> bool:
    return library in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("setting", ["", "off"])
def test_workers_run_on_jemalloc_where_the_system_has_it(tmp_path: Path, setting: str) -> None:
    """.ci/run installs libjemalloc2: the workers and the maintenance process load it (and
    answer), the supervisor itself does not; TRAIL_JEMALLOC=off leaves every process on glibc."""
    from ctypes.util import find_library

    assert find_library("jemalloc"), "libjemalloc2 is not installed (.ci/run installs it)"
    data = tmp_path / "data"
    data.mkdir()
    s = TrailServer(data, workers=2, env={"TRAIL_JEMALLOC": setting}).start()
    try:
        assert s.proc is not None
        kids = [pid for pid, cmd in children(s.proc.pid).items() if "trail." in cmd]
        assert len(kids) == 3  # two workers, the maintenance process
        assert not _mapped(s.proc.pid, "libjemalloc")
        assert [_mapped(pid, "libjemalloc") for pid in kids] == [setting != "off"] * 3
        assert request("GET", s.url + "/health", timeout=5).status == 200
    finally:
        s.stop()

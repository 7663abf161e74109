"""A real trail server on loopback for end-to-end tests, plus a tiny HTTP client."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEY_LINE = re.compile(r"admin API key[^:]*: (tt_\S+)")
# Workers cache a site's rules and access keys for 2 s by default; a test that changes them waits
# out this much instead (a test's own env still wins).
CACHE_MS = 100
FAST_CACHES = {"TRAIL_RULES_CACHE_MS": str(CACHE_MS), "TRAIL_ACCESS_KEY_CACHE_MS": str(CACHE_MS)}
# More environment for a server, by its data dir (conftest's --meta-store=postgres gives each
# server a PostgreSQL database of its own this way).
ENV_FOR_DATA_DIR: list[Callable[[Path], dict[str, str]]] = []


def free_port() -> int:
    """A loopback port nothing listens on. Under pytest-xdist each worker takes only ports of
    its own remainder of port // 2 modulo the number of workers (Linux gives bind(0) ports of
    one parity): the servers listen with SO_REUSEPORT, so two workers' servers given one port would
    both start and share its connections."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    mine = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port // 2 % count == mine % count:
            return port


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> Reply:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Reply(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.read(), dict(e.headers))


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


class TrailServer:
    """`trail serve` as a subprocess in its own process group, so kill -9 takes all of it."""

    def __init__(self, data_dir: Path, workers: int = 2, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.port = free_port()
        more = {k: v for hook in ENV_FOR_DATA_DIR for k, v in hook(data_dir).items()}
        self.env = {**os.environ, **FAST_CACHES, **more, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.admin_key: str | None = None
        self.output: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> TrailServer:
        cmd = [
            sys.executable,
            "-m",
            "trail",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--workers",
            str(self.workers),
        ]
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(
            self.data_dir.parent / f"server-{self.port}.log", "a"
        ) as log:  # the child keeps its copy
            self.proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=self.env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line:
                self.output.append(line)
                m = KEY_LINE.search(line)
                if m:
                    self.admin_key = m.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"trail exited with {self.proc.returncode}: {''.join(self.output)}"
                )
            if self._healthy():
                return self
            if not line:
                time.sleep(0.05)
        raise TimeoutError(f"trail did not become healthy: {''.join(self.output)}")

    def _healthy(self) -> bool:
        try:
            return request("GET", self.url + "/health", timeout=1).status == 200
        except OSError:
            return False

    def stop(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._wait_port_free()
        return code

    def processes(self) -> list[int]:
        """The supervisor and all its descendants (workers run in sessions of their own)."""
        assert self.proc is not None
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(stat.parent.name)] = int(fields[1])
        family = [self.proc.pid]
        for pid in family:
            family.extend(child for child, parent in parents.items() if parent == pid)
        return family

    def kill9(self) -> None:
        """SIGKILL the supervisor and every worker at once, like a power cut."""
        assert self.proc is not None
        family = self.processes()
        for pid in family:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        for pid in family[1:]:
            while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
                time.sleep(0.01)
        self._wait_port_free()

    def _wait_port_free(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._healthy():
            time.sleep(0.05)

    # -- API helpers ------------------------------------------------------------------------

    def call(
        self, method: str, path: str, body: Any = None, key: str | None = None, **headers: str
    ) -> Reply:
        h = {"Content-Type": "application/json", **headers}
        if key:
            h["Authorization"] = f"Bearer {key}"
        return request(method, self.url + path, body, h)

    def create_site(self, hostname: str = "example.com", timezone: str = "UTC") -> tuple[str, str]:
        """A new domain and its access key: (site id, pa_ key)."""
        r = self.call(
            "POST",
            "/api/v1/domain",
            {"hostname": hostname, "subdomain": hostname.split(".")[0], "timezone": timezone},
            key=self.admin_key,
        )
        assert r.status == 200, r.body
        site = r.json()["id"]
        r = self.call(
            "POST",
            "/api/v1/client",
            {"domain_id": site, "type": "token", "description": "test"},
            key=self.admin_key,
        )
        assert r.status == 200, r.body
        return site, r.json()["client_secret"]

    def stats(self, name: str, site: str, **params: str) -> Any:
        query = "&".join(f"{k}={v}" for k, v in {"id": site, **params}.items())
        r = self.call("GET", f"/api/v1/statistics/{name}?{query}", key=self.admin_key)
        assert r.status == 200, r.body
        return r.json()

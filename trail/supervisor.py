"""`trail serve`: bootstrap, then N workers + one maintenance process, kept alive until SIGTERM.

Pure Python on purpose: no Polars, no LMDB, no Robyn here. Children run in their own session so
a terminal's Ctrl-C reaches only the supervisor, which then stops them in order.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from trail.config import Config, ConfigError
from trail.storage import meta_backend

STOP_TIMEOUT = 20.0
STARTUP_TIMEOUT = 60.0
MAX_BACKOFF = 30.0
STABLE_AFTER = 30.0  # a child that lived this long restarts without backoff


def say(message: str) -> None:
    print(f"trail: {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    pass_fds: tuple[int, ...] = field(default_factory=tuple)

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            self.argv, env=env, pass_fds=self.pass_fds, start_new_session=True
        )
        self.started_at = time.monotonic()
        self.restart_at = None


# The children's allocators, unless the environment sets them (measured: bench/RESULTS-memory.md).
# mimalloc (trail._core's heap) otherwise asks for transparent huge pages on its arena: every
# 2 MiB it touches stays resident, ~20 MiB per worker more than the heap holds. Polars' jemalloc
# (added after Polars' own settings) otherwise keeps pages a query freed for a second in RSS
# (MADV_FREE) before returning them.
CHILD_ALLOCATOR_ENV = {"MIMALLOC_ALLOW_THP": "0", "_RJEM_MALLOC_CONF": "muzzy_decay_ms:0"}


# What `import polars` puts first in _RJEM_MALLOC_CONF (a process that imported Polars passes it
# on to the processes it starts): Polars' own default, not an operator's setting.
POLARS_JEMALLOC_DEFAULT = "dirty_decay_ms:500,muzzy_decay_ms:1000"


# glibc's malloc serves Robyn, CPython's objects of over 512 bytes and numpy's arrays. Where the
# system has jemalloc (Debian: libjemalloc2), the children load it in its place (LD_PRELOAD):
# a browser hit costs ~4 % less CPU (bench/RESULTS.md). Its background thread hands back what a
# burst of statistics queries freed within a second, also when the worker then idles.
# TRAIL_JEMALLOC=off, or an LD_PRELOAD of the operator's own, keeps it out, and so does ClickHouse
# in the process (a `chdb://` clickhouse_url): chDB brings its own malloc, and the two crash.
JEMALLOC = "jemalloc"
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"
OFF = ("0", "off", "false", "no")


def jemalloc_env(
    environ: Mapping[str, str], find: Any = None, clickhouse_url: str = ""
) -> dict[str, str]:
    """LD_PRELOAD (and MALLOC_CONF, unless set) for the children, or nothing."""
    if environ.get("TRAIL_JEMALLOC", "").strip().lower() in OFF or environ.get("LD_PRELOAD"):
        return {}
    if clickhouse_url.strip() and _in_process(clickhouse_url):
        return {}
    if find is None:
        from ctypes.util import find_library as find
    name = find(JEMALLOC)
    if not name:
        return {}
    return {"LD_PRELOAD": name, "MALLOC_CONF": environ.get("MALLOC_CONF") or JEMALLOC_CONF}


def _in_process(clickhouse_url: str) -> bool:
    """Whether the URL names chDB, ClickHouse in the process (an invalid URL fails elsewhere)."""
    from trail.clickhouse.url import UrlError, parse

    try:
        return parse(clickhouse_url).interface == "chdb"
    except UrlError:
        return False


def child_allocator_env(environ: Mapping[str, str], clickhouse_url: str = "") -> dict[str, str]:
    """`environ` with CHILD_ALLOCATOR_ENV under it: an operator's own values win (for jemalloc,
    the later of two settings wins, so theirs follow ours)."""
    env = {**CHILD_ALLOCATOR_ENV, **environ, **jemalloc_env(environ, None, clickhouse_url)}
    inherited = environ.get("_RJEM_MALLOC_CONF", "")
    if inherited.startswith(POLARS_JEMALLOC_DEFAULT):
        theirs = inherited.removeprefix(POLARS_JEMALLOC_DEFAULT).lstrip(",")
        env["_RJEM_MALLOC_CONF"] = ",".join(
            c for c in (CHILD_ALLOCATOR_ENV["_RJEM_MALLOC_CONF"], theirs) if c
        )
    return env


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.stopping = threading.Event()
        self.env = {
            **child_allocator_env(os.environ, config.clickhouse_url),
            "POLARS_MAX_THREADS": str(config.polars_threads),
        }
        self.ready_r, self.ready_w = os.pipe()
        os.set_blocking(self.ready_r, False)
        cfg = config.to_json()
        py = sys.executable
        self.children = [
            Child(
                f"worker {i}",
                [
                    py,
                    "-m",
                    "trail.worker",
                    "--id",
                    str(i),
                    "--config-json",
                    cfg,
                    "--ready-fd",
                    str(self.ready_w),
                ],
                pass_fds=(self.ready_w,),
            )
            for i in range(config.workers)
        ]
        self.children.append(
            Child("maintenance", [py, "-m", "trail.tasks.maintenance", "--config-json", cfg])
        )
        self.ready: set[int] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        for child in self.children:
            child.start(self.env)
        if not self._wait_until_serving():
            self.stop_children()
            return 0 if self.stopping.is_set() else 1
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        print(
            f"trail listening on http://{host}:{self.config.port} ({self.config.workers} workers)",
            flush=True,
        )
        while not self.stopping.wait(0.2):
            self._read_ready()
            self._reap_and_restart()
        self.stop_children()
        return 0

    def _wait_until_serving(self) -> bool:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and not self.stopping.is_set():
            self._read_ready()
            self._reap_and_restart()
            if any(c.failures >= 3 for c in self.children):
                say("a process keeps failing at startup; giving up (see its messages above)")
                return False
            if len(self.ready) >= self.config.workers and self._healthy():
                return True
            time.sleep(0.05)
        if not self.stopping.is_set():
            say(f"workers did not become healthy within {STARTUP_TIMEOUT:.0f} s")
        return False

    def _healthy(self) -> bool:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.config.host, self.config.host)
        try:
            conn = http.client.HTTPConnection(host, self.config.port, timeout=2)
            conn.request("GET", "/health")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def _read_ready(self) -> None:
        try:
            data = os.read(self.ready_r, 4096)
        except BlockingIOError:
            return
        for line in data.decode(errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "ready" and parts[1].isdigit():
                self.ready.add(int(parts[1]))

    def _reap_and_restart(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.proc is None or child.proc.poll() is None:
                continue
            if child.restart_at is None:
                lived = now - child.started_at
                child.failures = 0 if lived >= STABLE_AFTER else child.failures + 1
                delay = min(MAX_BACKOFF, 0.25 * 2 ** max(0, child.failures - 1))
                say(
                    f"{child.name} (pid {child.proc.pid}) exited with {_describe(child.proc.returncode)}; restarting in {delay:.2f} s"
                )
                child.restart_at = now + delay
            elif now >= child.restart_at and not self.stopping.is_set():
                child.start(self.env)
                say(f"{child.name} restarted (pid {child.proc.pid})")

    def stop_children(self) -> None:
        """SIGTERM every child, wait up to STOP_TIMEOUT in total, then SIGKILL what is left."""
        live = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in live:
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in live:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"pid {proc.pid} did not stop within {STOP_TIMEOUT:.0f} s; killing it")
                _signal(proc, signal.SIGKILL)
                proc.wait()
        os.close(self.ready_r)
        os.close(self.ready_w)


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


def _describe(returncode: int) -> str:
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"status {returncode}"


def check_port_free(config: Config) -> None:
    """Fail early with a clear message when something else already listens on the port."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((config.host, config.port))
        except OSError as e:
            raise ConfigError(
                "port", f"cannot bind {config.host}:{config.port}: {e.strerror}"
            ) from None


def run_bootstrap(config: Config) -> dict[str, str]:
    """Run `trail.bootstrap` in a child; returns its report (the admin's id, API key and
    set-password link on the first start)."""
    argv = [sys.executable, "-m", "trail.bootstrap", "--config-json", config.to_json()]
    done = subprocess.run(argv, check=False, capture_output=True, timeout=120)
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode(errors="replace"))
        raise RuntimeError(f"bootstrap failed with {_describe(done.returncode)}")
    lines = done.stdout.decode().strip().splitlines()
    return orjson.loads(lines[-1]) if lines else {}


def serve(config: Config) -> int:
    """Run trail until SIGTERM/SIGINT; returns the exit status."""
    check_port_free(config)
    meta_backend.check(config)
    report = run_bootstrap(config)
    if report.get("api_key"):
        print(f"trail: created admin user {report['admin_id']}", flush=True)
        print(f"trail: admin API key (shown once, keep it safe): {report['api_key']}", flush=True)
    if report.get("password_link"):
        print(
            "trail: set the admin's dashboard password (the link works once, until "
            f"{report['link_expires_at']}): {report['password_link']}",
            flush=True,
        )
    from trail.geoip import startup_note

    if note := startup_note(config):
        say(note)
    return Supervisor(config).run()

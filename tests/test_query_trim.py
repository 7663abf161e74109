"""The query pool gives freed memory back to the kernel after a burst of statistics queries
(trail.api.routing._Trim): once per burst, when the last query in flight ends, never during
one, and a burst that ends too soon after the last trim is trimmed when the interval is over;
glibc's arenas once, mimalloc's heap on every query thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from trail.api import routing
from trail.storage import memory


def _trim(interval: float) -> tuple[routing._Trim, list[float]]:
    t = routing._Trim()
    t.release()  # the real one, on this thread: nothing to see but that it runs
    releases: list[int] = []
    t.release = lambda: releases.append(threading.get_ident())
    t.releases = releases  # type: ignore[attr-defined]
    assert t.trim is not None, "glibc's malloc_trim is there on the platforms trail runs on"
    calls: list[float] = []
    done = threading.Event()

    def record(pad: int) -> int:
        calls.append(time.monotonic())
        done.set()
        return 0

    t.trim = record
    t.MIN_INTERVAL_S = interval
    return t, calls


def _wait(calls: list[float], n: int, timeout: float = 5) -> None:
    end = time.monotonic() + timeout
    while len(calls) < n and time.monotonic() < end:
        time.sleep(0.01)


def test_trimmed_once_when_the_last_query_of_a_burst_ends() -> None:
    t, calls = _trim(0.0)
    with ThreadPoolExecutor(routing.QUERY_THREADS) as pool:
        for _ in range(3):
            t.enter()
        t.leave(pool)
        t.leave(pool)
        time.sleep(0.1)
        assert calls == []  # one query still running
        t.leave(pool)
        _wait(calls, 1)
        time.sleep(0.1)
        assert len(calls) == 1
        assert len(set(t.releases)) == routing.QUERY_THREADS == len(t.releases)  # type: ignore[attr-defined]


def test_the_end_of_a_burst_lets_go_of_what_built_the_indexes(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    kept = memory.Kept(10_000)
    monkeypatch.setattr(memory, "KEPT", kept)
    kept.put(("ids", "day"), b"ids", 10)
    kept.put(("union", "window"), b"union", 10)
    t, calls = _trim(0.0)
    with ThreadPoolExecutor(routing.QUERY_THREADS) as pool:
        t.enter()
        assert kept.get(("ids", "day")) == b"ids"  # not while a query runs
        t.leave(pool)
        _wait(calls, 1)
    assert kept.get(("ids", "day")) is memory.MISSING
    assert kept.get(("union", "window")) == b"union"


def test_malloc_thresholds_are_fixed() -> None:
    """After fix_malloc_thresholds a freed 6 MiB block was a mapping of its own: its pages are
    gone from the RSS at once (with glibc's dynamic threshold raised by an earlier free, it
    would stay in the heap). In a fresh process: one that loaded chDB runs on its malloc."""
    code = """
import ctypes
from trail import worker

def rss_anon():
    status = open("/proc/self/status").read().splitlines()
    return next(int(line.split()[1]) * 1024 for line in status if line.startswith("RssAnon"))

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if "--fixed" in __import__("sys").argv:
    worker.fix_malloc_thresholds()
size = 6 * 1024 * 1024
freed = []
for _ in range(3):  # an earlier free would have raised a dynamic threshold past `size`
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    before = rss_anon()
    libc.free(block)
    freed.append(before - rss_anon() >= size // 2)
print(freed)
"""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "GLIBC_TUNABLES")}

    def run(*flags: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", code, *flags],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    assert run("--fixed") == "[True, True, True]"
    assert run() == "[True, False, False]"  # glibc's default, which the fix is for


def test_a_burst_soon_after_a_trim_is_trimmed_when_the_interval_is_over() -> None:
    t, calls = _trim(0.5)
    with ThreadPoolExecutor(routing.QUERY_THREADS) as pool:
        t.enter()
        t.leave(pool)
        _wait(calls, 1)
        first = calls[0]
        for _ in range(3):  # three short bursts within the interval: one more trim
            t.enter()
            t.leave(pool)
        _wait(calls, 2)
        assert calls[1] - first >= 0.45
        t.enter()  # a burst within the interval again: its trim is due in ~0.5 s ...
        t.leave(pool)
        assert t.pending
        t.enter()  # ... but a query is running then: trimmed when it ends
        time.sleep(0.7)
        assert len(calls) == 2 and not t.pending
        t.leave(pool)
        _wait(calls, 3)
        assert len(calls) == 3

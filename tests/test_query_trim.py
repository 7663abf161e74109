"""The query pool gives freed memory back to the kernel after a burst of statistics queries
(trail.api.routing._Trim): once per burst, when the last query in flight ends, never during
one, and a burst that ends too soon after the last trim is trimmed when the interval is over;
glibc's arenas once, mimalloc's heap on every query thread."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from trail.api import routing


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

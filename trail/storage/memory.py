"""What a worker's statistics keep in memory between requests, under one byte budget.

A dashboard load asks ~20 reports over one window at once, and the next load asks them again,
so the reports remember what they read or built from the closed days' rollups (visitor id lists,
slices of dimension tables, time tables, unions, descriptions of open days) and some answers.
All of it shares one table with one budget (`TRAIL_ROLLUP_CACHE_MB`, default 64 MB per worker):
at 10M page views a month one window's parts take ~200 MB, at 100M ten times that, so counting
entries per kind would let a worker grow with the data; counting bytes keeps it near what a
worker that only takes hits uses. What does not fit is read or built again by the next report
that needs it: answers do not depend on what is kept (see Kept for which parts stay).

Arrays that map files (the indexes of trail.stats.index_files) count at their size too: while
a worker keeps them mapped, the pages it touched count in its RSS (shared with the other
workers); one that is not kept is unmapped when the request ends and mapped again, from the
page cache, by the next.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final, TypeVar

import numpy as np
import polars as pl

T = TypeVar("T")
MB = 1024 * 1024
DEFAULT_MB = 64


class _Missing:
    pass


MISSING: Final = _Missing()


def size_of(value: Any) -> int:
    """The bytes `value` holds in memory that its entry should count (an estimate: Python
    objects at their shallow size, arrays and frames at their buffers)."""
    if isinstance(value, np.ndarray):
        return value.nbytes + 112
    if isinstance(value, pl.DataFrame):
        return int(value.estimated_size()) + _views(value.dtypes, value.height) + 200
    if isinstance(value, pl.Series):
        return int(value.estimated_size()) + _views([value.dtype], len(value)) + 100
    if isinstance(value, (tuple, list)):
        return sys.getsizeof(value) + sum(size_of(v) for v in value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(size_of(k) + size_of(v) for k, v in value.items())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return 64 + sum(size_of(getattr(value, f.name)) for f in dataclasses.fields(value))
    return int(sys.getsizeof(value))


def _views(dtypes: list[pl.DataType], height: int) -> int:
    """What Polars' `estimated_size` leaves out: a String or Binary column holds a 16-byte view
    per row (null or not) besides the bytes of its longer values, which is all it counts."""
    return 16 * height * sum(1 for t in dtypes if isinstance(t, (pl.String, pl.Binary)))


class Kept:
    """Values by key within `budget` bytes, least recently used first out, except that an
    entry used in the last `hold_s` seconds is not given up for a new one: a dashboard load
    reads more than the budget holds, in the same order every time, and plain LRU would throw
    out each part just before the next load asks for it again (nothing would ever be found);
    this way what fits stays and is found. A value larger than the budget is not kept.
    Thread-safe: Robyn may run reports on several threads."""

    def __init__(self, budget: int, hold_s: float = 60.0, clock: Any = time.monotonic) -> None:
        self.budget = budget
        self.hold_s = hold_s
        self.clock = clock
        self.used = 0
        self.entries: OrderedDict[Any, tuple[Any, int, float]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Any) -> Any:
        """The value kept for `key` (now the most recently used), or MISSING."""
        with self.lock:
            hit = self.entries.get(key)
            if hit is None:
                return MISSING
            self.entries[key] = (hit[0], hit[1], self.clock())
            self.entries.move_to_end(key)
            return hit[0]

    def put(self, key: Any, value: Any, size: int | None = None, dear: bool = False) -> bool:
        """Keep `value` unless it does not fit without giving up entries used within hold_s
        (a `dear` value, one that costs far more to make again than what it displaces, gives up
        any, least recently used first); says whether it is kept."""
        size = size_of(value) if size is None else size
        with self.lock:
            now = self.clock()
            old = self.entries.pop(key, None)
            if old is not None:
                self.used -= old[1]
            if size > self.budget:
                return False
            freed, evict = 0, []
            for k, (_, n, used_at) in self.entries.items():
                if self.used - freed + size <= self.budget:
                    break
                if now - used_at < self.hold_s and not dear:
                    return False  # all that is left is in use
                evict.append(k)
                freed += n
            for k in evict:
                del self.entries[k]
            self.used += size - freed
            self.entries[key] = (value, size, now)
            return True

    def get_or_make(
        self,
        key: Any,
        make: Callable[[], T],
        size: Callable[[T], int] = size_of,
        dear: bool = False,
        keep_none: bool = False,
    ) -> T:
        """The value kept for `key`, else make(), then kept (`size(value)` bytes; a None only
        with `keep_none`)."""
        hit = self.get(key)
        if hit is not MISSING:
            return hit  # type: ignore[no-any-return]
        value = make()
        if value is not None or keep_none:
            self.put(key, value, size(value), dear)
        return value

    def drop(self, kind: str) -> None:
        """Forget every entry whose key is a tuple starting with `kind`."""
        with self.lock:
            for key in [k for k in self.entries if isinstance(k, tuple) and k[:1] == (kind,)]:
                self.used -= self.entries.pop(key)[1]


# Kinds a burst of reports keeps only to build a window's shared indexes from them: each day's
# visitor ids and their positions in the window's union. Once the burst is over those indexes
# are files (trail.stats.index_files) that the next load maps instead, so `burst_over` lets go
# of these and the budget holds what the next load reads.
BUILD_ONLY = ("ids", "global ids")


def burst_over() -> None:
    """Called when the last statistics request in flight ends: forget the BUILD_ONLY kinds."""
    for kind in BUILD_ONLY:
        KEPT.drop(kind)


def _budget() -> int:
    text = os.environ.get("TRAIL_ROLLUP_CACHE_MB", str(DEFAULT_MB))
    try:
        mb = float(text)
    except ValueError:
        raise SystemExit(f"TRAIL_ROLLUP_CACHE_MB must be a number of MB, not {text!r}") from None
    return max(0, int(mb * MB))


KEPT = Kept(_budget())

"""A small in-process LRU of report results over closed days (ARCHITECTURE.md "Query layer").

A result is cached only when every UTC day it reads has closed (ended more than the compaction
delay ago, so it normally holds one compacted parquet per table). The key holds the report, the
filter and a fingerprint of what was read: the mtime of each site directory (it changes when a
day directory is added or removed) and of each of its day directories in the window (a
directory's mtime changes whenever a file is added, renamed or removed in it: late segments,
a compaction, a deletion of replaced files) of every table, the site's tombstone file, the
manifest of its imported statistics (mtime and generation: every import and every deletion of
imported rows changes them); and whatever else the caller names that the result depends on.
Today is never cached.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from trail.stats.filters import Filter, FilterError
from trail.storage import imported, layout

MAX_ENTRIES = 256
# A day is "closed" for caching once it ended this long ago (matches compaction's default delay).
CLOSED_AFTER = float(os.environ.get("TRAIL_COMPACTION_DELAY_S", "2400"))
# Reports whose result depends on the clock, never cached. (Those that read meta records, goals
# and funnel, pass the records they read as part of the key: trail.services.statistics.)
UNCACHED = frozenset({"active"})

_lock = threading.Lock()
_entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
stats = {"hits": 0, "misses": 0, "uncacheable": 0}


def days_read(name: str, f: Filter) -> tuple[date, date] | None:
    """The first and last UTC day a report reads, or None if it cannot tell (then nothing is
    cached)."""
    try:
        start, end = f.window()
    except FilterError:
        return None
    if end <= start:
        return None
    if name == "growth" and f.from_date and f.to_date:
        length = (f.to_date - f.from_date).days + 1
        start -= timedelta(days=7 if length == 1 else length)
    return start.astimezone(UTC).date(), (end - timedelta(milliseconds=1)).astimezone(UTC).date()


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


def _fingerprint(
    data_dir: Path, site_id: str, days: tuple[date, date], now: float
) -> tuple[Any, ...] | None:
    first, last = days
    last_end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    if now < last_end + CLOSED_AFTER or not layout.is_site_id(site_id):
        return None
    parts: list[int] = []
    for table in layout.TABLES:
        parts.append(_mtime(layout.site_dir(data_dir, table, site_id)))
        for day in layout.site_days(data_dir, table, site_id):
            if first <= day <= last:
                parts.append(_mtime(layout.day_dir(data_dir, table, site_id, day)))
    parts.append(_mtime(layout.tombstone_file(data_dir, site_id)))
    parts.append(_mtime(layout.imported_dir(data_dir, site_id) / imported.MANIFEST))
    # A change in the same clock tick as the stat would leave the mtime unchanged: only trust
    # directories that have been quiet for a moment.
    if max(parts) > (now - 2) * 1e9:
        return None
    return (*parts, imported.fingerprint(data_dir, site_id))


def cached(name: str, data_dir: Path, f: Filter, compute: Callable[[], Any], *extra: Any) -> Any:
    """compute(), or its earlier result for the same report, filter and files."""
    days = None if name in UNCACHED else days_read(name, f)
    fp = _fingerprint(Path(data_dir), f.site_id, days, time.time()) if days else None
    if fp is None:
        stats["uncacheable"] += 1
        return compute()
    key = (name, str(data_dir), repr(f), extra, fp)
    with _lock:
        if key in _entries:
            _entries.move_to_end(key)
            stats["hits"] += 1
            return copy.deepcopy(_entries[key])
    stats["misses"] += 1
    value = compute()
    with _lock:
        _entries[key] = copy.deepcopy(value)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return value


def clear() -> None:
    with _lock:
        _entries.clear()

"""Deletions in ClickHouse: the shipper applies every tombstone to the rows ClickHouse holds.

    <data_dir>/clickhouse/deletions.json   {"applied": ["<tombstone id>", ...]}

`DELETE /api/v1/statistics` records a tombstone (trail.storage.tombstones) and the embedded
engine stops seeing the rows at once. ClickHouse learns it from the shipper, in two ways:

- rows sent after the shipper has seen the tombstone leave its rows out (trail.clickhouse
  .batches.keep), so a late row of a deleted range (a WAL replayed after a crash) never arrives;
- rows sent before are removed by a lightweight `DELETE FROM <table> WHERE site_id = ... AND
  <time in the range>` per table (and `session_states`, the copy of the session states), with
  bound parameters. The shipper runs it between batches, never with a batch in flight, so every
  row sent without the filter is in ClickHouse before the DELETE.

Only after ClickHouse acknowledged every statement is the tombstone's id added to
`deletions.json` (written atomically). A process killed in between runs the statements again
after its restart: a DELETE of rows already gone deletes nothing. Until its id is recorded a
tombstone keeps the reports of its windows on the embedded engine (trail.clickhouse.backend).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import orjson

from trail.clickhouse.spool import root
from trail.storage import layout, tombstones
from trail.storage.daydir import write_atomic
from trail.storage.tombstones import Tombstone

# The ClickHouse tables holding the rows of each segment table.
TARGETS: dict[str, tuple[str, ...]] = {
    "sessions": ("sessions", "session_states"),
    "page_views": ("page_views",),
    "events": ("events",),
    "requests": ("requests",),
}
# Fault injection for the crash tests: SIGKILL after the n-th acknowledged DELETE, before the
# tombstone is recorded as applied.
_KILL_AFTER_DELETES = int(os.environ.get("TRAIL_CLICKHOUSE_KILL_AFTER_DELETES", "0"))
_deletes = 0

DELETE = (
    "DELETE FROM {db}.{table} WHERE site_id = {{site:String}}"
    " AND toUnixTimestamp64Milli(time) >= {{start:Int64}}"
    " AND toUnixTimestamp64Milli(time) < {{end:Int64}}"
    " AND toUnixTimestamp64Milli(time) <= {{deleted_at:Int64}}"
)


def stone_id(site: str, stone: Tombstone) -> str:
    """A tombstone's id: its site and record (records are only ever appended)."""
    return f"{site}|{orjson.dumps(stone.to_json()).decode()}"


def all_stones(data_dir: Path) -> list[tuple[str, Tombstone]]:
    """Every site's tombstones, in file order."""
    try:
        names = sorted(os.listdir(Path(data_dir) / layout.TOMBSTONES))
    except FileNotFoundError:
        return []
    out: list[tuple[str, Tombstone]] = []
    for name in names:
        if name.startswith("site=") and name.endswith(".json"):
            site = name.removeprefix("site=").removesuffix(".json")
            out.extend((site, s) for s in tombstones.load(data_dir, site))
    return out


_applied_cache: dict[str, tuple[int, frozenset[str]]] = {}


def applied(data_dir: Path | str) -> frozenset[str]:
    """The ids of the tombstones applied to ClickHouse (cached by the file's mtime)."""
    path = root(data_dir) / "deletions.json"
    try:
        mtime = os.stat(path).st_mtime_ns
        cached = _applied_cache.get(str(path))
        if cached is not None and cached[0] == mtime:
            return cached[1]
        ids = frozenset(orjson.loads(path.read_bytes()).get("applied", []))
    except FileNotFoundError:
        return frozenset()
    if time.time_ns() - mtime > 2_000_000_000:  # two writes within a clock tick share an mtime
        _applied_cache[str(path)] = (mtime, ids)
    return ids


def unapplied(data_dir: Path, site: str, stones: list[Tombstone]) -> list[Tombstone]:
    """The site's tombstones among `stones` that ClickHouse has not applied yet."""
    done = applied(data_dir)
    return [s for s in stones if stone_id(site, s) not in done]


def waiting(data_dir: Path) -> list[tuple[str, Tombstone]]:
    """The tombstones still to apply, in order."""
    done = applied(data_dir)
    return [(site, s) for site, s in all_stones(data_dir) if stone_id(site, s) not in done]


def apply(client: Any, database: str, site: str, stone: Tombstone) -> None:
    """Delete the tombstone's rows from every ClickHouse table holding them."""
    global _deletes
    params = {
        "site": site,
        "start": stone.start_ms,
        "end": stone.end_ms,
        "deleted_at": stone.deleted_at_ms,
    }
    for table in stone.tables:
        for target in TARGETS.get(table, ()):
            client.command(DELETE.format(db=database, table=target), parameters=params)
            _deletes += 1
            if _deletes == _KILL_AFTER_DELETES:
                os.kill(os.getpid(), signal.SIGKILL)


def record(data_dir: Path, site: str, stone: Tombstone) -> None:
    """Record the tombstone as applied (durably)."""
    ids = sorted(applied(data_dir) | {stone_id(site, stone)})
    write_atomic(root(data_dir) / "deletions.json", orjson.dumps({"applied": ids}))

"""Deletions in ClickHouse: the shipper applies every deletion to the rows ClickHouse holds.

    <data_dir>/clickhouse/deletions.json      {"applied": ["<deletion id>", ...]}
    <data_dir>/clickhouse/deleted-sites.json  {"sites": ["<site id>", ...]}

Two kinds of deletion reach it, both recorded in the meta store (trail.storage.deletion_log),
which every node shares with `meta_store = "postgres"`:

- `DELETE /api/v1/statistics` records a range (a tombstone, trail.storage.tombstones) in the
  meta store and in the data directory of the node that took it. `sync` copies the meta store's
  ranges into this node's tombstones, so the embedded engine and compaction of every node drop
  the rows too.
- Deleting a site (`DELETE /api/v1/domain`, a TinyTrail website, an account) records the site
  in the transaction that deletes it. `sync` keeps the list of deleted sites in
  `deleted-sites.json`.

ClickHouse learns them from each node's shipper, in two ways:

- rows sent after the shipper has seen a deletion leave its rows out (trail.clickhouse
  .batches.keep: a deleted site's rows all, a range's rows by the tombstone rule), so a late
  row (a WAL replayed after a crash, a hit with an old time, a row another node had not sent
  yet) never arrives. Both lists are files, so a batch resent after a restart is filtered the
  same way before the meta store answers;
- rows sent before are removed by lightweight DELETEs, with bound parameters: per table (and
  `session_states`, the copy of the session states) `DELETE FROM <table> WHERE site_id = ...`
  and, for a range, `AND <time in the range>`. The shipper runs them between batches, never
  with a batch in flight, so every row it sent without the filter is in ClickHouse first.

Every node applies every deletion once: another node may have sent rows of the range before it
learned of it, and only that node knows when it stopped. A DELETE of rows already gone deletes
nothing. Only after ClickHouse acknowledged every statement is the deletion's id added to
`deletions.json` (written atomically); a process killed in between runs the statements again
after its restart. Until its id is recorded a range keeps the reports of its windows on the
embedded engine (trail.clickhouse.backend).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import orjson

from trail.clickhouse.spool import root
from trail.storage import deletion_log, layout, tombstones
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
# deletion is recorded as applied.
_KILL_AFTER_DELETES = int(os.environ.get("TRAIL_CLICKHOUSE_KILL_AFTER_DELETES", "0"))
_deletes = 0

DELETE_SITE = "DELETE FROM {db}.{table} WHERE site_id = {{site:String}}"
DELETE = (
    DELETE_SITE + " AND toUnixTimestamp64Milli(time) >= {{start:Int64}}"
    " AND toUnixTimestamp64Milli(time) < {{end:Int64}}"
    " AND toUnixTimestamp64Milli(time) <= {{deleted_at:Int64}}"
)

# A deletion: a site and a range of its rows (a tombstone), or None for the whole site.
Deletion = tuple[str, Tombstone | None]


def stone_id(site: str, stone: Tombstone | None) -> str:
    """A deletion's id: its site and record (records are only ever appended)."""
    if stone is None:
        return f"{site}|site"
    return f"{site}|{orjson.dumps(stone.to_json()).decode()}"


def open_meta(data_dir: Path | str) -> Any:
    """The data directory's meta store (its LMDB, or the PostgreSQL its pointer names), where
    the deletions are; None when it has none (a copy of the rows alone)."""
    from trail.storage import meta_backend
    from trail.storage.meta import MetaStore

    folder = Path(data_dir) / "meta"
    return MetaStore.open(folder) if meta_backend.exists(folder) else None


def sync(meta: Any, data_dir: Path) -> frozenset[str]:
    """Bring the meta store's deletions into the data directory: its ranges into the
    tombstones, its deleted sites into `deleted-sites.json`; the deleted sites."""
    log = deletion_log.read(meta)
    by_site: dict[str, list[Tombstone]] = {}
    for site, stone in log.ranges:
        by_site.setdefault(site, []).append(stone)
    for site, stones in by_site.items():
        if layout.is_site_id(site) and not set(stones) <= set(tombstones.load(data_dir, site)):
            tombstones.put(data_dir, site, stones)
    if not log.sites <= deleted_sites(data_dir):
        sites = sorted(deleted_sites(data_dir) | log.sites)
        root(data_dir).mkdir(parents=True, exist_ok=True)
        write_atomic(root(data_dir) / "deleted-sites.json", orjson.dumps({"sites": sites}))
    return deleted_sites(data_dir)


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


def all_deletions(data_dir: Path) -> list[Deletion]:
    """Every deletion the data directory knows: deleted sites, then the ranges of the others."""
    gone = deleted_sites(data_dir)
    ranges: list[Deletion] = [(site, s) for site, s in all_stones(data_dir) if site not in gone]
    return [*((site, None) for site in sorted(gone)), *ranges]


_cache: dict[str, tuple[int, frozenset[str]]] = {}


def _ids(path: Path, field: str) -> frozenset[str]:
    """The list `field` of a JSON file (cached by the file's mtime; empty when none)."""
    try:
        mtime = os.stat(path).st_mtime_ns
        cached = _cache.get(str(path))
        if cached is not None and cached[0] == mtime:
            return cached[1]
        ids = frozenset(orjson.loads(path.read_bytes()).get(field, []))
    except FileNotFoundError:
        return frozenset()
    if time.time_ns() - mtime > 2_000_000_000:  # two writes within a clock tick share an mtime
        _cache[str(path)] = (mtime, ids)
    return ids


def applied(data_dir: Path | str) -> frozenset[str]:
    """The ids of the deletions applied to ClickHouse."""
    return _ids(root(data_dir) / "deletions.json", "applied")


def deleted_sites(data_dir: Path | str) -> frozenset[str]:
    """The sites the meta store says were deleted, as the last `sync` found them."""
    return _ids(root(data_dir) / "deleted-sites.json", "sites")


def unapplied(data_dir: Path, site: str, stones: list[Tombstone]) -> list[Tombstone]:
    """The site's tombstones among `stones` that ClickHouse has not applied yet."""
    done = applied(data_dir)
    return [s for s in stones if stone_id(site, s) not in done]


def waiting(data_dir: Path) -> list[Deletion]:
    """The deletions still to apply, in order."""
    done = applied(data_dir)
    return [(site, s) for site, s in all_deletions(data_dir) if stone_id(site, s) not in done]


def apply(client: Any, database: str, site: str, stone: Tombstone | None) -> None:
    """Delete the deletion's rows from every ClickHouse table holding them."""
    global _deletes
    params: dict[str, str | int] = {"site": site}
    tables: tuple[str, ...] = layout.TABLES
    sql = DELETE_SITE
    if stone is not None:
        sql, tables = DELETE, stone.tables
        params = {
            "site": site,
            "start": stone.start_ms,
            "end": stone.end_ms,
            "deleted_at": stone.deleted_at_ms,
        }
    for table in tables:
        for target in TARGETS.get(table, ()):
            client.command(sql.format(db=database, table=target), parameters=params)
            _deletes += 1
            if _deletes == _KILL_AFTER_DELETES:
                os.kill(os.getpid(), signal.SIGKILL)


def record(data_dir: Path, site: str, stone: Tombstone | None) -> None:
    """Record the deletion as applied (durably)."""
    ids = sorted(applied(data_dir) | {stone_id(site, stone)})
    write_atomic(root(data_dir) / "deletions.json", orjson.dumps({"applied": ids}))

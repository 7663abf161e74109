"""Deleted statistics: per-site tombstones that hide rows now and remove them at compaction.

`DELETE /api/v1/statistics` appends a record {tables, from, to, deleted_at} (UTC milliseconds) to
`<data_dir>/tombstones/site=<id>.json`. Every scan drops rows of those tables with
from <= time < to and time <= deleted_at, and compaction rewrites day files without them, so rows
sealed later (a WAL replayed after a crash, a worker's last unsealed second) stay deleted too.
Rows with a time after the deletion (a range reaching into the future) are new data and stay.
The same record goes to the meta store (trail.storage.deletion_log); with storage = "clickhouse"
every node's shipper copies the records of the other nodes here (`put`).
Tombstones are kept forever: they are tiny, and late rows of a deleted range can come at any time.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl

from trail.storage import layout
from trail.storage.daydir import write_atomic

ALL_TABLES = layout.TABLES
# Pirsch's `kind` -> the collected tables it deletes. Imported statistics are not rows of these
# tables: kinds "" and "imported" delete them too (trail.storage.imported), "all" does not.
KIND_TABLES: dict[str, tuple[str, ...]] = {
    "": ALL_TABLES,
    "all": ALL_TABLES,
    "events": ("events",),
    "imported": (),
}


@dataclass(frozen=True)
class Tombstone:
    tables: tuple[str, ...]
    start_ms: int  # inclusive
    end_ms: int  # exclusive
    deleted_at_ms: int

    def to_json(self) -> dict[str, object]:
        return {
            "tables": list(self.tables),
            "from": self.start_ms,
            "to": self.end_ms,
            "deleted_at": self.deleted_at_ms,
        }


def _path(data_dir: Path, site_id: str) -> Path | None:
    return layout.tombstone_file(data_dir, site_id) if layout.is_site_id(site_id) else None


_cache: dict[str, tuple[int, list[Tombstone]]] = {}


def load(data_dir: Path, site_id: str) -> list[Tombstone]:
    """The site's tombstones (cached by file mtime; [] when none)."""
    path = _path(data_dir, site_id)
    if path is None:
        return []
    key = str(path)
    try:
        mtime = os.stat(path).st_mtime_ns
        cached = _cache.get(key)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        raw = orjson.loads(path.read_bytes())
    except FileNotFoundError:  # none, or the site's data were removed meanwhile
        _cache.pop(key, None)
        return []
    out = [
        Tombstone(tuple(r["tables"]), int(r["from"]), int(r["to"]), int(r["deleted_at"]))
        for r in raw
    ]
    if time.time_ns() - mtime > 2_000_000_000:
        _cache[key] = (mtime, out)
    return out


def add(
    data_dir: Path, site_id: str, tables: tuple[str, ...], start_ms: int, end_ms: int
) -> Tombstone:
    """Record a deletion (durably, before returning); concurrent writers serialise on a lock."""
    stone = Tombstone(tables, start_ms, end_ms, int(time.time() * 1000))
    put(data_dir, site_id, [stone])
    return stone


def put(data_dir: Path, site_id: str, stones: list[Tombstone]) -> int:
    """Record `stones` as they are, but those the site has already (deletions another node
    recorded too, trail.storage.deletion_log), in one write; how many were added."""
    path = _path(data_dir, site_id)
    if path is None:
        raise ValueError("bad site id")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            records = orjson.loads(path.read_bytes()) if path.exists() else []
            new = [s.to_json() for s in stones if s.to_json() not in records]
            if new:
                write_atomic(path, orjson.dumps(records + new))
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            _cache.pop(str(path), None)
    return len(new)


def relevant(stones: list[Tombstone], table: str, start_ms: int, end_ms: int) -> list[Tombstone]:
    """The tombstones of `table` that overlap [start_ms, end_ms)."""
    return [t for t in stones if table in t.tables and t.start_ms < end_ms and start_ms < t.end_ms]


def keep_expr(stones: list[Tombstone]) -> pl.Expr | None:
    """A predicate true for rows no tombstone deletes (None when nothing applies)."""
    if not stones:
        return None
    t = pl.col("time").cast(pl.Int64)
    expr: pl.Expr | None = None
    for s in stones:
        dead = (t >= s.start_ms) & (t < s.end_ms) & (t <= s.deleted_at_ms)
        expr = dead if expr is None else expr | dead
    assert expr is not None
    return ~expr

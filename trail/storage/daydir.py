"""One (table, site, day) directory of segment files and its compaction manifest.

A day directory holds sealed `*.arrow` segments (written by the Rust WAL sealer) and, once the
maintenance process compacted it, `part-<n>.parquet` files plus `compacted.json`:

    {"live": ["part-3.parquet"],
     "replaced": {"w0-g17...-0.arrow": {"by": "part-3.parquet", "at": 1700000000.0}, ...},
     "tombstones_at": 1700000000000, "day_only": true}

While the day is still open, the maintenance process merges its segments into parts every few
minutes (trail.tasks.live_merge): then `live` may name several parts, all read, and the manifest
says `"provisional": true` (the parts are quick to write and have no rollups; the day's
compaction rewrites them into its final part once the day closes).

Readers and the compactor agree on these rules, which make every moment consistent without a lock
on the read side (the compactor writes the parquet first, then renames the manifest into place):
- a parquet file is read only if the manifest lists it as live and it exists in the listing
  (a parquet renamed before its manifest is ignored: its inputs are still read);
- a file (arrow or an older parquet) is skipped if the manifest says it was replaced by a live
  parquet that exists in the same listing (a reader that listed before the parquet appeared
  still reads the inputs);
- replaced files are deleted after a grace period, so a query that listed them can still open them.

A row belongs to the UTC day of its directory. One outside it (a damaged segment) is never read:
scans bound every day by its own day, except for live parquet files the manifest marks
`day_only` (compaction dropped such rows, or checked the file's time statistics).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from trail.storage.layout import LOCK, MANIFEST, part_number, temp_name


@dataclass
class Manifest:
    live: list[str] = field(default_factory=list)
    replaced: dict[str, dict[str, Any]] = field(default_factory=dict)
    # deleted_at (ms) of the newest tombstone already applied to the live parquet.
    tombstones_at: int = 0
    # Pre-aggregates of the live parquet (trail.storage.rollups), {} when there are none.
    rollup: dict[str, Any] = field(default_factory=dict)
    # The live parquet holds only rows of the directory's UTC day.
    day_only: bool = False
    # The live parts were merged while the day was open (trail.tasks.live_merge): compaction
    # rewrites them once it closes.
    provisional: bool = False

    @classmethod
    def read(cls, day_dir: Path) -> Manifest:
        try:
            raw = orjson.loads((day_dir / MANIFEST).read_bytes())
        except FileNotFoundError:
            return cls()
        except (OSError, orjson.JSONDecodeError):
            # A torn manifest cannot exist (it is renamed into place); treat garbage as absent
            # rather than failing every query of the site.
            return cls()
        return cls(
            live=list(raw.get("live", [])),
            replaced=dict(raw.get("replaced", {})),
            tombstones_at=int(raw.get("tombstones_at", 0)),
            rollup=dict(raw.get("rollup") or {}),
            day_only=bool(raw.get("day_only", False)),
            provisional=bool(raw.get("provisional", False)),
        )

    def write(self, day_dir: Path) -> None:
        body: dict[str, Any] = {
            "live": self.live,
            "replaced": self.replaced,
            "tombstones_at": self.tombstones_at,
        }
        if self.rollup:
            body["rollup"] = self.rollup
        if self.day_only:
            body["day_only"] = True
        if self.provisional:
            body["provisional"] = True
        write_atomic(day_dir / MANIFEST, orjson.dumps(body))


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a fsynced temp file and a rename, then fsync the directory."""
    tmp = path.with_name(temp_name(path.name))
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def locked(day_dir: Path) -> Iterator[None]:
    """Exclusive lock for writers of one day directory (compaction, deletion rewrites)."""
    with open(day_dir / LOCK, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def visible_files(names: list[str], manifest: Manifest) -> tuple[list[str], list[str]]:
    """(arrow, parquet) names a reader should read, given one directory listing."""
    present = set(names)
    live = [p for p in manifest.live if p in present]
    live_set = set(live)

    def superseded(name: str) -> bool:
        # Follow "replaced by" links: segments merged into part-1, itself merged into part-2.
        seen = {name}
        entry = manifest.replaced.get(name)
        while entry is not None:
            by = str(entry.get("by"))
            if by in live_set:
                return True
            if by in seen:
                return False
            seen.add(by)
            entry = manifest.replaced.get(by)
        return False

    arrow = sorted(n for n in names if n.endswith(".arrow") and not superseded(n))
    # Oldest part first (part-9 before part-10): merges keep rows in the order they were written.
    parquet = sorted((n for n in live if not superseded(n)), key=_part_order)
    return arrow, parquet


def _part_order(name: str) -> tuple[int, str]:
    number = part_number(name)
    return (-1 if number is None else number), name


@dataclass(frozen=True)
class Listing:
    """What to read in one day directory: full paths, and whether the parquet files are known to
    hold only rows of the directory's day (then a scan of the whole day needs no time test)."""

    arrow: list[str]
    parquet: list[str]
    day_only: bool = False


_EMPTY = Listing([], [], True)

# Listing cache: day dir -> (dir mtime_ns, listing). A directory's mtime changes whenever a file
# is added, renamed or removed in it; entries are only trusted when the mtime is older than the
# filesystem's timestamp granularity, so a change in the same tick as the listing is never missed.
_listing_cache: dict[str, tuple[int, Listing]] = {}
_SETTLED_NS = 2_000_000_000


def read_day(day_dir: Path) -> Listing:
    """The files to read in one day directory (empty when it does not exist)."""
    key = str(day_dir)
    try:
        mtime = os.stat(key).st_mtime_ns
        cached = _listing_cache.get(key)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        names = os.listdir(key)
    except (FileNotFoundError, NotADirectoryError):
        _listing_cache.pop(key, None)
        return _EMPTY
    manifest = Manifest.read(day_dir) if MANIFEST in names else Manifest()
    arrow, parquet = visible_files(names, manifest)
    day_only = manifest.day_only and parquet == manifest.live
    result = Listing([f"{key}/{n}" for n in arrow], [f"{key}/{n}" for n in parquet], day_only)
    if time.time_ns() - mtime > _SETTLED_NS:
        if len(_listing_cache) > 50_000:
            _listing_cache.clear()
        _listing_cache[key] = (mtime, result)
    return result


def list_day(day_dir: Path) -> tuple[list[str], list[str]]:
    """Full paths of the (arrow, parquet) files to read in one day directory."""
    listing = read_day(day_dir)
    return listing.arrow, listing.parquet

"""Per-window indexes built once per machine and shared by its worker processes.

The visitor union of a window's closed days, the breakdowns' visitor indexes
(trail.stats.rollup_visitors) and the answers made from every day of a window (pages, hours,
weekdays, events) span days, so compaction cannot write them, and each worker would otherwise
build its own on its first dashboard load (~1-2 s of CPU at 10M page views a month).
They are kept in `segments/indexes/site=<id>/<key hash>/` (one `.npy` per array, a `.parquet`
per table such as a window's page report; not in the tables' site directories, whose mtimes the
result cache watches): the first process that needs one builds it under a file lock and renames it into
place; the others wait for the lock and map the files read-only (the page cache holds them once for all workers). The key
names the rollup files the index was built from by (path, inode, mtime, size), so a compaction
or a deletion that replaces them makes a new key. When an entry is written, those older than
KEEP_S and the oldest beyond MAX_KEPT are removed (they hold visitor ids; removing a site's data
removes every `segments/*/site=<id>`, these too). They are a cache: removing the directory only costs the next load a build.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

DIRECTORY = "indexes"
KEEP_S = 2 * 86_400
MAX_KEPT = 24  # ~8 entries per window: a few windows per site (~44 MB each at 10M page views)


def directory_of(rollup_file: str) -> Path:
    """segments/sessions/site=X/day=D/rollup-1.u64 -> segments/indexes/site=X"""
    site_dir = Path(rollup_file).parent.parent
    return site_dir.parent.parent / DIRECTORY / site_dir.name


Value = np.ndarray | pl.DataFrame


def shared(root: Path, key: tuple[Any, ...], make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The arrays (and tables) make() returns for `key`, read from the machine's copy in `root`
    (directory_of) when one exists."""
    name = hashlib.sha256(repr(key).encode()).hexdigest()[:40]
    found = _read(root / name)
    if found is not None:
        return found
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / f".{name}.lock", "a")  # noqa: SIM115  held while building
    except OSError:
        return make()  # a read-only data dir: built in memory only
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _read(root / name)
        if found is not None:
            return found
        arrays = make()
        try:
            _write(root, name, arrays)
        except OSError:
            return arrays
        finally:
            os.unlink(lock.name)
    return _read(root / name) or arrays


def _read(path: Path) -> dict[str, Any] | None:
    try:
        out: dict[str, Any] = {}
        for n in os.listdir(path):
            if n.endswith(".npy"):
                out[n[:-4]] = np.load(path / n, mmap_mode="r")
            elif n.endswith(".parquet"):
                out[n[:-8]] = pl.read_parquet(path / n)
        return out
    except (OSError, ValueError, pl.exceptions.PolarsError):
        return None  # not there (yet), or removed while read


def _write(root: Path, name: str, arrays: dict[str, Any]) -> None:
    tmp = root / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for k, v in arrays.items():
        if isinstance(v, pl.DataFrame):
            v.write_parquet(tmp / f"{k}.parquet", compression="lz4", statistics=False)
            continue
        with open(tmp / f"{k}.npy", "wb") as f:
            np.save(f, np.ascontiguousarray(v), allow_pickle=False)
    os.rename(tmp, root / name)
    _prune(root, keep=name)


def _prune(root: Path, keep: str) -> None:
    entries = []
    now = time.time()
    for n in os.listdir(root):
        if n == keep:
            continue
        try:
            mtime = os.stat(root / n).st_mtime
        except FileNotFoundError:
            continue
        if not n.startswith("."):
            entries.append((mtime, n))
        elif mtime < now - KEEP_S:  # left by a process that stopped while building
            if (root / n).is_dir():
                shutil.rmtree(root / n, ignore_errors=True)
            else:
                (root / n).unlink(missing_ok=True)
    entries.sort()
    for i, (mtime, n) in enumerate(entries):
        if mtime < now - KEEP_S or i < len(entries) - (MAX_KEPT - 1):
            # renamed first: a reader sees the whole entry or none of it
            gone = root / f".{n}.{os.getpid()}.removed"
            try:
                os.rename(root / n, gone)
            except OSError:
                continue
            shutil.rmtree(gone, ignore_errors=True)

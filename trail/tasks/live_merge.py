"""Live merges: the segments of a day that has not closed become a few zstd Parquet parts.

The WAL sealer writes one small Arrow segment per table, site and UTC day every second or so
(rust_core/src/wal), so an open day would otherwise hold thousands of files and cost hundreds of
bytes per page view until its compaction (trail.tasks.compaction). Every `INTERVAL` seconds the
maintenance process takes, in each day directory whose day has not closed, the segments whose
WAL file is gone (the sealer may rewrite the others on replay, see compaction) and merges them
with the newest live parts into one new part:

- size-tiered: walking from the newest part back, a part is merged again while it holds at most
  `FANOUT` times the rows gathered so far, so a day keeps a handful of parts (sizes growing at
  least 3x from newest to oldest) and each row is rewritten a few times, not every round;
- the same steps as compaction: rows outside the directory's day dropped, tombstoned rows dropped,
  session rows collapsed, rows sorted by session; zstd level `ZSTD_LEVEL` (cheap; the day's
  compaction rewrites the parts at its own level once the day closes, as the manifest's
  `provisional` asks);
- the same commit as compaction (trail.storage.daydir): the part is written to a temp name,
  fsynced and renamed, then the manifest naming it live and its inputs replaced is renamed into
  place. A process killed before that rename leaves an orphan part no reader reads (the next
  round removes it); after it, the inputs are replaced. Readers see the old files or the new
  part, never both, never neither; replaced files are deleted after the grace period.

Collapsing session rows on part of a day is what compaction already does with late rows: sums
over `sign` are unchanged, a state whose +1 and -1 sit in different files nets 0 when read
together, and every (session, minute) that showed its visitor still shows it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from trail.storage import layout, rollups
from trail.storage.daydir import MANIFEST, Manifest, locked, visible_files
from trail.tasks import compaction
from trail.tasks.compaction import DirResult, Summary

log = logging.getLogger("trail.live_merge")

INTERVAL = float(os.environ.get("TRAIL_LIVE_MERGE_INTERVAL_S", "300"))
ZSTD_LEVEL = 3
FANOUT = 2
# Past this many live parts a round merges them all (a backstop; the tiers keep fewer).
MAX_PARTS = 12


def run_round(
    data_dir: Path | str,
    *,
    now: float | None = None,
    delay: float = compaction.DEFAULT_DELAY,
    grace: float = compaction.DEFAULT_GRACE,
) -> Summary:
    """One round over every day directory whose day has not closed (`delay`, as compaction)."""
    now = time.time() if now is None else now
    root = Path(data_dir)
    summary = Summary()
    pending = compaction.pending_generations(root)  # a hint only: merge_dir lists it again
    for table, site, day_dir in compaction._day_dirs(root):
        day = layout.day_of(day_dir.name)
        if day is None or compaction.day_closed(day, now, delay):
            continue
        if compaction._still_broken(day_dir) or not _has_work(day_dir, pending, now, grace):
            continue
        try:
            result = merge_dir(root, table, site, day_dir, now=now, grace=grace)
        except Exception as e:  # noqa: BLE001  one directory must not stop the round
            summary.dirs.append(compaction._failed(table, site, day_dir, e))
            continue
        compaction._broken.pop(str(day_dir), None)
        summary.dirs.append(result)
    return summary


def maintenance_task(state: Any) -> None:
    """The maintenance Task body (trail.tasks.maintenance)."""
    summary = run_round(Path(state.config.data_dir)).as_dict()
    if summary["failed_dirs"]:
        log.warning("live merge: %s", summary)
    elif summary["compacted_dirs"]:
        log.debug("live merge: %s", summary)


def merge_dir(
    data_dir: Path, table: str, site: str, day_dir: Path, *, now: float, grace: float
) -> DirResult:
    """Merge the ready segments of one open day directory (see the module doc)."""
    day, result = compaction.day_result(table, site, day_dir)
    with locked(day_dir):
        manifest = Manifest.read(day_dir)
        names, _, parquet, ready = compaction.list_ready(
            data_dir, day_dir, manifest, result, now=now, grace=grace
        )
        if not ready:
            return result
        stones = compaction._stones_for(data_dir, site, table, day)
        newest_stone = max((s.deleted_at_ms for s in stones), default=0)
        fresh = compaction._read(day_dir, table, ready, [])
        stale_stones = newest_stone > manifest.tombstones_at
        parts = _parts_to_merge(day_dir, parquet, fresh.height, all_of_them=stale_stones)
        df = pl.concat([compaction._read(day_dir, table, [], parts), fresh])
        result.files_in, result.rows_in = len(parts) + len(ready), df.height
        df, result.out_of_day = compaction.day_rows(df, table, day, stones)
        name = layout.part_name(compaction._next_part(names))
        result.bytes_out = compaction._write_parquet(df, day_dir / name, level=ZSTD_LEVEL)
        result.rows_out = df.height
        if parts == parquet:  # every live part will reflect every tombstone
            manifest.tombstones_at = max(manifest.tombstones_at, newest_stone)
        _commit(day_dir, manifest, parquet, parts + ready, name, now)
        result.action = "compacted"
        if grace <= 0:
            result.purged += compaction._purge(day_dir, manifest, now, grace)
    return result


def _commit(
    day_dir: Path, manifest: Manifest, live: list[str], inputs: list[str], name: str, now: float
) -> None:
    """Name `name` live in place of `inputs` (rename of the manifest: the commit point)."""
    for old in rollups.files_of(manifest.rollup):  # a rollup describes one final part only
        manifest.replaced[old] = {"by": name, "at": now}
    manifest.rollup = {}
    for entry in manifest.replaced.values():
        if entry.get("by") in inputs:  # files an input had replaced now point at the new part
            entry["by"] = name
    for n in inputs:
        manifest.replaced[n] = {"by": name, "at": now}
    kept = [p for p in live if p not in inputs]
    # Kept parts are only known to hold rows of the day if the manifest said so before.
    manifest.day_only = manifest.day_only or not kept
    manifest.live = [*kept, name]
    manifest.provisional = True
    manifest.write(day_dir)


def _parts_to_merge(
    day_dir: Path, parquet: list[str], rows: int, *, all_of_them: bool
) -> list[str]:
    """The newest live parts to merge with `rows` new rows (oldest first, as `parquet`)."""
    if all_of_them or len(parquet) >= MAX_PARTS:
        return list(parquet)
    chosen: list[str] = []
    gathered = rows
    for name in reversed(parquet):
        part_rows = pq.read_metadata(day_dir / name).num_rows
        if part_rows > FANOUT * gathered:
            break
        chosen.append(name)
        gathered += part_rows
    return chosen[::-1]


def _has_work(day_dir: Path, pending: set[str], now: float, grace: float) -> bool:
    """Cheap check before taking the lock: a visible segment whose WAL file is gone, or replaced
    files past the grace period."""
    try:
        names = os.listdir(day_dir)
    except (FileNotFoundError, NotADirectoryError):
        return False
    segments = [n for n in names if n.endswith(".arrow")]
    if MANIFEST in names:
        manifest = Manifest.read(day_dir)
        if any(now - float(e.get("at", 0)) >= grace for e in manifest.replaced.values()):
            return True
        segments, _ = visible_files(names, manifest)
    return any(not compaction._is_pending(n, pending) for n in segments)

"""The shipper's queue: a hard link to every sealed segment not yet in ClickHouse.

    <data_dir>/clickhouse/spool/<gen:020>-w<worker>-<n>~<table>~<site>.arrow
    <data_dir>/clickhouse/watermarks.json    {"<worker>": <gen>, ...}

Segments are immutable once their generation is complete, and compaction deletes them a grace
period after merging them into Parquet; a link keeps the rows on disk until they are shipped,
however long ClickHouse is away. Names sort by generation (nanoseconds when the WAL file was
opened), so the queue is in the order rows were sealed.

A generation is complete when its WAL file is gone (the sealer deletes it after the last
segment, trail.storage.layout / rust_core/src/wal). Generations are numbered by the clock and the
WAL file is created with its number, so a generation older than `MARGIN_NS` with no WAL file
at the start of a scan had all its segments written before the scan listed anything. Per
worker, every generation below its watermark has been linked; `discover` links the ones
between the old and the new watermark, then records the new one. The shipper ships only linked
files below the watermark (`committed`), so a scan interrupted after linking and before
recording is simply repeated.

A scan walks the segment tree only when a generation may have completed: every WAL file is
created and deleted in the WAL directory, so while its mtime stays as it was at the last walk
(and had settled then) there is nothing new to link, and an idle box costs one `stat` a second.
In the walk, a day directory whose mtime is unchanged since it was fully seen costs one `stat`.

The first scan of a data directory links only segments that compaction has not replaced yet:
the rows of replaced segments are in Parquet parts, the history `trail migrate clickhouse`
moves. That scan links those parts into `<data_dir>/clickhouse/history/` (they are the
history as it was when shipping began; trail.clickhouse.migrate).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from trail.storage import layout
from trail.storage.daydir import Manifest, fsync_dir, visible_files, write_atomic

MARGIN_NS = 2_000_000_000
# A directory whose mtime is this old is trusted not to change unseen (timestamp granularity).
_SETTLED_NS = 2_000_000_000
# Seconds between walks of the segment tree while the WAL directory stays as it was.
FULL_SCAN_S = 60.0
_SEGMENT = re.compile(r"w(\d+)-g(\d+)-(\d+)\.arrow")
_SPOOLED = re.compile(r"(\d{20})-w(\d+)-(\d+)~([a-z_]+)~(.+)\.arrow")


def root(data_dir: Path | str) -> Path:
    return Path(data_dir) / "clickhouse"


def spool_dir(data_dir: Path | str) -> Path:
    return root(data_dir) / "spool"


@dataclass(frozen=True)
class Spooled:
    """One queued segment."""

    name: str
    gen: int
    worker: int
    table: str
    site: str


def spooled(name: str) -> Spooled | None:
    m = _SPOOLED.fullmatch(name)
    if m is None:
        return None
    return Spooled(name, int(m.group(1)), int(m.group(2)), m.group(4), m.group(5))


def spool_name(table: str, site: str, segment: str) -> str | None:
    """The queue name of segment `w<worker>-g<gen>-<n>.arrow` of (table, site)."""
    m = _SEGMENT.fullmatch(segment)
    if m is None:
        return None
    return f"{int(m.group(2)):020d}-w{m.group(1)}-{m.group(3)}~{table}~{site}.arrow"


@dataclass
class Discovery:
    """Scans the segment tree and links complete generations into the spool."""

    data_dir: Path
    watermarks: dict[int, int] = field(default_factory=dict)
    first_scan: bool = True
    # Segments the last scan left for later (their generation is not complete yet).
    deferred: int = 0
    # Day directories fully seen at a settled mtime: skipped until their mtime changes.
    _seen: dict[str, int] = field(default_factory=dict)
    # The WAL directory's mtime at the last walk (-1: not settled then), and when that was.
    _wal_mtime: int = -1
    _walked_at: float = 0.0

    @classmethod
    def open(cls, data_dir: Path | str) -> Discovery:
        spool_dir(data_dir).mkdir(parents=True, exist_ok=True)
        path = root(data_dir) / "watermarks.json"
        try:
            raw = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return cls(Path(data_dir))
        marks = {int(k): int(v) for k, v in raw.get("watermarks", {}).items()}
        return cls(Path(data_dir), marks, first_scan=False)

    def task(self, _state: object) -> None:
        """`scan` as a maintenance task."""
        self.scan()

    def committed(self, item: Spooled) -> bool:
        """Whether a spooled file may be shipped (its discovery was recorded)."""
        return item.gen < self.watermarks.get(item.worker, 0)

    def scan(self) -> int:
        """Link the segments of generations completed since the last scan; returns how many."""
        start = time.time_ns()
        wal_mtime = _mtime(layout.wal_dir(self.data_dir))
        if self._quiet(wal_mtime):
            return 0
        self._wal_mtime = wal_mtime if start - wal_mtime > _SETTLED_NS else -1
        self._walked_at = time.monotonic()
        pending = _pending_generations(self.data_dir)
        limit = start - MARGIN_NS

        def bound(worker: int) -> int:
            return min([limit, *(g for w, g in pending if w == worker)])

        linked = 0
        self.deferred = 0
        workers: set[int] = set(self.watermarks)
        for day_dir, table, site in _day_dirs(self.data_dir):
            linked += self._scan_day(day_dir, table, site, bound, workers, start)
        workers |= {w for w, _ in pending}
        marks = {w: max(self.watermarks.get(w, 0), bound(w)) for w in workers}
        if linked:
            fsync_dir(spool_dir(self.data_dir))
        if self.first_scan and history_dir(self.data_dir).exists():
            fsync_dir(history_dir(self.data_dir))
        if marks != self.watermarks or self.first_scan:
            body = {"watermarks": {str(w): g for w, g in sorted(marks.items())}}
            write_atomic(root(self.data_dir) / "watermarks.json", orjson.dumps(body))
        self.watermarks = marks
        self.first_scan = False
        return linked

    def _quiet(self, wal_mtime: int) -> bool:
        """Whether no generation can have completed since the last walk: every WAL file is
        created and deleted in the WAL directory, which has not changed since (and had settled
        then), and that walk left nothing for later. Then the tree is not walked (an idle box
        costs one `stat` a second); once a minute it is, whatever the directory says."""
        return (
            not self.first_scan
            and self.deferred == 0
            and self._wal_mtime >= 0
            and wal_mtime == self._wal_mtime
            and time.monotonic() - self._walked_at < FULL_SCAN_S
        )

    def _scan_day(
        self,
        day_dir: Path,
        table: str,
        site: str,
        bound: Callable[[int], int],
        workers: set[int],
        start: int,
    ) -> int:
        key = str(day_dir)
        try:
            mtime = os.stat(key).st_mtime_ns
            if self._seen.get(key) == mtime:
                return 0
            names = os.listdir(key)
        except (FileNotFoundError, NotADirectoryError):
            return 0
        if self.first_scan:
            manifest = Manifest.read(day_dir)
            names, parts = visible_files(names, manifest)
            _keep_history(self.data_dir, day_dir, table, site, parts)
        linked, deferred = 0, False
        for name in names:
            m = _SEGMENT.fullmatch(name)
            if m is None:
                continue
            worker, gen = int(m.group(1)), int(m.group(2))
            workers.add(worker)
            if gen >= bound(worker):
                deferred = True
                self.deferred += 1
                continue
            if gen < self.watermarks.get(worker, 0):
                continue
            linked += _link(day_dir / name, spool_dir(self.data_dir), spool_name(table, site, name))
        if not deferred and start - mtime > _SETTLED_NS:
            self._seen[key] = mtime
        return linked


def history_dir(data_dir: Path | str) -> Path:
    return root(data_dir) / "history"


def _keep_history(data_dir: Path, day_dir: Path, table: str, site: str, names: list[str]) -> None:
    """Link the compacted parts the first scan finds (rows sealed before shipping began) into
    `history/`, for `trail migrate clickhouse`: a later compaction may merge them with rows the
    shipper sends, so the migration ships these files as they were, not the day's parts then."""
    parts = [n for n in names if layout.part_number(n) is not None]
    if not parts:
        return
    history = history_dir(data_dir)
    history.mkdir(parents=True, exist_ok=True)
    for name in parts:
        _link(day_dir / name, history, f"{table}~{site}~{day_dir.name}~{name}")


def _link(source: Path, spool: Path, name: str | None) -> int:
    if name is None:
        return 0
    try:
        os.link(source, spool / name)
    except FileExistsError:
        return 0
    except FileNotFoundError:
        return 0  # removed meanwhile (its site was deleted)
    return 1


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


def _pending_generations(data_dir: Path) -> set[tuple[int, int]]:
    """(worker, generation) of every WAL file: generations not sealed yet."""
    try:
        names = os.listdir(layout.wal_dir(data_dir))
    except FileNotFoundError:
        return set()
    return {w for n in names if (w := layout.wal_file(n)) is not None}


def _day_dirs(data_dir: Path) -> list[tuple[Path, str, str]]:
    found: list[tuple[Path, str, str]] = []
    for table in layout.TABLES:
        for site in layout.site_ids(data_dir, table):
            parent = layout.site_dir(data_dir, table, site)
            try:
                names = os.listdir(parent)
            except FileNotFoundError:
                continue
            found.extend((parent / n, table, site) for n in sorted(names) if layout.is_day_name(n))
    return found

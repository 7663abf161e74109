"""Where a site's analytics rows live under the data directory, and what a site id may be.

    <data_dir>/segments/<table>/site=<site id>/day=<YYYY-MM-DD>/    rows of that UTC day only
        w<n>-g<gen>-<i>.arrow    sealed segments (rust_core/src/wal)
        part-<n>.parquet         merged rows (trail.tasks.live_merge, trail.tasks.compaction)
        rollup-<n>.*             pre-aggregates of the part (trail.storage.rollups, page_rollups)
        compacted.json           the manifest: which files to read (trail.storage.daydir)
    <data_dir>/tombstones/site=<site id>.json    deleted ranges (trail.storage.tombstones)
    <data_dir>/imported/site=<site id>/          imported daily aggregates (trail.storage.imported)
    <data_dir>/wal/worker-<n>-<gen>.wal         rows not sealed yet, every site mixed

Every path of a site is built here, from a site id that passed `is_site_id`: it becomes a
directory name, so it must not be able to leave its parent. Which ids the APIs accept (UUIDs) is
trail.validation's rule; every one of them passes this one.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from datetime import UTC, date, datetime, time
from pathlib import Path

TABLES = ("sessions", "page_views", "events", "requests")
DAY_MS = 86_400_000
SEGMENTS = "segments"
TOMBSTONES = "tombstones"
IMPORTED = "imported"
WAL = "wal"
MANIFEST = "compacted.json"
LOCK = ".compact.lock"

# The rule of the WAL sealer (rust_core check_site): letters, digits, '-', '_' and '.', at most
# 128 characters, no leading dot (so never "." or ".."). Site ids are UUIDs, which all pass.
_SITE_ID = re.compile(r"(?!\.)[A-Za-z0-9._-]{1,128}")
_DAY_DIR = re.compile(r"day=(\d{4}-\d{2}-\d{2})")
_PART = re.compile(r"part-(\d+)\.parquet")
_WAL_FILE = re.compile(r"worker-(\d+)-(\d+)\.wal")
_SEGMENT_GENERATION = re.compile(r"^(w\d+-g\d+-)")
_REMOVED = ".removed-"


class SiteIdError(ValueError):
    """A site id that cannot name a directory."""


def is_site_id(site_id: str) -> bool:
    """Whether `site_id` may name a site's directories (the one rule for it)."""
    return _SITE_ID.fullmatch(site_id) is not None


def _checked(site_id: str) -> str:
    if not is_site_id(site_id):
        raise SiteIdError(f"not a site id: {site_id!r}")
    return site_id


# -- segments ---------------------------------------------------------------------------------


def table_dir(data_dir: Path | str, table: str) -> Path:
    return Path(data_dir) / SEGMENTS / table


def site_dir(data_dir: Path | str, table: str, site_id: str) -> Path:
    """`segments/<table>/site=<id>`; SiteIdError for an id that fails `is_site_id`."""
    return table_dir(data_dir, table) / f"site={_checked(site_id)}"


def day_name(day: date) -> str:
    return f"day={day.isoformat()}"


def day_dir(data_dir: Path | str, table: str, site_id: str, day: date) -> Path:
    """`segments/<table>/site=<id>/day=<YYYY-MM-DD>`."""
    return site_dir(data_dir, table, site_id) / day_name(day)


def day_span_ms(day: date) -> tuple[int, int]:
    """[start, end) in UTC milliseconds of the rows a day directory holds."""
    start = int(datetime.combine(day, time(0), UTC).timestamp() * 1000)
    return start, start + DAY_MS


def day_of(name: str) -> date | None:
    """The date a `day=YYYY-MM-DD` directory name stands for; None for any other name (also
    for days Python has no date for, like the year 0 a damaged row may have been filed under)."""
    m = _DAY_DIR.fullmatch(name)
    if m is None:
        return None
    try:
        return date.fromisoformat(m.group(1))
    except ValueError:
        return None


def is_day_name(name: str) -> bool:
    """A `day=YYYY-MM-DD` name, whether or not it is a real date."""
    return _DAY_DIR.fullmatch(name) is not None


def site_days(data_dir: Path | str, table: str, site_id: str) -> list[date]:
    """The days with a directory of one site's table, in order ([] for a bad id or no rows)."""
    if not is_site_id(site_id):
        return []
    try:
        names = os.listdir(site_dir(data_dir, table, site_id))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(d for n in names if (d := day_of(n)) is not None)


def site_ids(data_dir: Path | str, table: str) -> list[str]:
    """The ids of the sites with a directory in `table`, in order."""
    return _site_ids_in(table_dir(data_dir, table))


def stored_site_ids(data_dir: Path | str) -> set[str]:
    """The ids of every site with rows on disk, in any table or among the imported statistics."""
    parents = [table_dir(data_dir, t) for t in _tables_on_disk(data_dir)]
    return {site for parent in [*parents, imported_root(data_dir)] for site in _site_ids_in(parent)}


def _site_ids_in(parent: Path) -> list[str]:
    try:
        names = os.listdir(parent)
    except FileNotFoundError:
        return []
    ids = (n.removeprefix("site=") for n in names if n.startswith("site="))
    return sorted(i for i in ids if is_site_id(i))


def _tables_on_disk(data_dir: Path | str) -> list[str]:
    """The known tables and any other directory under `segments/` (rows of every kind go)."""
    try:
        names = os.listdir(Path(data_dir) / SEGMENTS)
    except FileNotFoundError:
        names = []
    return list(dict.fromkeys([*TABLES, *sorted(n for n in names if not n.startswith("."))]))


# -- files of a day directory -----------------------------------------------------------------


def part_name(number: int) -> str:
    return f"part-{number}.parquet"


def part_number(name: str) -> int | None:
    """7 for `part-7.parquet`, None for any other name."""
    m = _PART.fullmatch(name)
    return int(m.group(1)) if m else None


def rollup_name(part: str, table: str = "sessions") -> str:
    """`part-7.parquet` -> `rollup-7.u64` (not `.arrow`: readers take those for segments), or
    `rollup-7.parquet` for page views (readers only take the `part-*.parquet` the manifest names)."""
    name = part.replace("part-", "rollup-")
    return name if table == "page_views" else name.replace(".parquet", ".u64")


def temp_name(name: str) -> str:
    """The name a file is written under before it is renamed into place (never read)."""
    return f".{name}.tmp"


# -- write-ahead logs -------------------------------------------------------------------------


def wal_dir(data_dir: Path | str) -> Path:
    return Path(data_dir) / WAL


def wal_file(name: str) -> tuple[int, int] | None:
    """(worker id, generation) of a `worker-<n>-<gen>.wal` name, else None."""
    m = _WAL_FILE.fullmatch(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def wal_generation_prefix(worker: int, generation: int) -> str:
    """The prefix of the segments sealed from one WAL file: `w<worker>-g<gen>-`."""
    return f"w{worker}-g{generation}-"


def segment_generation_prefix(name: str) -> str | None:
    """The `w<worker>-g<gen>-` prefix of a segment name, None when it has none."""
    m = _SEGMENT_GENERATION.match(name)
    return m.group(1) if m else None


# -- tombstones -------------------------------------------------------------------------------


def tombstone_file(data_dir: Path | str, site_id: str) -> Path:
    """`tombstones/site=<id>.json`; SiteIdError for an id that fails `is_site_id`."""
    return Path(data_dir) / TOMBSTONES / f"site={_checked(site_id)}.json"


# -- imported statistics ----------------------------------------------------------------------


def imported_root(data_dir: Path | str) -> Path:
    return Path(data_dir) / IMPORTED


def imported_dir(data_dir: Path | str, site_id: str) -> Path:
    """`imported/site=<id>`; SiteIdError for an id that fails `is_site_id`."""
    return imported_root(data_dir) / f"site={_checked(site_id)}"


# -- removing a site --------------------------------------------------------------------------


def remove_site_data(data_dir: Path | str, site_id: str) -> None:
    """Remove every stored file of a site: each table's `site=<id>` directory (all days, their
    segments, compacted parts, rollups and manifests), its imported statistics and its
    tombstones.

    Each directory is first renamed out of the way, so readers and the compactor stop seeing
    it at once, then deleted. Rows of the site still in a WAL are sealed into a new directory
    later; removing the site's data again (the maintenance sweep of deleted sites) takes them.
    SiteIdError for an id that fails `is_site_id`.
    """
    _checked(site_id)
    parents = [table_dir(data_dir, table) for table in _tables_on_disk(data_dir)]
    for parent in [*parents, imported_root(data_dir)]:
        doomed = parent / f"{_REMOVED}site={site_id}-{uuid.uuid4().hex}"
        try:
            os.rename(parent / f"site={site_id}", doomed)
        except FileNotFoundError:
            pass
        # Also what an interrupted removal left behind.
        for leftover in parent.glob(f"{_REMOVED}site={site_id}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    try:
        tombstone_file(data_dir, site_id).unlink()
    except FileNotFoundError:
        pass

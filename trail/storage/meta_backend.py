"""Where a data dir's meta store lives: LMDB files in <data_dir>/meta (the default), or the
PostgreSQL database that <data_dir>/meta/postgres.json names (`meta_store = "postgres"`).

`trail serve` checks the setting against the data dir and writes that file; every other opener
of the data dir (workers, the maintenance process, `trail admin`, `trail export`) follows it, so
a command run next to a server reaches the server's store without being told again. A data dir
with an LMDB store moves to PostgreSQL only after `trail migrate postgres` copied that store (and
before anything changed it again); its LMDB files then stay as they were, unused.
"""

from __future__ import annotations

import mmap
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from trail.config import Config
    from trail.storage.tables import Env

POINTER = "postgres.json"
MIGRATED = (
    "postgres-migrated.json"  # what `trail migrate postgres` copied (trail.storage.pg_migrate)
)
LMDB_FILE = "data.mdb"
MAP_SIZE = 4 << 30  # sparse file: LMDB only uses the pages it writes


def open_env(meta_dir: Path, stamp_ttl: float = 0.0) -> Env:
    """The meta store of `meta_dir`: a PostgreSQL one when the pointer is there, else LMDB
    (created if absent). `stamp_ttl`: how old a PostgreSQL store's change counter may be."""
    url = postgres_url(meta_dir)
    if url is not None:
        from trail.storage.pg import PgEnv

        return PgEnv.open(url, stamp_ttl)
    import lmdb  # here, not at the top: the supervisor checks this module's setting, LMDB-free

    meta_dir.mkdir(parents=True, exist_ok=True)
    return lmdb.open(str(meta_dir), map_size=MAP_SIZE, max_dbs=128, max_readers=512)


def exists(meta_dir: Path) -> bool:
    """Whether `meta_dir` holds a meta store (of either kind)."""
    return (meta_dir / LMDB_FILE).exists() or (meta_dir / POINTER).exists()


def postgres_url(meta_dir: Path) -> str | None:
    """The URL the pointer names; None when the store is LMDB."""
    try:
        return str(orjson.loads((meta_dir / POINTER).read_bytes())["postgres_url"])
    except FileNotFoundError:
        return None


def check(config: Config) -> None:
    """At `trail serve` start: the meta_store setting agrees with the data dir, and PostgreSQL
    (when chosen) answers and has the current schema. ConfigError naming the setting if not."""
    from trail.config import ConfigError

    meta_dir = Path(config.data_dir) / "meta"
    if config.meta_store == "lmdb":
        if (meta_dir / POINTER).exists():
            raise ConfigError(
                "meta_store",
                f"this data_dir keeps its meta store in PostgreSQL ({meta_dir / POINTER}): "
                'set meta_store = "postgres" and postgres_url',
            )
        return
    if (meta_dir / LMDB_FILE).exists() and not (meta_dir / POINTER).exists():
        _check_migrated(meta_dir, config.postgres_url)
    _bind(meta_dir, config.postgres_url)


def record_migration(meta_dir: Path, url: str, snapshot: int, summary: dict[str, object]) -> None:
    """Note that `trail migrate postgres` copied the LMDB store as of transaction `snapshot`
    into the database at `url` (the password left out)."""
    from trail.storage.pg import redact

    body = {"target": _target(url), "postgres_url": redact(url), "lmdb_snapshot": snapshot}
    _write_private(meta_dir / MIGRATED, orjson.dumps({**body, "summary": summary}))


def _target(url: str) -> dict[str, str]:
    """Where a URL leads (server, port, database), to compare two spellings of it."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    return {name: str(params.get(name) or "") for name in ("host", "port", "dbname")}


def _check_migrated(meta_dir: Path, url: str) -> None:
    """An LMDB store may give way to PostgreSQL once `trail migrate postgres` copied it there
    and nothing changed it since; ConfigError saying what to do if not."""
    from trail.config import ConfigError

    try:
        note = orjson.loads((meta_dir / MIGRATED).read_bytes())
    except FileNotFoundError:
        raise ConfigError(
            "meta_store",
            f"{meta_dir} holds an LMDB meta store: copy it into PostgreSQL first with "
            "`trail migrate postgres` (a PostgreSQL store otherwise starts with a data_dir "
            "without one)",
        ) from None
    if note["target"] != _target(url):
        raise ConfigError(
            "postgres_url",
            f"{meta_dir} was migrated into {note['postgres_url']}, not this database: run "
            "`trail migrate postgres` with this postgres_url",
        )
    if last_txnid(meta_dir) != note["lmdb_snapshot"]:
        raise ConfigError(
            "meta_store",
            f"the LMDB meta store in {meta_dir} changed after `trail migrate postgres` copied "
            "it: run it again (it copies only what changed)",
        )


def _bind(meta_dir: Path, url: str) -> None:
    from trail.config import ConfigError
    from trail.storage.pg import PgEnv, redact
    from trail.storage.pg_schema import SchemaError
    from trail.storage.tables import StorageError

    try:
        PgEnv.open(url).close()  # connects and migrates
    except StorageError as e:
        raise ConfigError("postgres_url", f"cannot use {redact(url)}: {e}") from None
    except SchemaError as e:
        raise ConfigError("postgres_url", f"{redact(url)}: {e}") from None
    # The URL may carry a password: readable by the data dir's owner only.
    _write_private(meta_dir / POINTER, orjson.dumps({"postgres_url": url}))


def _write_private(path: Path, body: bytes) -> None:
    """Replace `path` with `body` at once, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def last_txnid(meta_dir: Path) -> int | None:
    """The id of the LMDB store's last committed write transaction, read from its two meta
    pages without opening the env (the supervisor keeps LMDB out of its process); None when
    the file is not an LMDB store of this build's layout (64-bit, little-endian)."""
    with open(meta_dir / LMDB_FILE, "rb") as f:
        first = f.read(_META_END)
        page_size = int.from_bytes(first[_PAGE_SIZE : _PAGE_SIZE + 4], "little")
        f.seek(page_size)
        second = f.read(_META_END)
    ids = [
        int.from_bytes(page[_TXNID:_META_END], "little")
        for page in (first, second)
        if len(page) == _META_END and page[_MAGIC : _MAGIC + 4] == _LMDB_MAGIC
    ]
    return max(ids) if len(ids) == 2 else None


class MappedTxnId:
    """`last_txnid` of an open env, read on every call through a read-only map of its two meta
    pages: what `mdb_env_info` reads (the env maps the same file pages; the larger of the two
    pages' ids is the last commit), without py-lmdb's `env.info()`, which releases and retakes
    the GIL and builds a dict (about 2 µs, paid by every browser request for its stamp)."""

    def __init__(self, path: Path, page_size: int) -> None:
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), page_size + _META_END, access=mmap.ACCESS_READ)
        self._ids = memoryview(self._map).cast("Q")  # native u64s: this build's layout
        self._first, self._second = _TXNID // 8, (page_size + _TXNID) // 8

    def __call__(self) -> int:
        first, second = self._ids[self._first], self._ids[self._second]
        return first if first > second else second  # noqa: FURB136 (a call to max costs more)


def mapped_txnid(path: Path, info: Callable[[], int]) -> MappedTxnId | None:
    """A `MappedTxnId` of the LMDB file at `path`, None when the file is not of this build's
    layout or the map does not read what `info` (the env's own `last_txnid`) reads."""
    if sys.maxsize < 2**32 or sys.byteorder != "little":
        return None
    try:
        with open(path, "rb") as f:
            first = f.read(_META_END)
        page_size = int.from_bytes(first[_PAGE_SIZE : _PAGE_SIZE + 4], "little")
        if first[_MAGIC : _MAGIC + 4] != _LMDB_MAGIC or page_size < _META_END or page_size % 8:
            return None
        mapped = MappedTxnId(path, page_size)
        if mapped._map[page_size + _MAGIC : page_size + _MAGIC + 4] != _LMDB_MAGIC:
            return None
    except (OSError, ValueError):
        return None
    before = info()
    seen = mapped()
    return mapped if before <= seen <= info() else None


# Where LMDB 0.9 keeps things in a meta page (a 16-byte page header, then MDB_meta): its magic,
# the page size (the free-list db's md_pad) and the transaction id (mm_txnid).
_MAGIC, _PAGE_SIZE, _TXNID, _META_END = 16, 40, 144, 152
_LMDB_MAGIC = (0xBEEFC0DE).to_bytes(4, "little")

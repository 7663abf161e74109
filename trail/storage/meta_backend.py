"""Where a data dir's meta store lives: LMDB files in <data_dir>/meta (the default), or the
PostgreSQL database that <data_dir>/meta/postgres.json names (`meta_store = "postgres"`).

`trail serve` checks the setting against the data dir and writes that file; every other opener
of the data dir (workers, the maintenance process, `trail admin`, `trail export`) follows it, so
a command run next to a server reaches the server's store without being told again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from trail.config import Config
    from trail.storage.tables import Env

POINTER = "postgres.json"
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
    if (meta_dir / LMDB_FILE).exists():
        raise ConfigError(
            "meta_store",
            f"{meta_dir} holds an LMDB meta store; a PostgreSQL one starts with a data_dir "
            "without one (copying the records across is not supported)",
        )
    _bind(meta_dir, config.postgres_url)


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
    meta_dir.mkdir(parents=True, exist_ok=True)
    tmp = meta_dir / f".{POINTER}.{os.getpid()}"
    # The URL may carry a password: readable by the data dir's owner only.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps({"postgres_url": url}))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, meta_dir / POINTER)

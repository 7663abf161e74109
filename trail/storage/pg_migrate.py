"""`trail migrate postgres`: a data dir's LMDB meta store into a PostgreSQL one
(docs/scale-out.md, "From one box").

Every record of every LMDB table (declared in trail.storage.tables or not) is copied as the
bytes LMDB holds, from one read snapshot, in batches that each commit. A record the target
already holds with the same text is left alone, one it holds with other text takes the
source's, one only the target holds stays: a second run copies nothing, and an interrupted run
continues where it stopped. The data dir's user-key secret (trail.storage.accounts) goes along,
so the TinyTrail keys stay recoverable.

At the end the run leaves `meta/postgres-migrated.json` behind: the target and the LMDB
snapshot it copied. `trail serve` with `meta_store = "postgres"` then accepts the data dir
(trail.storage.meta_backend.check) as long as the LMDB store has not changed since.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmdb
import orjson

from trail.storage import meta_backend
from trail.storage.accounts import SECRET_SETTING, file_secret
from trail.storage.pg import PgEnv, PgTxn, redact
from trail.storage.tables import LmdbTable, forget, tables_of

BATCH = 1000
UPSERT = (
    "INSERT INTO records (kind, key, value) VALUES (%s, %s, %s::json)"
    " ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value"
)


class MigrateError(Exception):
    """The migration cannot start (or go on); the message says why."""


@dataclass
class Summary:
    """What a run did, per outcome and per table."""

    copied: int = 0  # new in the target
    updated: int = 0  # the target had other text under the key
    unchanged: int = 0  # the target had the same text already
    skipped: int = 0  # not a record PostgreSQL can hold: a key with NUL, a value not JSON
    tables: dict[str, int] = field(default_factory=dict)  # records read, per table
    user_key_secret: str = "none"  # copied, present or none (the data dir has none)

    def as_json(self) -> dict[str, Any]:
        return {
            "copied": self.copied,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "tables": self.tables,
            "user_key_secret": self.user_key_secret,
        }


Progress = Callable[[int, int], None]  # (records done, records in all)


def migrate(data_dir: Path, url: str, progress: Progress | None = None) -> Summary:
    """Copy the LMDB meta store of `data_dir` into the PostgreSQL store at `url`, then record
    the run in the data dir. StorageError / SchemaError when PostgreSQL cannot be used."""
    meta_dir = Path(data_dir) / "meta"
    if meta_backend.postgres_url(meta_dir) is not None:
        raise MigrateError(f"{meta_dir} is bound to PostgreSQL already ({meta_backend.POINTER})")
    if not (meta_dir / meta_backend.LMDB_FILE).exists():
        raise MigrateError(f"{meta_dir} holds no LMDB meta store")
    target = PgEnv.open(url)  # connects and brings the schema up to date
    env = meta_backend.open_env(meta_dir)
    try:
        assert isinstance(env, lmdb.Environment)
        summary, snapshot = _copy(env, target, file_secret(Path(data_dir)), progress)
    finally:
        target.close()
        forget(env)
        env.close()
    meta_backend.record_migration(meta_dir, url, snapshot, summary.as_json())
    return summary


def _copy(
    env: lmdb.Environment, target: PgEnv, secret: bytes | None, progress: Progress | None
) -> tuple[Summary, int]:
    tables = tables_of(env)
    summary = Summary()
    with env.begin() as txn:
        sources = [(t.name, t.db) for t in tables.every(txn) if isinstance(t, LmdbTable)]
        seeds = sum(txn.stat(db)["entries"] for name, db in sources if name == "user_keys")
        _check_secret(target, secret, seeds)
        total = sum(txn.stat(db)["entries"] for _, db in sources)
        done = 0
        for name, db in sources:
            have = _target_texts(target, name)
            pending: list[tuple[str, str, str]] = []
            for raw_key, raw_value in txn.cursor(db=db):
                done += 1
                summary.tables[name] = summary.tables.get(name, 0) + 1
                row = _row(name, bytes(raw_key), bytes(raw_value))
                if row is None:
                    summary.skipped += 1
                elif have.get(row[1]) == row[2]:
                    summary.unchanged += 1
                else:
                    summary.copied += row[1] not in have
                    summary.updated += row[1] in have
                    pending.append(row)
                if len(pending) >= BATCH:
                    _write(target, pending)
                    pending = []
                if progress is not None and done % 100 == 0:
                    progress(done, total)
            _write(target, pending)
        summary.user_key_secret = _put_secret(target, secret)
        if progress is not None:
            progress(done, total)
        return summary, int(txn.id())


def _row(kind: str, key: bytes, value: bytes) -> tuple[str, str, str] | None:
    """(kind, key, value text) of one LMDB record; None when PostgreSQL cannot hold it."""
    try:
        text_key, text = key.decode(), value.decode()
        orjson.loads(value)
    except (UnicodeDecodeError, orjson.JSONDecodeError):
        return None
    if not text_key or "\0" in text_key:
        return None
    return kind, text_key, text


def _target_texts(target: PgEnv, kind: str) -> dict[str, str]:
    rows = target.run(
        lambda conn: conn.execute(
            "SELECT key, value::text FROM records WHERE kind = %s", (kind,)
        ).fetchall()
    )
    return {str(key): str(text) for key, text in rows}


def _write(target: PgEnv, rows: list[tuple[str, str, str]]) -> None:
    if not rows:
        return
    with target.tables.write() as txn:
        assert isinstance(txn, PgTxn)
        txn.execute_many(UPSERT, rows)
        txn.dirty = True


def _stored_secret(target: PgEnv) -> str | None:
    value = target.tables["settings"].get(SECRET_SETTING)
    return None if value is None else str(value)


def _check_secret(target: PgEnv, secret: bytes | None, seeds: int) -> None:
    """Refuse before copying anything when the target derives keys with another secret."""
    stored = _stored_secret(target)
    if secret is None or stored is None or stored == secret.hex() or seeds == 0:
        return
    raise MigrateError(
        f"the PostgreSQL store holds another {SECRET_SETTING} than this data dir's "
        f"secrets/user-keys.secret: the {seeds} TinyTrail key(s) of this box could not be "
        "shown again there (GET /users/:id/api-key). Migrate into a store that no TinyTrail "
        "user was created in."
    )


def _put_secret(target: PgEnv, secret: bytes | None) -> str:
    if secret is None:
        return "none"
    with target.tables.write() as txn:
        settings = target.tables["settings"]
        if settings.get(SECRET_SETTING, txn) is not None:
            return "present"
        settings.put(SECRET_SETTING, secret.hex(), txn)
    return "copied"


def cmd_migrate(args: Any) -> int:
    """`trail migrate postgres --data-dir D [--url URL]`: the exit code."""
    from trail.config import ConfigError, load
    from trail.importers.progress import ImportProgress
    from trail.storage.pg_schema import SchemaError
    from trail.storage.tables import StorageError

    flags = {"data_dir": args.data_dir, "meta_store": "postgres", "postgres_url": args.url}
    try:
        config = load(args.config, flags=flags, create_data_dir=False)
    except ConfigError as e:
        setting = "--url or postgres_url" if e.setting == "postgres_url" else e.setting
        print(f"trail migrate: {setting}: {e.message}", file=sys.stderr)
        return 2
    url = config.postgres_url
    bar = ImportProgress("migrating")
    bar.begin("meta store", 1)

    def report(done: int, total: int) -> None:
        bar.steps = max(total, 1)
        bar.advance(done, done, 0)

    try:
        summary = migrate(Path(config.data_dir), url, report)
    except MigrateError as e:
        print(f"trail migrate: {e}", file=sys.stderr)
        return 2
    except StorageError as e:
        print(f"trail migrate: postgres_url: cannot use {redact(url)}: {e}", file=sys.stderr)
        return 2
    except SchemaError as e:
        print(f"trail migrate: postgres_url: {redact(url)}: {e}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    print(orjson.dumps({**summary.as_json(), "target": redact(url)}).decode())
    return 0

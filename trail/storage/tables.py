"""The record layer: every read and write of the meta store goes through a `Table`.

A table is one named set of orjson values keyed by text. Each method works in the transaction it
is given, or in a new one of its own; several changes that must land together share one
`Tables.write()` transaction:

    with tables.write() as txn:
        tables["users"].put(user_id, record, txn)
        tables["keys"].delete(digest, txn)

Two stores implement it: LMDB (the default, here: named sub-databases of the meta env) and
PostgreSQL (trail.storage.pg). Both let one write transaction run at a time, and a thread that
opens a second one while it holds the first waits for itself forever: inside `write()`, pass
`txn` to every call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import lmdb
import orjson

from trail.core import StorageError as CoreStorageError
from trail.storage.meta_backend import LMDB_FILE, mapped_txnid

if TYPE_CHECKING:
    from trail.storage.pg import PgEnv, PgTxn

Txn: TypeAlias = "lmdb.Transaction | PgTxn"
Env: TypeAlias = "lmdb.Environment | PgEnv"
Record = dict[str, Any]

# Every sub-database of the meta env. Opening one takes a write transaction, so all of them are
# opened when the env is first used, never in the middle of a request's transaction.
KINDS = (
    # MetaStore: typed records, secrets by digest, and the one-off settings
    "accounts", "users", "sites", "clients", "client_ids", "keys", "tokens", "settings",
    # AccountStore: the seeds of recoverable TinyTrail keys
    "user_keys",
    # access links by code; the access model's and the per-site documents by id
    "links", "alternatives", "filters", "members", "invitations", "snippets", "views", "themes",
    "goals", "funnels", "webhooks", "webhook_outbox", "email_reports", "short_links",
    "traffic_alerts", "import_jobs",
    # deleted sites and statistics, for every node's ClickHouse shipper (trail.storage.deletion_log)
    "deletions",
    # user preferences by user id
    "prefs",
    # SignInStore: password hashes by user id, dashboard sessions and set-password links by digest
    "passwords", "web_sessions", "password_links",
)  # fmt: skip


class StorageError(CoreStorageError):
    """The meta store cannot serve (a closed env, a full disk, a corrupt file, an unreachable
    PostgreSQL). The engine's StorageError, so the API answers 503 for either."""


class Table:
    """One named table: text key -> orjson value. `get`, `put`, `delete` and `scan` are the
    store's; `find` and `update` are built on them."""

    name: str

    def get(self, key: str, txn: Txn | None = None) -> Any | None:
        raise NotImplementedError

    def put(self, key: str, value: Any, txn: Txn | None = None) -> None:
        raise NotImplementedError

    def delete(self, key: str, txn: Txn | None = None) -> bool:
        """Remove one key; whether it was there."""
        raise NotImplementedError

    def scan(self, txn: Txn | None = None) -> list[tuple[str, Any]]:
        """Every (key, value), in key order. A list, so the caller may change the table."""
        raise NotImplementedError

    def _write_txn(self, txn: Txn | None) -> AbstractContextManager[Txn]:
        raise NotImplementedError

    def find(self, txn: Txn | None = None, /, **match: Any) -> list[Record]:
        """Every document (dict value) whose fields equal `match`, in key order."""
        return [
            v
            for _, v in self.scan(txn)
            if isinstance(v, dict) and all(v.get(k) == want for k, want in match.items())
        ]

    def update(
        self, key: str, change: Callable[[Any], Any | None], txn: Txn | None = None
    ) -> Any | None:
        """Read, change and write back one value; `change` returning None deletes it.
        None (and nothing written) when the key is absent."""
        with self._write_txn(txn) as t:
            value = self.get(key, t)
            if value is None:
                return None
            value = change(value)
            if value is None:
                self.delete(key, t)
            else:
                self.put(key, value, t)
        return value


class Tables:
    """The tables of one meta store, each opened once."""

    backend: str

    def __getitem__(self, name: str) -> Table:
        raise NotImplementedError

    def read(self) -> AbstractContextManager[Txn]:
        """A read transaction, for several reads that must agree (use with `with`)."""
        raise NotImplementedError

    def write(self) -> AbstractContextManager[Txn]:
        """A write transaction: everything done in it lands together or not at all."""
        raise NotImplementedError

    def every(self, txn: Txn) -> list[Table]:
        """Every table in the store, declared or not (for scans by reference)."""
        raise NotImplementedError

    def stamp(self) -> int:
        """A number that changes with every committed write (caches keyed by it go stale)."""
        raise NotImplementedError


class LmdbTable(Table):
    """One named sub-database of an LMDB env."""

    def __init__(self, env: lmdb.Environment, name: str, db: Any) -> None:
        self.env = env
        self.name = name
        self.db = db

    @contextmanager
    def _txn(self, txn: Txn | None, write: bool) -> Iterator[lmdb.Transaction]:
        if txn is not None:
            yield cast("lmdb.Transaction", txn)
            return
        with self.env.begin(write=write) as new:
            yield new

    def get(self, key: str, txn: Txn | None = None) -> Any | None:
        if not key:
            return None
        with self._txn(txn, write=False) as t:
            raw = t.get(key.encode(), db=self.db)
        return orjson.loads(raw) if raw is not None else None

    def put(self, key: str, value: Any, txn: Txn | None = None) -> None:
        with self._txn(txn, write=True) as t:
            t.put(key.encode(), orjson.dumps(value), db=self.db)

    def delete(self, key: str, txn: Txn | None = None) -> bool:
        """Remove one key; whether it was there."""
        if not key:
            return False
        with self._txn(txn, write=True) as t:
            return bool(t.delete(key.encode(), db=self.db))

    def scan(self, txn: Txn | None = None) -> list[tuple[str, Any]]:
        """Every (key, value), in key order. A list, so the caller may change the table."""
        with self._txn(txn, write=False) as t:
            return [(bytes(k).decode(), _loads(v)) for k, v in t.cursor(db=self.db)]

    def _write_txn(self, txn: Txn | None) -> AbstractContextManager[Txn]:
        return self._txn(txn, write=True)


def _loads(raw: bytes | memoryview) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # not a record of ours: generic scans skip it


class LmdbTables(Tables):
    """The tables of one LMDB env, each opened once."""

    backend = "lmdb"

    def __init__(self, env: lmdb.Environment) -> None:
        self.env = env
        self._lock = threading.Lock()
        self._open = {name: LmdbTable(env, name, env.open_db(name.encode())) for name in KINDS}
        path = Path(env.path()) / LMDB_FILE if env.flags()["subdir"] else Path(env.path())
        self._txnid = mapped_txnid(path, self._info_txnid) or self._info_txnid

    def __getitem__(self, name: str) -> Table:
        table = self._open.get(name)
        if table is None:
            # An undeclared kind: opened on first use (a write transaction: not inside one).
            with self._lock:
                table = self._open.get(name)
                if table is None:
                    table = self._open[name] = LmdbTable(
                        self.env, name, self.env.open_db(name.encode())
                    )
        return table

    def read(self) -> Txn:
        """A read transaction, for several reads that must agree (use with `with`)."""
        return self.env.begin()

    def write(self) -> Txn:
        """A write transaction: everything done in it lands together or not at all."""
        return self.env.begin(write=True)

    def every(self, txn: Txn) -> list[Table]:
        """Every named sub-database in the env, declared or not (for scans by reference)."""
        txn = cast("lmdb.Transaction", txn)
        out: list[Table] = []
        for key, _ in txn.cursor():
            name = bytes(key).decode()
            table = self._open.get(name)
            if table is None:
                try:
                    db = self.env.open_db(bytes(key), txn=txn, create=False)
                except lmdb.IncompatibleError:
                    continue  # a plain key of the main database, not a sub-database
                table = LmdbTable(self.env, name, db)
            out.append(table)
        return out

    def stamp(self) -> int:
        """LMDB's last committed write transaction id (read from the mapped meta pages)."""
        return self._txnid()

    def _info_txnid(self) -> int:
        return int(self.env.info()["last_txnid"])


_registry: dict[int, LmdbTables] = {}
_registry_lock = threading.Lock()


def tables_of(env: Env) -> Tables:
    """The tables of `env`, opened once per env and process."""
    if not isinstance(env, lmdb.Environment):
        return env.tables  # a PostgreSQL store holds its own
    with _registry_lock:
        tables = _registry.get(id(env))
        # The registry holds the env, so its id cannot be reused while it is listed here.
        if tables is None or tables.env is not env:
            tables = _registry[id(env)] = LmdbTables(env)
    return tables


def forget(env: Env) -> None:
    """Drop a closed env's tables."""
    with _registry_lock:
        _registry.pop(id(env), None)

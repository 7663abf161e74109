"""The record layer in PostgreSQL (`meta_store = "postgres"`): the same tables as the LMDB meta
env, as rows of one `records(kind, key, value)` table (trail.storage.pg_schema).

Transactions keep LMDB's semantics. A write transaction first locks the one `meta_version` row,
so writers (of every process on every node) take turns and a read-modify-write inside one never
races another; it bumps the row's counter at commit if it changed anything. Reads never wait:
a read transaction is a REPEATABLE READ snapshot, a lone read an autocommit statement. The
counter is the store's `stamp()`, what the workers' site directory is keyed by; a process reads
it at most once per `stamp_ttl` seconds (its own commits it knows at once).

Connections come from a small per-process pool; every failure to reach the server is a
StorageError, which the API answers with 503.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from trail.storage import pg_schema
from trail.storage.tables import KINDS, StorageError, Table, Tables, Txn

CONNECT_TIMEOUT_S = 5
IDLE_CONNECTIONS = 4
_T = TypeVar("_T")


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class _Pool:
    """Open connections (autocommit) to reuse; one per concurrent user, a few kept idle."""

    def __init__(self, url: str) -> None:
        self.url = url
        params = conninfo_to_dict(url)
        params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        params.setdefault("application_name", "trail")
        self.conninfo = make_conninfo("", **params)
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.closed = False

    def connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.conninfo, autocommit=True)
        except psycopg.Error as e:
            raise StorageError(f"postgres: {_reason(e)}") from e

    def take(self) -> tuple[psycopg.Connection[Any], bool]:
        """A connection and whether it was reused (and so may have died since)."""
        if self.closed:
            raise StorageError("the meta store is closed")
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's sockets are not ours to use
                self._idle, self._pid = [], os.getpid()
            if self._idle:
                return self._idle.pop(), True
        return self.connect(), False

    def give(self, conn: psycopg.Connection[Any]) -> None:
        healthy = not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE
        with self._lock:
            if healthy and not self.closed and len(self._idle) < IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _reason(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


class PgTxn:
    """One transaction on one pooled connection; commits on a clean exit of its `with`."""

    def __init__(self, env: PgEnv, write: bool) -> None:
        self.env = env
        self.write = write
        self.dirty = False
        self.conn: psycopg.Connection[Any] | None = None

    def __enter__(self) -> Self:
        self.conn = self.env.begin(
            "BEGIN; SELECT counter FROM meta_version WHERE id = 1 FOR UPDATE"
            if self.write
            else "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
        )
        return self

    def execute(self, sql: str, params: tuple[Any, ...]) -> psycopg.Cursor[Any]:
        assert self.conn is not None, "use the transaction in a with block"
        try:
            return self.conn.execute(sql, params)
        except psycopg.OperationalError as e:
            raise StorageError(f"postgres: {_reason(e)}") from e

    def execute_many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """`sql` once per row of parameters, in one round trip (psycopg's pipeline)."""
        assert self.conn is not None, "use the transaction in a with block"
        try:
            with self.conn.cursor() as cursor:
                cursor.executemany(sql, rows)
        except psycopg.OperationalError as e:
            raise StorageError(f"postgres: {_reason(e)}") from e

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self.conn = self.conn, None
        assert conn is not None
        try:
            if kind is not None:
                conn.execute("ROLLBACK")
                return
            counter = None
            if self.dirty:
                row = conn.execute(
                    "UPDATE meta_version SET counter = counter + 1 WHERE id = 1 RETURNING counter"
                ).fetchone()
                counter = int(row[0]) if row else None
            conn.execute("COMMIT")
            if counter is not None:
                self.env.saw_stamp(counter)
        except psycopg.Error as e:
            conn.close()
            if kind is None:
                raise StorageError(f"postgres: commit failed: {_reason(e)}") from e
        finally:
            self.env.pool.give(conn)


class PgTable(Table):
    """The rows of one kind."""

    def __init__(self, env: PgEnv, name: str) -> None:
        self.env = env
        self.name = name

    def _write_txn(self, txn: Txn | None) -> AbstractContextManager[PgTxn]:
        return _given(_ours(txn)) if txn is not None else PgTxn(self.env, write=True)

    def _read(self, txn: Txn | None, sql: str, params: tuple[Any, ...]) -> list[Any]:
        if txn is not None:
            return _ours(txn).execute(sql, params).fetchall()
        return self.env.run(lambda conn: conn.execute(sql, params).fetchall())

    def get(self, key: str, txn: Txn | None = None) -> Any | None:
        if not key or "\0" in key:  # PostgreSQL text cannot hold NUL: no such key
            return None
        rows = self._read(
            txn, "SELECT value::text FROM records WHERE kind = %s AND key = %s", (self.name, key)
        )
        return orjson.loads(rows[0][0]) if rows else None

    def put(self, key: str, value: Any, txn: Txn | None = None) -> None:
        if "\0" in key:
            raise ValueError("a meta store key cannot contain NUL")
        with self._write_txn(txn) as t:
            t.execute(
                "INSERT INTO records (kind, key, value) VALUES (%s, %s, %s::json)"
                " ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value",
                (self.name, key, orjson.dumps(value).decode()),
            )
            t.dirty = True

    def delete(self, key: str, txn: Txn | None = None) -> bool:
        """Remove one key; whether it was there."""
        if not key or "\0" in key:
            return False
        with self._write_txn(txn) as t:
            gone = t.execute(
                "DELETE FROM records WHERE kind = %s AND key = %s", (self.name, key)
            ).rowcount
            t.dirty = t.dirty or gone > 0
        return gone > 0

    def scan(self, txn: Txn | None = None) -> list[tuple[str, Any]]:
        """Every (key, value), in key order. A list, so the caller may change the table."""
        rows = self._read(
            txn, "SELECT key, value::text FROM records WHERE kind = %s ORDER BY key", (self.name,)
        )
        return [(key, orjson.loads(text)) for key, text in rows]


@contextmanager
def _given(txn: PgTxn) -> Iterator[PgTxn]:
    yield txn


def _ours(txn: Txn) -> PgTxn:
    if not isinstance(txn, PgTxn):
        raise TypeError(f"a PostgreSQL table was given a {type(txn).__name__} transaction")
    return txn


class PgTables(Tables):
    """Every kind of one PostgreSQL meta store."""

    backend = "postgres"

    def __init__(self, env: PgEnv) -> None:
        self.env = env
        self._lock = threading.Lock()
        self._open = {name: PgTable(env, name) for name in KINDS}

    def __getitem__(self, name: str) -> Table:
        table = self._open.get(name)
        if table is None:
            with self._lock:
                table = self._open.setdefault(name, PgTable(self.env, name))
        return table

    def read(self) -> PgTxn:
        return PgTxn(self.env, write=False)

    def write(self) -> PgTxn:
        return PgTxn(self.env, write=True)

    def every(self, txn: Txn) -> list[Table]:
        """Every kind with rows, and every declared one."""
        rows = _ours(txn).execute("SELECT DISTINCT kind FROM records", ())
        names = {row[0] for row in rows}
        return [self[name] for name in sorted(names | set(self._open))]

    def stamp(self) -> int:
        return self.env.stamp()


def _read_counter(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT counter FROM meta_version WHERE id = 1").fetchone()
    if row is None:
        raise StorageError("postgres: the meta_version row is missing")
    return int(row[0])


class PgEnv:
    """A PostgreSQL meta store: its pool, its tables and the cached change counter."""

    def __init__(self, url: str, stamp_ttl: float = 0.0) -> None:
        self.url = url
        self.pool = _Pool(url)
        self.stamp_ttl = stamp_ttl
        self.tables = PgTables(self)
        self._stamp: tuple[int, float] | None = None  # (counter, when read)

    @classmethod
    def open(cls, url: str, stamp_ttl: float = 0.0) -> PgEnv:
        """Connect (StorageError when the server cannot be reached) and migrate the schema."""
        env = cls(url, stamp_ttl)
        try:
            env.run(pg_schema.migrate)
        except BaseException:
            env.close()
            raise
        return env

    def run(self, work: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """`work(connection)` on a pooled connection outside any transaction."""
        conn, result = self._first_statement(work)
        self.pool.give(conn)
        return result

    def begin(self, sql: str) -> psycopg.Connection[Any]:
        """A pooled connection in a transaction that `sql` began; the caller gives it back."""
        conn, _ = self._first_statement(lambda c: c.execute(sql))
        return conn

    def _first_statement(
        self, work: Callable[[psycopg.Connection[Any]], _T]
    ) -> tuple[psycopg.Connection[Any], _T]:
        # Once more on a new connection when a reused one turns out dead (the server restarted
        # since it was last used): nothing has happened on it yet, so nothing is done twice.
        conn, reused = self.pool.take()
        for last in (not reused, True):
            try:
                return conn, work(conn)
            except psycopg.OperationalError as e:
                conn.close()
                if last:
                    raise StorageError(f"postgres: {_reason(e)}") from e
            except BaseException:
                self.pool.give(conn)
                raise
            conn = self.pool.connect()
        raise AssertionError("unreachable")

    def stamp(self) -> int:
        """The change counter, at most `stamp_ttl` seconds old (this process's own commits
        count at once)."""
        now = time.monotonic()
        cached = self._stamp
        if cached is not None and now - cached[1] < self.stamp_ttl:
            return cached[0]
        counter = self.run(_read_counter)
        self._stamp = (counter, now)
        return counter

    def saw_stamp(self, counter: int) -> None:
        self._stamp = (counter, time.monotonic())

    def schema_version(self) -> int:
        return self.run(pg_schema.schema_version)

    def close(self) -> None:
        self.pool.close()

"""The meta store's schema in PostgreSQL, as numbered migrations (docs/scale-out.md).

`migrate()` applies the ones a database lacks, in order, each in the transaction that records it
in `schema_migrations`; a transaction-scoped advisory lock makes nodes starting at once take
turns, so every migration runs exactly once. Migrations are only ever appended.
"""

from __future__ import annotations

from typing import Any

# An arbitrary constant: the advisory lock id every trail node takes to migrate.
MIGRATION_LOCK = 0x7472_6169_6C00

# (version, name, SQL): the SQL runs as one batch, in the transaction that records it.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "records and change counter",
        """
        -- Every table of the record layer in one: (kind, key) -> the orjson text of the value.
        -- `json` (not jsonb) keeps that text as written: key order, and \\u0000 in strings.
        -- Keys sort bytewise ("C"), the order LMDB scans in.
        CREATE TABLE records (
            kind  text COLLATE "C" NOT NULL,
            key   text COLLATE "C" NOT NULL,
            value json NOT NULL,
            PRIMARY KEY (kind, key)
        );
        -- One row: moves with every committed write transaction, and its row lock is what
        -- makes writers take turns (as LMDB's single writer does).
        CREATE TABLE meta_version (
            id      smallint PRIMARY KEY CHECK (id = 1),
            counter bigint NOT NULL
        );
        INSERT INTO meta_version VALUES (1, 0);
        """,
    ),
)

LATEST = MIGRATIONS[-1][0]


class SchemaError(Exception):
    """The database holds a schema this trail does not know (made by a newer trail)."""


def migrate(conn: Any) -> list[int]:
    """Bring the database on `conn` (autocommit) to the latest schema; the versions applied."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        have = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        newer = sorted(v for v in have if v > LATEST)
        if newer:
            raise SchemaError(
                f"the database has schema version {newer[-1]}, newer than this trail's {LATEST}"
            )
        for version, name, sql in MIGRATIONS:
            if version in have:
                continue
            conn.execute(sql)  # no parameters: sent as one batch of statements
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name)
            )
            applied.append(version)
    return applied


def schema_version(conn: Any) -> int:
    """The newest migration applied (0 for an empty database)."""
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
        return 0
    return int(
        conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
    )

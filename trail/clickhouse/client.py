"""Connecting to ClickHouse and bringing its schema up to date.

One code path for every target: `clickhouse-connect` speaks HTTP(S) to a server, or runs the
same client against ClickHouse's engine in this process (chDB) for a `chdb://` URL.
"""

from __future__ import annotations

import logging
from typing import Any

from trail.clickhouse import schema
from trail.clickhouse.url import Target, parse

log = logging.getLogger("trail.clickhouse")

# Seconds to wait for a server: a batch is small, and a stuck connection holds up the shipper.
CONNECT_TIMEOUT = 10
SEND_RECEIVE_TIMEOUT = 60


def connect(target: Target | str) -> Any:
    """A clickhouse-connect client for `target` (a parsed or raw `clickhouse_url`), with its
    database created if missing. Raises what clickhouse-connect raises when it cannot connect."""
    import clickhouse_connect

    if isinstance(target, str):
        target = parse(target)
    if target.interface == "chdb":
        client = clickhouse_connect.get_client(interface="chdb", path=target.path)
    else:
        client = clickhouse_connect.get_client(
            interface=target.interface,
            host=target.host,
            port=target.port,
            username=target.user,
            password=target.password,
            verify=target.verify,
            ca_cert=target.ca_cert or None,
            connect_timeout=CONNECT_TIMEOUT,
            send_receive_timeout=SEND_RECEIVE_TIMEOUT,
            # The database may not exist yet: `migrate` creates it.
            database="default",
        )
    client.command(f"CREATE DATABASE IF NOT EXISTS {target.database}")
    return client


def applied_versions(client: Any, database: str) -> list[int]:
    """The migration versions recorded in `database`, in order."""
    client.command(schema.MIGRATIONS_TABLE.format(db=database))
    rows = client.query(f"SELECT DISTINCT version FROM {database}.trail_migrations").result_rows
    return sorted(int(r[0]) for r in rows)


def migrate(client: Any, database: str) -> list[int]:
    """Apply the migrations `database` lacks, in order; returns the versions applied now."""
    done = set(applied_versions(client, database))
    applied = []
    for migration in schema.MIGRATIONS:
        if migration.version in done:
            continue
        for statement in migration.statements:
            client.command(statement.format(db=database))
        client.insert(
            f"{database}.trail_migrations",
            [[migration.version, migration.name]],
            column_names=["version", "name"],
        )
        log.info("clickhouse migration %d applied: %s", migration.version, migration.name)
        applied.append(migration.version)
    return applied

"""`GET /health`: is this worker able to serve (meta store readable — LMDB, or PostgreSQL
reachable — data dir writable, the engine's background fsync and seal working, the session
store answering, and with storage = "clickhouse" ClickHouse reachable)? `GET /metrics`: the
ClickHouse shipper's figures in Prometheus' text format."""

from __future__ import annotations

import os
from typing import Any

from robyn import Response

import trail
from trail.api.http import json_response
from trail.api.routing import Routes
from trail.context import Context

routes = Routes()


def check(ctx: Context) -> tuple[bool, str]:
    """(healthy, db status) — a failed read transaction or an unwritable data dir is degraded."""
    try:
        ctx.meta.ping()
    except OSError as e:  # StorageError (an OSError): LMDB failed, or PostgreSQL is unreachable
        return False, f"meta store unusable: {e}"
    if not os.access(ctx.data_dir, os.W_OK | os.X_OK):
        return False, f"data dir {ctx.data_dir} is not writable"
    return True, "connected"


@routes.get("/health")
def health(ctx: Context, request: Any) -> Response:
    """200 when all is well; 503 "degraded" when the meta store or the data dir is unusable, or
    when this worker's WAL fsync or segment sealing is failing (acknowledged hits then rely on
    the WAL alone, or are not yet durable): `storage` says what and since when. `session_store`
    names the backend of the session state ("lmdb" or "redis") and, for Redis, whether it
    answers; hits answer 503 while it does not. With meta_store = "postgres", `meta_store` says
    so and an unreachable server is a 503."""
    ok, db = check(ctx)
    storage = ctx.engine.background_status()
    sessions = ctx.engine.session_store_status()
    healthy = ok and bool(storage["ok"]) and bool(sessions["ok"])
    body = {
        "status": "ok" if healthy else "degraded",
        "db": db,
        "storage": storage,
        "session_store": sessions,
        "version": trail.__version__,
    }
    if ctx.meta.backend != "lmdb":
        body["meta_store"] = ctx.meta.backend  # the default store's answer stays as it was
    if ctx.config.storage == "clickhouse":
        from trail.clickhouse import health as clickhouse

        body["clickhouse"] = state = clickhouse.state(ctx.data_dir, ctx.config.clickhouse_url)
        if not state["reachable"]:
            healthy = False
            body["status"] = "degraded"
    return json_response(body, 200 if healthy else 503)


@routes.get("/metrics")
def metrics(ctx: Context, request: Any) -> Response:
    """Prometheus text format: the ClickHouse shipper's counters (storage = "clickhouse"),
    `trail_up` alone otherwise."""
    from trail.clickhouse import health as clickhouse

    state = None
    if ctx.config.storage == "clickhouse":
        state = clickhouse.state(ctx.data_dir, ctx.config.clickhouse_url)
    head = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    return Response(200, head, clickhouse.prometheus(state).encode())

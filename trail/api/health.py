"""`GET /health`: is this worker able to serve (meta store readable, data dir writable)?"""

from __future__ import annotations

import os
from typing import Any

import lmdb

import trail
from trail.api.common import json_response
from trail.context import Context


def check(ctx: Context) -> tuple[bool, str]:
    """(healthy, db status) — a failed read transaction or an unwritable data dir is degraded."""
    try:
        ctx.meta.ping()
    except (lmdb.Error, OSError) as e:  # any LMDB failure means the store is unusable
        return False, f"meta store unusable: {e}"
    if not os.access(ctx.data_dir, os.W_OK | os.X_OK):
        return False, f"data dir {ctx.data_dir} is not writable"
    return True, "connected"


def register(app: Any, ctx: Context) -> None:
    @app.get("/health")
    def health(request: Any) -> Any:
        ok, db = check(ctx)
        if ok:
            return json_response({"status": "ok", "db": db, "version": trail.__version__})
        return json_response({"status": "degraded", "db": db, "version": trail.__version__}, 503)

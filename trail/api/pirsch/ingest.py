"""Pirsch ingest: `POST /api/v1/hit`, `/event`, `/session` and their `/batch` forms.

Authenticated by the site's `pa_` access key or a domain client token; the body goes to the
engine in one call, which validates it (a 400 names the field) and answers 200 with an empty
body, as Pirsch does. A `POST /api/v1/event` without Authorization but with an
`identification_code` is a browser event (`api/browser.py`).
"""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api import browser
from trail.api.http import engine_body
from trail.api.pirsch.auth import site_for_access_key
from trail.api.routing import Routes
from trail.context import Context
from trail.services import ingest

routes = Routes()
# Robyn copies a returned Response into its own answer and never changes it, so every accepted
# request can return this one.
_OK = Response(200, {}, b"")


def _ingest(ctx: Context, request: Any, kind: str, batch: bool) -> Response:
    site = site_for_access_key(ctx, request, kind)
    ingest.ingest_api(
        ctx, site, kind, engine_body(request, ctx.config.limits.max_body_bytes), batch
    )
    return _OK


@routes.post("/api/v1/hit")
def post_hit(ctx: Context, request: Any) -> Response:
    return _ingest(ctx, request, "hit", batch=False)


@routes.post("/api/v1/hit/batch")
def post_hit_batch(ctx: Context, request: Any) -> Response:
    return _ingest(ctx, request, "hit", batch=True)


@routes.post("/api/v1/event")
def post_event(ctx: Context, request: Any) -> Response:
    headers = request.headers
    if not headers.get("authorization"):
        answer = browser.post_event(ctx, request, headers)
        if answer is not None:
            return answer
    return _ingest(ctx, request, "event", batch=False)


@routes.post("/api/v1/event/batch")
def post_event_batch(ctx: Context, request: Any) -> Response:
    return _ingest(ctx, request, "event", batch=True)


@routes.post("/api/v1/session")
def post_session(ctx: Context, request: Any) -> Response:
    return _ingest(ctx, request, "session", batch=False)


@routes.post("/api/v1/session/batch")
def post_session_batch(ctx: Context, request: Any) -> Response:
    return _ingest(ctx, request, "session", batch=True)

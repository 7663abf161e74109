"""Pirsch ingest: /api/v1/hit, /event, /session and their /batch forms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trail.api import pirsch_browser
from trail.api.common import ApiError, handler, site_for_access_key
from trail.core import InvalidInput, StorageError
from trail.services import ingest

if TYPE_CHECKING:
    from robyn import Robyn

    from trail.context import Context

# Route suffix -> (hit kind, client scope).
ROUTES = {"hit": ("hit", "hit"), "event": ("event", "event"), "session": ("session", "session")}


def raw_body(request: Any, limit: int) -> bytes:
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if len(body) > limit:
        raise ApiError(413, "request body too large", {"body": f"larger than {limit} bytes"})
    return bytes(body)


def make_handler(ctx: Context, kind: str, scope: str, batch: bool) -> Any:
    limits = ctx.config.limits

    @handler
    def ingest_route(request: Any) -> Any:
        if kind == "event" and not batch and not request.headers.get("authorization"):
            # pa.js-style browser events: identification_code in the body instead of a key.
            answer = pirsch_browser.answer_event(ctx, request)
            if answer is not None:
                return answer
        site = site_for_access_key(ctx, request, scope)
        body = raw_body(request, limits.max_body_bytes)
        try:
            ingest.ingest_api(ctx, site, kind, body, batch)
        except InvalidInput as e:
            field, message = e.args
            raise ApiError(400, f"{field}: {message}", {field: message}) from None
        except StorageError as e:
            raise ApiError(503, "storage unavailable, retry later") from e
        return ""  # Pirsch answers 200 with an empty body

    return ingest_route


def register(app: Robyn, ctx: Context) -> None:
    for path, (kind, scope) in ROUTES.items():
        app.post(f"/api/v1/{path}")(make_handler(ctx, kind, scope, batch=False))
        app.post(f"/api/v1/{path}/batch")(make_handler(ctx, kind, scope, batch=True))

"""Pirsch `POST /api/v1/token`: oauth client credentials -> a bearer token valid one hour."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from robyn import Response

from trail.api.http import json_object, json_response
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, check_fields

routes = Routes()


@routes.post("/api/v1/token")
def issue_token(ctx: Context, request: Any) -> Response:
    body = json_object(request, ctx.config.limits.max_body_bytes)
    fields = {name: body.get(name) for name in ("client_id", "client_secret")}
    check_fields(
        {k: "required" for k, v in fields.items() if not isinstance(v, str) or not v}, "client"
    )
    issued = ctx.meta.issue_token(str(fields["client_id"]), str(fields["client_secret"]))
    if issued is None:
        raise ApiError(401, "invalid client_id or client_secret")
    access_token, expires = issued
    expires_at = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json_response({"access_token": access_token, "expires_at": expires_at})

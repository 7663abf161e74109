"""Pirsch `POST /api/v1/token`: oauth client credentials -> a bearer token valid one hour."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from trail.api.common import ApiError, handler, json_body, json_response
from trail.context import Context


def register(app: Any, ctx: Context) -> None:
    @app.post("/api/v1/token")
    @handler
    def token(request: Any) -> Any:
        body = json_body(request, ctx.config.limits.max_body_bytes)
        if not isinstance(body, dict):
            raise ApiError(400, "expected a JSON object", {"body": "expected a JSON object"})
        fields = {name: body.get(name) for name in ("client_id", "client_secret")}
        missing = {k: "required" for k, v in fields.items() if not isinstance(v, str) or not v}
        if missing:
            raise ApiError(400, "client_id and client_secret are required", missing)
        issued = ctx.meta.issue_token(str(fields["client_id"]), str(fields["client_secret"]))
        if issued is None:
            raise ApiError(401, "invalid client_id or client_secret")
        access_token, expires = issued
        expires_at = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return json_response({"access_token": access_token, "expires_at": expires_at})

"""Helpers shared by the management route modules: bodies, fields, the site a request names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from robyn import Response

from trail.api.common import (
    ApiError,
    authorize_principal,
    authorize_site,
    json_body,
    query_params,
    query_value,
)
from trail.context import Context
from trail.storage.meta import Principal, Site


def body_object(ctx: Context, request: Any) -> dict[str, Any]:
    body = json_body(request, ctx.config.limits.max_body_bytes)
    if not isinstance(body, dict):
        raise ApiError(400, "expected a JSON object", {"body": "expected a JSON object"})
    return body


def invalid(errors: dict[str, str], what: str) -> None:
    """Raise the 400 naming every bad field, if any."""
    if errors:
        raise ApiError(400, f"invalid {what}: " + ", ".join(sorted(errors)), errors)


def string_field(
    body: dict[str, Any],
    name: str,
    errors: dict[str, str],
    required: bool = True,
    max_len: int = 500,
) -> str:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors[name] = "required"
        return ""
    if not isinstance(value, str) or len(value) > max_len:
        errors[name] = f"must be a string of at most {max_len} characters"
        return ""
    return value.strip()


def bool_field(
    body: dict[str, Any], name: str, errors: dict[str, str], default: bool = False
) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        errors[name] = "must be true or false"
        return default
    return value


def timestamp_field(body: dict[str, Any], name: str, errors: dict[str, str]) -> str | None:
    """An optional RFC3339 time, normalised to UTC with microseconds ("" or null = none)."""
    value = body.get(name)
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(str(value))  # 3.11 reads a trailing Z
    except ValueError:
        errors[name] = "must be an RFC3339 time like 2030-01-01T00:00:00Z"
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def site_in_body(
    ctx: Context,
    request: Any,
    body: dict[str, Any],
    field: str = "domain_id",
    scope: str = "domains",
    role: str | None = None,
) -> Site:
    """The site named by body[`field`], authorized for `scope` (400 when the field is missing)."""
    site_id = body.get(field)
    if not isinstance(site_id, str) or not site_id.strip():
        raise ApiError(400, f"{field} is required", {field: "required"})
    return authorize_site(ctx, request, site_id.strip(), scope, role=role)


def site_in_query(
    ctx: Context,
    request: Any,
    field: str = "domain_id",
    scope: str = "domains",
    role: str | None = None,
) -> Site:
    site_id = query_value(query_params(request), field)
    if not site_id:
        authorize_principal(ctx, request, scope)  # 401/403 before a 400
        raise ApiError(400, f"{field} is required", {field: "required"})
    return authorize_site(ctx, request, site_id, scope, role=role)


def caller(
    ctx: Context, request: Any, scope: str = "domains", user_only: bool = False
) -> Principal:
    return authorize_principal(ctx, request, scope, user_only=user_only)


def ok() -> Response:
    return Response(200, {}, b"")


def record_site(
    ctx: Context,
    request: Any,
    rec: dict[str, Any] | None,
    what: str,
    scope: str = "domains",
    role: str | None = None,
) -> Site:
    """The site owning record `rec` if the caller may act on it; 404 naming `what` otherwise."""
    if rec is None or not rec.get("domain_id"):
        raise ApiError(404, f"{what} not found")
    try:
        return authorize_site(ctx, request, rec["domain_id"], scope, role=role)
    except ApiError as e:
        if e.status == 404:
            raise ApiError(404, f"{what} not found") from None
        raise


def id_in_query(ctx: Context, request: Any, scope: str = "domains", field: str = "id") -> str:
    """The `id` query parameter, after authentication (401 first, then 400)."""
    caller(ctx, request, scope)
    value = query_value(query_params(request), field)
    if not value:
        raise ApiError(400, f"{field} is required", {field: "required"})
    return value

"""Helpers shared by the management route modules: bodies, fields, the site or record a request
names.

Two families of routes differ in small ways that clients can see, so both forms are kept: the
access routes (domains, alternatives, members, snippets, views, themes, ...) answer a missing id
with 400 "<field> is required" (`site_in_body`, `site_in_query`, `id_in_query`) and check text
with `string_field`; the per-site settings routes (filters, webhooks, email reports, short links,
traffic alerts) treat a missing id as an unknown one, 404 (`site_for`, `site_from_query`,
`record_in_reach`, `delete_record`), and check text with `text_field`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from robyn import Response

from trail.api.common import (
    ApiError,
    authenticate,
    authorize_principal,
    authorize_site,
    json_body,
    query_params,
    query_value,
)
from trail.context import Context
from trail.storage.documents import Record, Records
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


def text_field(
    body: dict[str, Any],
    name: str,
    errors: dict[str, str],
    max_len: int = 500,
    required: bool = False,
) -> str:
    """`string_field` as the per-site settings routes word it: type and length apart, the length
    counted after stripping."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            errors[name] = "required"
        return ""
    if not isinstance(value, str):
        errors[name] = "must be a string"
        return ""
    value = value.strip()
    if required and not value:
        errors[name] = "required"
    elif len(value) > max_len:
        errors[name] = f"must be at most {max_len} characters"
    return value


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


def site_for(ctx: Context, request: Any, domain_id: Any) -> Site:
    """The site `domain_id` if the caller may read (or change) its settings; 404 otherwise, also
    when the id is missing."""
    site_id = domain_id.strip() if isinstance(domain_id, str) else ""
    return authorize_site(ctx, request, site_id, "domains")


def site_from_query(ctx: Context, request: Any, name: str = "domain_id") -> Site:
    """`site_for` the query parameter `name` (400 before authentication when it is missing)."""
    domain_id = query_value(query_params(request), name)
    if not domain_id:
        raise ApiError(400, f"{name} (the domain id) is required", {name: "required"})
    return site_for(ctx, request, domain_id)


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


def record_in_reach(
    ctx: Context, request: Any, store: Records, record_id: Any, what: str
) -> tuple[Record, Site]:
    """A stored record the caller may change, with its site; 404 for unknown or foreign ids."""
    record = store.get(record_id.strip()) if isinstance(record_id, str) else None
    if record is None:
        # Authenticate first so a caller without credentials learns nothing about ids.
        authenticate(ctx, request)
        raise ApiError(404, f"{what} not found")
    return record, record_site(ctx, request, record, what)


def delete_record(ctx: Context, request: Any, store: Records, what: str) -> Response:
    """DELETE ?id=: remove a record the caller may change."""
    record, _ = record_in_reach(ctx, request, store, query_value(query_params(request), "id"), what)
    store.delete(record["id"])
    return ok()

"""Who is calling the TinyTrail API: a user's API key (`X-API-KEY`, or `Authorization: Bearer`
for SDK symmetry), counted against the per-key rate limit; admins for the admin routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trail.errors import ApiError, FieldError, RateLimited
from trail.services.ratelimit import check_rate
from trail.storage.meta import Principal
from trail.validation import is_uuid

if TYPE_CHECKING:
    from trail.context import Context


def api_key(request: Any) -> str:
    """The presented user API key."""
    key = (request.headers.get("x-api-key") or "").strip()
    if not key:
        scheme, _, rest = (request.headers.get("authorization") or "").strip().partition(" ")
        key = rest.strip() if scheme.lower() == "bearer" else ""
    if not key:
        raise ApiError(401, "missing API key: send X-API-KEY")
    return key


def authenticate(ctx: Context, request: Any) -> Principal:
    """The user behind the API key (401 otherwise), counted against the per-key rate limit."""
    key = api_key(request)
    principal = ctx.meta.resolve_secret(key)
    if principal is None or principal.kind != "user" or principal.user is None:
        raise ApiError(401, "invalid API key")
    retry = check_rate(ctx, "api", key)
    if retry is not None:
        raise RateLimited(retry)
    return principal


def require_admin(ctx: Context, request: Any) -> Principal:
    principal = authenticate(ctx, request)
    if principal.role != "admin":
        raise ApiError(403, "this endpoint needs the admin role")
    return principal


def path_id(request: Any, name: str = "id") -> str:
    """A UUID path parameter; 400 naming it when malformed."""
    value = str(request.path_params.get(name, "")).strip()
    if not is_uuid(value):
        raise FieldError(name, "must be a UUID")
    return value.lower()


def optional_str(body: dict[str, Any], name: str, max_len: int = 255) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise FieldError(name, f"must be a string of at most {max_len} characters")
    return value.strip()

"""What every TinyTrail route shares: the envelope, the one error renderer, auth, rate limits.

Errors are `common.ApiError` (so the shared auth helpers work unchanged); `tt_handler` renders
them as `{"status": "error", "error": {"code": ..., "message": ...}}` with the code fixed by the
HTTP status. A validation message always starts with the field it is about.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from robyn import Response

from trail.api.common import IN_FLIGHT, ApiError, json_body
from trail.services.ratelimit import check_rate
from trail.storage.meta import Principal

if TYPE_CHECKING:
    from trail.context import Context

log = logging.getLogger("trail.api.tinytrail")

CODES = {
    400: "INVALID_PAYLOAD",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    413: "INVALID_PAYLOAD",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
}
_JSON = {"content-type": "application/json"}
UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


class RateLimited(ApiError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(429, f"rate limit exceeded, retry in {retry_after} s")
        self.retry_after = retry_after


def invalid(field: str, message: str) -> ApiError:
    """A 400 naming the field: "<field>: <message>"."""
    return ApiError(400, f"{field}: {message}", {field: message})


def ok(data: Any, status: int = 200) -> Response:
    return Response(status, dict(_JSON), orjson.dumps({"status": "success", "data": data}))


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    code = CODES.get(status, "INVALID_PAYLOAD" if 400 <= status < 500 else "INTERNAL_ERROR")
    body = {"status": "error", "error": {"code": code, "message": message}}
    return Response(status, {**_JSON, **(headers or {})}, orjson.dumps(body))


def render(e: ApiError) -> Response:
    if isinstance(e, RateLimited):
        return error_response(429, e.message, {"retry-after": str(e.retry_after)})
    return error_response(e.status, e.message)


def tt_handler(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap a TinyTrail route: ApiError -> envelope error; anything else -> logged 500."""

    @functools.wraps(fn)
    def wrapper(request: Any) -> Any:
        with IN_FLIGHT:
            try:
                return fn(request)
            except ApiError as e:
                return render(e)
            except Exception:
                log.exception("unhandled error in %s %s", request.method, request.url.path)
                return error_response(500, "internal server error")

    return wrapper


def api_key(request: Any) -> str:
    """The presented user API key: `X-API-KEY`, or `Authorization: Bearer` for SDK symmetry."""
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
    if not UUID_RE.match(value):
        raise invalid(name, "must be a UUID")
    return value.lower()


def body_object(ctx: Context, request: Any) -> dict[str, Any]:
    """The JSON object body; 400 (field `body`) for malformed JSON or a non-object."""
    try:
        body = json_body(request, ctx.config.limits.max_body_bytes)
    except ApiError as e:
        field, message = next(iter(e.validation.items()), ("body", e.message))
        raise ApiError(e.status, f"{field}: {message}", e.validation) from None
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    return body


def optional_str(body: dict[str, Any], name: str, max_len: int = 255) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise invalid(name, f"must be a string of at most {max_len} characters")
    return value.strip()

"""Reading requests and writing responses, the same for both APIs: JSON, query strings, bodies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import orjson
from robyn import Response

from trail.errors import ApiError, FieldError

_JSON = {"content-type": "application/json"}


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    head = {**_JSON, **headers} if headers else dict(_JSON)
    return Response(status, head, orjson.dumps(obj))


def empty() -> Response:
    """200 with an empty body (what Pirsch answers to most writes)."""
    return Response(200, {}, b"")


def query_params(request: Any) -> dict[str, list[str]]:
    """The query string, percent-decoded ('+' = space); repeated keys keep their order."""
    out: dict[str, list[str]] = {}
    for key, values in request.query_params.to_dict().items():
        out.setdefault(unquote_plus(key), []).extend(unquote_plus(v) for v in values)
    return out


def query_value(params: dict[str, list[str]], name: str) -> str:
    """The first non-empty value of `name`, stripped, or "" (SDKs send empty parameters)."""
    return next((v.strip() for v in params.get(name, []) if v.strip()), "")


def raw_body(request: Any, limit: int) -> bytes:
    """The body as bytes; 413 above `limit`."""
    return _sized(request.body, limit)


def engine_body(request: Any, limit: int) -> bytes | str:
    """The body for the engine, which reads a `str` in place (`Engine.ingest_api`): Robyn hands
    a UTF-8 body over decoded, and encoding it back cost a tenth of `/hit`'s handler. A str
    short enough that its UTF-8 (at most 4 bytes a character) cannot pass `limit` goes as it
    is; anything else as bytes, 413 above `limit`."""
    body = request.body
    if isinstance(body, str) and len(body) * 4 <= limit:
        return body
    return _sized(body, limit)


def _sized(body: bytes | str, limit: int) -> bytes:
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if len(body) > limit:
        raise FieldError("body", f"larger than {limit} bytes", status=413)
    return bytes(body)


def json_body(request: Any, limit: int) -> Any:
    """The body parsed as JSON; 400 naming `body` when it is empty or malformed."""
    body = raw_body(request, limit)
    if not body.strip():
        raise FieldError("body", "a JSON body is required")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise FieldError("body", f"not valid JSON: {e}") from None


def json_object(request: Any, limit: int) -> dict[str, Any]:
    """The body as a JSON object."""
    body = json_body(request, limit)
    if not isinstance(body, dict):
        raise FieldError("body", "expected a JSON object")
    return body


def body_object(ctx: Any, request: Any) -> dict[str, Any]:
    """The body as a JSON object, within the configured size limit."""
    return json_object(request, ctx.config.limits.max_body_bytes)


# -- fields of a JSON object: each check adds {field: problem} to `errors` -----------------------


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


__all__ = [
    "ApiError",
    "FieldError",
    "body_object",
    "bool_field",
    "empty",
    "engine_body",
    "json_body",
    "json_object",
    "json_response",
    "query_params",
    "query_value",
    "raw_body",
    "string_field",
    "text_field",
    "timestamp_field",
]

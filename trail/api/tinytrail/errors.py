"""TinyTrail's envelope: `{"status": "error", "error": {"code": ..., "message": ...}}`.

The code follows from the HTTP status; a validation message starts with the field it is about.
"""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.http import json_response
from trail.errors import ApiError

CODES = {
    400: "INVALID_PAYLOAD",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    413: "INVALID_PAYLOAD",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
}


def render(error: ApiError) -> Response:
    status = error.status
    code = CODES.get(status, "INVALID_PAYLOAD" if 400 <= status < 500 else "INTERNAL_ERROR")
    body = {"status": "error", "error": {"code": code, "message": error.message}}
    return json_response(body, status, error.headers)


def ok(data: Any, status: int = 200) -> Response:
    """The success envelope."""
    return json_response({"status": "success", "data": data}, status)

"""Pirsch's error body: `{"validation": {field: problem}, "error": [message]}`."""

from __future__ import annotations

from robyn import Response

from trail.api.http import json_response
from trail.errors import ApiError


def render(error: ApiError) -> Response:
    body = {"validation": error.validation, "error": [error.message]}
    return json_response(body, error.status, error.headers)

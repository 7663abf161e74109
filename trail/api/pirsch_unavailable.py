"""Pirsch features that need Google or the hosted service: a clear 400 in self-hosted trail.

The caller is authenticated first (401 stays 401), then told the feature does not exist here."""

from __future__ import annotations

from typing import Any

from trail.api.common import ApiError, handler
from trail.api.resources import caller
from trail.context import Context

# (method, path, what is missing)
UNAVAILABLE = (
    ("post", "/api/v1/google/import", "Google Analytics import"),
    ("get", "/api/v1/google/import/job", "Google Analytics import"),
    ("delete", "/api/v1/google/import/job", "Google Analytics import"),
    ("get", "/api/v1/google/import/profile", "Google Analytics import"),
    ("get", "/api/v1/import", "importing statistics"),
    ("delete", "/api/v1/import", "importing statistics"),
    ("post", "/api/v1/import/plausible", "importing statistics"),
    ("post", "/api/v1/import/fathom", "importing statistics"),
    ("post", "/api/v1/domain/gsc", "Google Search Console"),
    ("delete", "/api/v1/domain/gsc", "Google Search Console"),
)


def register(app: Any, ctx: Context) -> None:
    for method, path, feature in UNAVAILABLE:
        getattr(app, method)(path)(handler(_unavailable(ctx, feature)))


def _unavailable(ctx: Context, feature: str) -> Any:
    def unavailable(request: Any) -> Any:
        caller(ctx, request)
        raise ApiError(
            400, f"{feature} is not available in self-hosted trail", {"feature": "not available"}
        )

    return unavailable

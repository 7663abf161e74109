"""Pirsch features that need Google or the hosted service: a clear 400 in self-hosted trail.

The caller is authenticated first (401 stays 401), then told the feature does not exist here."""

from __future__ import annotations

from typing import Any

from trail.api.pirsch.auth import caller
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import FieldError

routes = Routes()


def _unavailable(ctx: Context, request: Any, feature: str) -> None:
    caller(ctx, request)
    raise FieldError("feature", f"{feature} is not available in self-hosted trail")


@routes.post("/api/v1/google/import")
@routes.get("/api/v1/google/import/job")
@routes.delete("/api/v1/google/import/job")
@routes.get("/api/v1/google/import/profile")
def google_import(ctx: Context, request: Any) -> None:
    _unavailable(ctx, request, "Google Analytics import")


@routes.post("/api/v1/domain/gsc")
@routes.delete("/api/v1/domain/gsc")
def search_console(ctx: Context, request: Any) -> None:
    _unavailable(ctx, request, "Google Search Console")

"""Pirsch traffic notifications: `/api/v1/traffic/spike` (a day with more visitors than a
threshold) and `/api/v1/traffic/warning` (no visitors for a number of days).

PUT toggles one on or off, POST sets its threshold; sending is the maintenance process's job
(trail.services.traffic_alerts).
"""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.http import body_object, json_response
from trail.api.pirsch.auth import site_for
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import FieldError
from trail.services import traffic_alerts

routes = Routes()
LIMITS = {"spike": (10_000_000, "visitors"), "warning": (365, "days")}


def _toggle(ctx: Context, request: Any, kind: str) -> Response:
    body = body_object(ctx, request)
    site = site_for(ctx, request, body.get("domain_id"))
    return json_response(_view(traffic_alerts.toggle(ctx.meta, site.id, kind), kind))


def _configure(ctx: Context, request: Any, kind: str) -> Response:
    body = body_object(ctx, request)
    threshold = body.get("threshold")
    site = site_for(ctx, request, body.get("domain_id"))
    limit, unit = LIMITS[kind]
    if not isinstance(threshold, int) or isinstance(threshold, bool) or not 1 <= threshold <= limit:
        raise FieldError("threshold", f"must be a number of {unit} from 1 to {limit}")
    settings = traffic_alerts.change(ctx.meta, site.id, {f"{kind}_threshold": threshold})
    return json_response(_view(settings, kind))


def _view(settings: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "domain_id": settings["domain_id"],
        "enabled": settings[f"{kind}_enabled"],
        "threshold": settings[f"{kind}_threshold"],
    }


@routes.put("/api/v1/traffic/spike")
def toggle_traffic_spike(ctx: Context, request: Any) -> Response:
    return _toggle(ctx, request, "spike")


@routes.post("/api/v1/traffic/spike")
def configure_traffic_spike(ctx: Context, request: Any) -> Response:
    return _configure(ctx, request, "spike")


@routes.put("/api/v1/traffic/warning")
def toggle_traffic_warning(ctx: Context, request: Any) -> Response:
    return _toggle(ctx, request, "warning")


@routes.post("/api/v1/traffic/warning")
def configure_traffic_warning(ctx: Context, request: Any) -> Response:
    return _configure(ctx, request, "warning")

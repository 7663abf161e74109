"""Build a worker's Robyn app: every route module that exists registers its routes."""

from __future__ import annotations

import importlib
import logging
from typing import Any

from robyn import Robyn

from trail.api.common import handler, pirsch_error
from trail.context import Context

log = logging.getLogger("trail.app")

# Route modules in registration order; the optional ones are written by others and may be absent.
ROUTE_MODULES: tuple[str, ...] = ("health", "pirsch_auth", "pirsch_manage", "pirsch_goals")
ROUTE_MODULES += ("tinytrail_collect", "pirsch_browser")
ROUTE_MODULES += (
    "pirsch_filters",
    "pirsch_webhooks",
    "pirsch_reports",
    "pirsch_links",
    "pirsch_billing",
)
ROUTE_MODULES += ("tinytrail_admin", "tinytrail_websites", "tinytrail_reports")
ROUTE_MODULES += ("pirsch_deletion",)  # DELETE /api/v1/statistics
ROUTE_MODULES += (  # access helper: the rest of the Pirsch management API
    "pirsch_domain",
    "pirsch_alternative",
    "pirsch_access_link",
    "pirsch_member",
    "pirsch_organization",
    "pirsch_snippet",
    "pirsch_view",
    "pirsch_theme",
    "pirsch_user",
    "pirsch_unavailable",
)
OPTIONAL_ROUTE_MODULES: tuple[str, ...] = ("pirsch_ingest", "pirsch_stats")
NOT_FOUND_METHODS = ("get", "post", "put", "patch", "delete")


def build_app(ctx: Context, robyn_config: Any = None) -> Robyn:
    app = Robyn(__file__, config=robyn_config) if robyn_config is not None else Robyn(__file__)
    for name in ROUTE_MODULES:
        importlib.import_module(f"trail.api.{name}").register(app, ctx)
    for name in OPTIONAL_ROUTE_MODULES:
        try:
            module = importlib.import_module(f"trail.api.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"trail.api.{name}":
                raise  # the module exists but something it imports is missing: a real bug
            log.info("route module trail.api.%s not present, skipped", name)
            continue
        module.register(app, ctx)
    _register_not_found(app)
    return app


def _register_not_found(app: Robyn) -> None:
    """Unknown paths answer a JSON 404 in the Pirsch error format instead of Robyn's text."""

    @handler
    def not_found(request: Any) -> Any:
        return pirsch_error(404, f"no route for {request.method} {request.url.path}")

    for method in NOT_FOUND_METHODS:
        getattr(app, method)("/*path")(not_found)

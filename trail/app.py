"""Build a worker's Robyn app: every route table, mounted with its API's error renderer.

Each route is declared next to its handler (`@routes.get("/api/v1/...")` in the module named
after the resource), so `grep -rn '"/api/v1/hit"' trail/api` finds the handler of a URL.
"""

from __future__ import annotations

from typing import Any

from robyn import Robyn

from trail.api import browser, health
from trail.api.dashboard import pages
from trail.api.dashboard import session as dashboard_session
from trail.api.pirsch import (
    billing,
    client,
    email_report,
    export,
    goal,
    imports,
    ingest,
    member,
    organization,
    short_link,
    statistics,
    theme,
    token,
    traffic_alert,
    traffic_filter,
    unavailable,
    user,
    view,
    webhook,
)
from trail.api.pirsch import errors as pirsch_errors
from trail.api.pirsch.domain import access_link, alternative, domains, settings, snippet
from trail.api.routing import Routes, mount
from trail.api.tinytrail import accounts, admin, reports, users, websites
from trail.api.tinytrail import errors as tinytrail_errors
from trail.context import Context
from trail.errors import ApiError

PIRSCH = (
    token.routes,
    ingest.routes,
    browser.pirsch_routes,
    domains.routes,
    settings.routes,
    alternative.routes,
    access_link.routes,
    snippet.routes,
    client.routes,
    member.routes,
    organization.routes,
    theme.routes,
    view.routes,
    user.routes,
    billing.routes,
    statistics.routes,
    export.routes,
    goal.routes,
    traffic_filter.routes,
    webhook.routes,
    email_report.routes,
    traffic_alert.routes,
    short_link.routes,
    imports.routes,
    unavailable.routes,
)
TINYTRAIL = (
    browser.collect_routes,
    accounts.routes,
    users.routes,
    websites.routes,
    reports.routes,
    admin.routes,
)
# Sign-in sessions and the dashboard's pages (errors in Pirsch's format, like the API they use).
DASHBOARD = (dashboard_session.routes, pages.routes)

fallback = Routes()


def no_route(ctx: Context, request: Any) -> None:
    """Unknown paths answer a JSON 404 in the Pirsch error format instead of Robyn's text."""
    raise ApiError(404, f"no route for {request.method} {request.url.path}")


for _method in ("get", "post", "put", "patch", "delete"):
    fallback.route(_method, "/*path")(no_route)


def build_app(ctx: Context, robyn_config: Any = None) -> Robyn:
    app = Robyn(__file__, config=robyn_config) if robyn_config is not None else Robyn(__file__)
    mount(app, ctx, health.routes, pirsch_errors.render)
    for routes in PIRSCH:
        mount(app, ctx, routes, pirsch_errors.render)
    for routes in TINYTRAIL:
        mount(app, ctx, routes, tinytrail_errors.render)
    for routes in DASHBOARD:
        mount(app, ctx, routes, pirsch_errors.render)
    mount(app, ctx, fallback, pirsch_errors.render)
    return app

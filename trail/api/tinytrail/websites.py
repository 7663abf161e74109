"""TinyTrail website routes; a website is the same site as a Pirsch domain.

Users reach their own account's websites; anything else answers 404, never 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robyn import Response

from trail.api.http import body_object
from trail.api.routing import Routes
from trail.api.tinytrail.auth import authenticate, path_id
from trail.api.tinytrail.errors import ok
from trail.errors import ApiError
from trail.services import accounts, sites
from trail.services import tinytrail_websites as websites
from trail.storage.meta import MEMBER_ROLES, Principal, Site

if TYPE_CHECKING:
    from trail.context import Context


routes = Routes()


def reachable_website(
    ctx: Context, principal: Principal, site_id: str, need: str = "Viewer"
) -> Site:
    """The website if the caller may see it; 404 otherwise (no enumeration across accounts).
    `need`: the least role (Viewer/Admin/Owner, see Principal.site_role) the action takes; 403 below it."""
    site = ctx.meta.get_site(site_id)
    role = principal.site_role(site) if site is not None and principal.user is not None else None
    if site is None or role is None:
        raise ApiError(404, "website not found")
    if MEMBER_ROLES.index(role) < MEMBER_ROLES.index(need):
        raise ApiError(403, f"this needs the {need} role on the website")
    return site


@routes.get("/api/v1/websites")
def list_websites(ctx: Context, request: Any) -> Response:
    principal = authenticate(ctx, request)
    return ok([websites.to_json(s) for s in ctx.meta.list_sites_for(principal)])


@routes.post("/api/v1/websites")
def create_website(ctx: Context, request: Any) -> Response:
    principal = authenticate(ctx, request)
    site, subdomain = websites.new_website(ctx.meta, principal, body_object(ctx, request))
    site = sites.create_site_with_free_subdomain(ctx, site, subdomain)
    return ok(websites.to_json(site), 201)


@routes.patch("/api/v1/websites/:id")
def update_website(ctx: Context, request: Any) -> Response:
    principal = authenticate(ctx, request)
    site = reachable_website(ctx, principal, path_id(request), need="Admin")
    body = body_object(ctx, request)
    site = websites.update_website(ctx.meta, accounts.account_store(ctx).save_site, site, body)
    return ok(websites.to_json(site))


@routes.delete("/api/v1/websites/:id")
def delete_website(ctx: Context, request: Any) -> Response:
    principal = authenticate(ctx, request)
    site = reachable_website(ctx, principal, path_id(request), need="Owner")
    sites.delete_site(ctx, site.id)
    return ok(websites.to_json(site))

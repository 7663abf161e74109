"""TinyTrail website routes; a website is the same site as a Pirsch domain.

Users reach their own account's websites; anything else answers 404, never 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robyn import Response

from trail.api.common import ApiError
from trail.api.tinytrail_common import authenticate, body_object, invalid, ok, path_id, tt_handler
from trail.services import tinytrail_websites as websites
from trail.storage.accounts import AccountStore
from trail.storage.meta import MEMBER_ROLES, Principal, Site

if TYPE_CHECKING:
    from trail.context import Context


def register(app: Any, ctx: Context) -> None:
    store = AccountStore(ctx.meta, ctx.data_dir)
    app.get("/api/v1/websites")(tt_handler(lambda request: list_websites(ctx, request)))
    app.post("/api/v1/websites")(tt_handler(lambda request: create_website(ctx, request)))
    app.patch("/api/v1/websites/:id")(
        tt_handler(lambda request: update_website(ctx, store, request))
    )
    app.delete("/api/v1/websites/:id")(tt_handler(lambda request: delete_website(ctx, request)))


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


def _bad(e: websites.WebsiteError) -> ApiError:
    return invalid(e.field, e.message)


def list_websites(ctx: Context, request: Any) -> Response:
    principal = authenticate(ctx, request)
    return ok([websites.to_json(s) for s in ctx.meta.list_sites_for(principal)])


def create_website(ctx: Context, request: Any) -> Response:
    principal = authenticate(ctx, request)
    body = body_object(ctx, request)
    try:
        site = websites.create_website(ctx.meta, principal, body)
    except websites.WebsiteError as e:
        raise _bad(e) from None
    return ok(websites.to_json(site), 201)


def update_website(ctx: Context, store: AccountStore, request: Any) -> Response:
    principal = authenticate(ctx, request)
    site = reachable_website(ctx, principal, path_id(request), need="Admin")
    body = body_object(ctx, request)
    try:
        site = websites.update_website(ctx.meta, store.save_site, site, body)
    except websites.WebsiteError as e:
        raise _bad(e) from None
    return ok(websites.to_json(site))


def delete_website(ctx: Context, request: Any) -> Response:
    principal = authenticate(ctx, request)
    site = reachable_website(ctx, principal, path_id(request), need="Owner")
    ctx.meta.delete_site(site.id)
    websites.purge_site_data(ctx.data_dir, site.id)
    return ok(websites.to_json(site))

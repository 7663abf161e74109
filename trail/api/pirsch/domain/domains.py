"""Pirsch domains (`/api/v1/domain`): list, create, delete, and a new identification code.

A domain is a site; creating and deleting one are `trail.services.sites`' job, the same for
TinyTrail websites. The settings of a domain are in `settings.py`, its other sub-resources
(alternative domains, access links, snippets, themes) in the modules next to this one.
"""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.http import body_object, empty, json_response, query_params, query_value
from trail.api.pirsch.auth import (
    authenticate,
    authorize_site,
    caller,
    require_role,
    require_scope,
    site_in_body,
    user_manager,
)
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, check_fields
from trail.services import sites
from trail.services.sites import domain_record
from trail.storage.meta import Site, random_alnum
from trail.validation import (
    HOSTNAME_PROBLEM,
    SUBDOMAIN_PROBLEM,
    is_hostname,
    is_subdomain,
    is_timezone,
    normal_hostname,
)

routes = Routes()


@routes.get("/api/v1/domain")
def list_domains(ctx: Context, request: Any) -> Response:
    params = query_params(request)
    access = query_value(params, "access")
    if access and not (request.headers.get("authorization") or request.headers.get("x-api-key")):
        site = ctx.meta.site_for_link(access)
        return json_response([domain_record(ctx, site, "Viewer")] if site else [])
    # The SDKs look up their domain with a statistics client; access keys are write-only.
    principal = authenticate(ctx, request)
    if (
        not (principal.allows("statistics") or principal.allows("domains"))
        or principal.kind == "access_key"
    ):
        require_scope(principal, "domains")
    sites = ctx.meta.list_sites_for(principal)
    wanted = {
        "id": query_value(params, "id"),
        "subdomain": query_value(params, "subdomain").lower(),
    }
    for attr, value in wanted.items():
        if value:
            sites = [s for s in sites if getattr(s, attr) == value]
    host = query_value(params, "domain").lower()
    if host:
        sites = [s for s in sites if host in (s.hostname, s.custom_domain)]
    search = query_value(params, "search").lower()
    if search:
        sites = [
            s
            for s in sites
            if any(search in v.lower() for v in (s.hostname, s.subdomain, s.display_name))
        ]
    return json_response([domain_record(ctx, s, principal.site_role(s) or "Viewer") for s in sites])


@routes.post("/api/v1/domain")
def create_domain(ctx: Context, request: Any) -> Response:
    principal = user_manager(ctx, request)
    body = body_object(ctx, request)
    site = parse_new_site(body)
    account_id = principal.account_id
    org = body.get("organization_id")
    if org and org != account_id:
        account = ctx.meta.get_account(str(org))
        org_role = principal.org_role(account) if account else None
        if org_role is None:
            raise ApiError(404, "organization not found")
        require_role(org_role, "Admin")
        account_id = account.id if account else None
        site.theme_id = account.theme_id if account else None
    site.account_id = account_id
    site.user_id = principal.user.id if principal.user else None
    return json_response(sites.create_site(ctx, site).to_pirsch())


def parse_new_site(body: dict[str, Any]) -> Site:
    """Validate a create-domain body; 400 naming every bad field."""
    errors: dict[str, str] = {}
    hostname = normal_hostname(_required_str(body, "hostname", errors))
    if hostname and not is_hostname(hostname):
        errors["hostname"] = HOSTNAME_PROBLEM
    subdomain = _required_str(body, "subdomain", errors).lower()
    if subdomain and not is_subdomain(subdomain):
        errors["subdomain"] = SUBDOMAIN_PROBLEM
    timezone = _required_str(body, "timezone", errors)
    if timezone and not is_timezone(timezone):
        errors["timezone"] = f"unknown time zone {timezone!r}"
    flags = {}
    for name in ("public", "group_by_title", "disable_scripts"):
        value = body.get(name)
        if value is not None and not isinstance(value, bool):
            errors[name] = "must be true or false"
        flags[name] = bool(value)
    seconds = body.get("active_visitors_seconds") or 600
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 60 <= seconds <= 86400:
        errors["active_visitors_seconds"] = "must be a number of seconds between 60 and 86400"
    display_name = body.get("display_name") or ""
    if not isinstance(display_name, str) or len(display_name) > 200:
        errors["display_name"] = "must be a string of at most 200 characters"
    check_fields(errors, "domain")
    return Site(
        id="",
        hostname=hostname,
        subdomain=subdomain,
        timezone=timezone,
        active_visitors_seconds=seconds,
        display_name=display_name,
        public=flags["public"],
        group_by_title=flags["group_by_title"],
        disable_scripts=flags["disable_scripts"],
    )


def _required_str(body: dict[str, Any], name: str, errors: dict[str, str]) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        errors[name] = "required"
        return ""
    return value.strip()


@routes.delete("/api/v1/domain")
def delete_domain(ctx: Context, request: Any) -> Response:
    """Delete a domain with everything it owns, its statistics included (Owners only)."""
    user_manager(ctx, request)
    site_id = query_value(query_params(request), "id")
    site = authorize_site(ctx, request, site_id, "domains", role="Owner")
    sites.delete_site(ctx, site.id)
    return empty()


@routes.put("/api/v1/domain")
def reset_identification_code(ctx: Context, request: Any) -> Response:
    """A new identification code (the browser SDK's key) for the domain `id`."""
    caller(ctx, request)
    site = site_in_body(ctx, request, body_object(ctx, request), field="id")
    updated = ctx.meta.update_site(site.id, {"identification_code": random_alnum(32)})
    return json_response({"identification_code": updated.identification_code if updated else ""})

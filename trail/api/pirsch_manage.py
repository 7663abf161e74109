"""Pirsch management routes: domains (`/api/v1/domain`) and API clients (`/api/v1/client`)."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from robyn import Response

from trail.api.common import (
    ApiError,
    authenticate,
    authorize_principal,
    authorize_site,
    handler,
    json_body,
    json_response,
    query_params,
    query_value,
    require_role,
    require_scope,
)
from trail.context import Context
from trail.storage.meta import SCOPE_VALUES, SCOPES, WRITE_ONLY_SCOPES, Principal, Site

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
SUBDOMAIN_RE = re.compile(rf"^{_LABEL}$")
CLIENT_TYPES = ("token", "oauth")


def register(app: Any, ctx: Context) -> None:
    app.get("/api/v1/domain")(handler(lambda request: list_domains(ctx, request)))
    app.post("/api/v1/domain")(handler(lambda request: create_domain(ctx, request)))
    app.delete("/api/v1/domain")(handler(lambda request: delete_domain(ctx, request)))
    app.get("/api/v1/client")(handler(lambda request: list_clients(ctx, request)))
    app.post("/api/v1/client")(handler(lambda request: save_client(ctx, request)))
    app.delete("/api/v1/client")(handler(lambda request: delete_client(ctx, request)))


def _manager(ctx: Context, request: Any, write: bool) -> Principal:
    """The caller, if it may read (or write) domain settings."""
    principal = authenticate(ctx, request)
    require_scope(principal, "domains", write=write)
    return principal


def _user_manager(ctx: Context, request: Any) -> Principal:
    """A caller acting for a user (user key or user client): only those add or remove domains."""
    principal = _manager(ctx, request, write=True)
    if principal.domain_id is not None or principal.user is None:
        raise ApiError(403, "a domain client cannot manage domains or clients")
    return principal


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "expected a JSON object", {"body": "expected a JSON object"})
    return body


def _ok() -> Response:
    return Response(200, {}, b"")


# -- domains ----------------------------------------------------------------------------------


def list_domains(ctx: Context, request: Any) -> Response:
    params = query_params(request)
    access = query_value(params, "access")
    if access and not (request.headers.get("authorization") or request.headers.get("x-api-key")):
        site = ctx.meta.site_for_link(access)
        return json_response([site.to_pirsch("Viewer")] if site else [])
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
    return json_response([s.to_pirsch(principal.site_role(s) or "Viewer") for s in sites])


def create_domain(ctx: Context, request: Any) -> Response:
    principal = _user_manager(ctx, request)
    body = _object(json_body(request, ctx.config.limits.max_body_bytes))
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
    try:
        created = ctx.meta.create_site(site)
    except KeyError:
        raise ApiError(400, "subdomain already in use", {"subdomain": "already in use"}) from None
    return json_response(created.to_pirsch())


def parse_new_site(body: dict[str, Any]) -> Site:
    """Validate a create-domain body; 400 naming every bad field."""
    errors: dict[str, str] = {}
    hostname = _required_str(body, "hostname", errors).lower().rstrip(".")
    if hostname and not HOSTNAME_RE.match(hostname):
        errors["hostname"] = "must be a host name like example.com (no scheme, port or path)"
    subdomain = _required_str(body, "subdomain", errors).lower()
    if subdomain and not SUBDOMAIN_RE.match(subdomain):
        errors["subdomain"] = "must be 1-63 letters, digits or hyphens"
    timezone = _required_str(body, "timezone", errors)
    if timezone and not _valid_timezone(timezone):
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
    if errors:
        raise ApiError(400, "invalid domain: " + ", ".join(sorted(errors)), errors)
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


def _valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def delete_domain(ctx: Context, request: Any) -> Response:
    _user_manager(ctx, request)
    site = authorize_site(
        ctx, request, query_value(query_params(request), "id"), "domains", role="Owner"
    )
    ctx.meta.delete_site(site.id)
    return _ok()


# -- clients ----------------------------------------------------------------------------------


def list_clients(ctx: Context, request: Any) -> Response:
    """A domain's clients (`id`), or without `id` the caller's user clients."""
    principal = authorize_principal(ctx, request, "domains", user_only=True)
    domain_id = query_value(query_params(request), "id")
    if not domain_id:
        user_id = principal.user.id if principal.user else None
        return json_response([c.to_pirsch() for c in ctx.meta.list_clients(user_id=user_id)])
    site = authorize_site(ctx, request, domain_id, "domains", role="Admin")
    return json_response([c.to_pirsch() for c in ctx.meta.list_clients(domain_id=site.id)])


def save_client(ctx: Context, request: Any) -> Response:
    """Create a client (returning its secret once), or update its description when `id` is set.

    Without `domain_id` the client is a user client acting with the caller's reach."""
    principal = _user_manager(ctx, request)
    body = _object(json_body(request, ctx.config.limits.max_body_bytes))
    description = body.get("description") or ""
    if not isinstance(description, str) or len(description) > 500:
        raise ApiError(
            400,
            "invalid description",
            {"description": "must be a string of at most 500 characters"},
        )
    if body.get("id"):
        client = ctx.meta.get_client(str(body["id"]))
        if client is None or not _client_in_reach(ctx, principal, client.domain_id, client.user_id):
            raise ApiError(404, "client not found")
        return json_response(ctx.meta.update_client(client, description).to_pirsch())
    errors: dict[str, str] = {}
    client_type = body.get("type")
    if client_type not in CLIENT_TYPES:
        errors["type"] = "must be token or oauth"
    domain_id = body.get("domain_id")
    if domain_id is not None and (not isinstance(domain_id, str) or not domain_id.strip()):
        errors["domain_id"] = "must be a domain id, or absent for a user client"
    if not domain_id and client_type == "token":
        errors["domain_id"] = "required: an access key writes to one domain"
    scopes = parse_scopes(body, str(client_type), errors)
    if errors:
        raise ApiError(400, "invalid client: " + ", ".join(sorted(errors)), errors)
    site_id = None
    if domain_id:
        site_id = authorize_site(
            ctx, request, str(domain_id).strip(), "domains", write=True, role="Admin"
        ).id
    _no_escalation(principal, scopes)
    user_id = principal.user.id if principal.user else None
    client, secret = ctx.meta.create_client(str(client_type), site_id, user_id, description, scopes)
    return json_response(client.to_pirsch(client_secret=secret))


def _no_escalation(principal: Principal, scopes: dict[str, str]) -> None:
    """A client may only create clients holding scopes it holds itself."""
    for scope, value in scopes.items():
        if value and not principal.allows(scope, write=value == "w"):
            raise ApiError(
                403, f"cannot grant scope_{scope}={value!r}: the calling client lacks it"
            )


def parse_scopes(body: dict[str, Any], client_type: str, errors: dict[str, str]) -> dict[str, str]:
    """The `scope_*` fields; none given -> everything the client type may hold."""
    given = {s: body.get(f"scope_{s}") for s in SCOPES if body.get(f"scope_{s}") is not None}
    scopes: dict[str, str] = {}
    for scope in SCOPES:
        value: Any
        if not given:
            value = SCOPE_VALUES[scope][-1] if scope in _DEFAULT_SCOPES else ""
        else:
            value = given.get(scope, "")
        if value not in SCOPE_VALUES[scope]:
            allowed = " or ".join(repr(v) for v in SCOPE_VALUES[scope])
            errors[f"scope_{scope}"] = f"must be {allowed}"
        # An access key only ever writes data, whatever the request asked for.
        if client_type == "token" and scope not in WRITE_ONLY_SCOPES:
            value = ""
        scopes[scope] = value
    return scopes


_DEFAULT_SCOPES = ("hit", "event", "session", "statistics", "domains")


def _client_in_reach(
    ctx: Context, principal: Principal, domain_id: str | None, user_id: str | None
) -> bool:
    """User clients belong to their user; domain clients to the Admins and Owners of the site."""
    if domain_id is None:
        return principal.user is not None and user_id == principal.user.id
    site = ctx.meta.get_site(domain_id)
    role = principal.site_role(site) if site is not None else None
    if role is None:
        return False
    require_role(role, "Admin")
    return True


def delete_client(ctx: Context, request: Any) -> Response:
    principal = _user_manager(ctx, request)
    client = ctx.meta.get_client(query_value(query_params(request), "id") or "-")
    if client is None or not _client_in_reach(ctx, principal, client.domain_id, client.user_id):
        raise ApiError(404, "client not found")
    ctx.meta.delete_client(client.id)
    return _ok()

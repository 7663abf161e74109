"""Pirsch API clients (`/api/v1/client`): oauth clients and `pa_` access keys, of a domain or
of a user."""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.http import body_object, empty, json_response, query_params, query_value
from trail.api.pirsch.auth import authorize_principal, authorize_site, require_role, user_manager
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, FieldError, check_fields
from trail.storage.meta import SCOPE_VALUES, SCOPES, WRITE_ONLY_SCOPES, Principal

routes = Routes()
CLIENT_TYPES = ("token", "oauth")


# -- clients ----------------------------------------------------------------------------------


@routes.get("/api/v1/client")
def list_clients(ctx: Context, request: Any) -> Response:
    """A domain's clients (`id`), or without `id` the caller's user clients."""
    principal = authorize_principal(ctx, request, "domains", user_only=True)
    domain_id = query_value(query_params(request), "id")
    if not domain_id:
        user_id = principal.user.id if principal.user else None
        return json_response([c.to_pirsch() for c in ctx.meta.list_clients(user_id=user_id)])
    site = authorize_site(ctx, request, domain_id, "domains", role="Admin")
    return json_response([c.to_pirsch() for c in ctx.meta.list_clients(domain_id=site.id)])


@routes.post("/api/v1/client")
def save_client(ctx: Context, request: Any) -> Response:
    """Create a client (returning its secret once), or update its description when `id` is set.

    Without `domain_id` the client is a user client acting with the caller's reach."""
    principal = user_manager(ctx, request)
    body = body_object(ctx, request)
    description = body.get("description") or ""
    if not isinstance(description, str) or len(description) > 500:
        raise FieldError("description", "must be a string of at most 500 characters")
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
    check_fields(errors, "client")
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


@routes.delete("/api/v1/client")
def delete_client(ctx: Context, request: Any) -> Response:
    principal = user_manager(ctx, request)
    client = ctx.meta.get_client(query_value(query_params(request), "id") or "-")
    if client is None or not _client_in_reach(ctx, principal, client.domain_id, client.user_id):
        raise ApiError(404, "client not found")
    ctx.meta.delete_client(client.id)
    return empty()

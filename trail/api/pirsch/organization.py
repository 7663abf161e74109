"""Pirsch organizations (`/api/v1/organization...`): accounts shared by members.

An organization is an account with `organization=True` and an owner; its sites are the sites
whose account_id is its id; members hold a role on all of them; auto-join host names make new
users with a matching email Viewers (MetaStore.create_user)."""

from __future__ import annotations

import dataclasses
from typing import Any

from robyn import Response

from trail.api.http import (
    body_object,
    empty,
    json_response,
    query_params,
    query_value,
    string_field,
)
from trail.api.pirsch.auth import authorize_site, caller
from trail.api.pirsch.member import organization
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, check_fields
from trail.services import accounts
from trail.services.sites import domain_record
from trail.storage.documents import records
from trail.storage.meta import Account, Principal
from trail.validation import is_hostname, normal_hostname

routes = Routes()


def _json(ctx: Context, account: Account, role: str) -> dict[str, Any]:
    members = records(ctx.meta, "members").find(organization_id=account.id)
    return {
        "id": account.id,
        "def_time": account.def_time,
        "mod_time": account.mod_time or account.def_time,
        "user_id": account.user_id,
        "name": account.name,
        "member": len(members) + 1,
        "domains": sum(1 for s in ctx.meta.all_sites() if s.account_id == account.id),
        "themes": len(records(ctx.meta, "themes").find(organization_id=account.id)),
        "role": role,
        "can_edit": role == "Owner",
        "auto_join": account.auto_join,
        "theme_id": account.theme_id,
    }


def _name(body: dict[str, Any]) -> str:
    errors: dict[str, str] = {}
    name = string_field(body, "name", errors, max_len=200)
    check_fields(errors, "organization")
    return name


def _principal(ctx: Context, request: Any) -> Principal:
    return caller(ctx, request, "organizations", user_only=True)


@routes.get("/api/v1/organization")
def list_organizations(ctx: Context, request: Any) -> Response:
    principal = _principal(ctx, request)
    out = []
    for account in ctx.meta.all_accounts():
        role = principal.org_role(account) if account.organization else None
        if role:
            out.append(_json(ctx, account, role))
    return json_response(sorted(out, key=lambda o: (o["def_time"], o["id"])))


@routes.post("/api/v1/organization")
def create_organization(ctx: Context, request: Any) -> Response:
    principal = _principal(ctx, request)
    name = _name(body_object(ctx, request))
    assert principal.user is not None  # _principal lets only users through
    account = accounts.create_account(ctx, name, owner=principal.user)
    return json_response(_json(ctx, account, "Owner"))


@routes.put("/api/v1/organization")
def update_organization(ctx: Context, request: Any) -> Response:
    _principal(ctx, request)
    body = body_object(ctx, request)
    account = organization(ctx, request, str(body.get("id") or ""), "Owner")
    account = ctx.meta.save_account(dataclasses.replace(account, name=_name(body)))
    return json_response(_json(ctx, account, "Owner"))


@routes.delete("/api/v1/organization")
def delete_organization(ctx: Context, request: Any) -> Response:
    """Delete it; its sites are deleted too (`delete_domains=true`) or go back to their owners."""
    _principal(ctx, request)
    params = query_params(request)
    account = organization(ctx, request, query_value(params, "id"), "Owner")
    delete_domains = query_value(params, "delete_domains").lower() == "true"
    accounts.delete_organization(ctx, account, delete_domains)
    return empty()


@routes.put("/api/v1/organization/theme")
def set_default_theme(ctx: Context, request: Any) -> Response:
    _principal(ctx, request)
    body = body_object(ctx, request)
    account = organization(ctx, request, str(body.get("organization_id") or ""), "Admin")
    theme_id = body.get("theme_id") or None
    if theme_id is not None:
        theme = records(ctx.meta, "themes").get(str(theme_id))
        if theme is None or theme.get("organization_id") != account.id:
            raise ApiError(404, "theme not found")
    ctx.meta.save_account(dataclasses.replace(account, theme_id=theme_id))
    return empty()


@routes.get("/api/v1/organization/domain")
def list_org_domains(ctx: Context, request: Any) -> Response:
    _principal(ctx, request)
    account = organization(ctx, request, query_value(query_params(request), "id"), "Viewer")
    sites = sorted(
        (s for s in ctx.meta.all_sites() if s.account_id == account.id),
        key=lambda s: (s.def_time, s.id),
    )
    return json_response([domain_record(ctx, s) for s in sites])


@routes.post("/api/v1/organization/domain")
def add_org_domain(ctx: Context, request: Any) -> Response:
    """Move a site the caller owns into an organization it administers."""
    _principal(ctx, request)
    body = body_object(ctx, request)
    account = organization(ctx, request, str(body.get("id") or ""), "Admin")
    if not body.get("domain_id"):
        raise ApiError(400, "domain_id is required", {"domain_id": "required"})
    site = authorize_site(ctx, request, str(body["domain_id"]), "domains", write=True, role="Owner")
    updated = ctx.meta.update_site(site.id, {"account_id": account.id})
    return json_response(domain_record(ctx, updated) if updated else {})


@routes.delete("/api/v1/organization/domain")
def remove_org_domain(ctx: Context, request: Any) -> Response:
    _principal(ctx, request)
    params = query_params(request)
    account = organization(ctx, request, query_value(params, "id"), "Admin")
    site = ctx.meta.get_site(query_value(params, "domain_id"))
    if site is None or site.account_id != account.id:
        raise ApiError(404, "domain not found")
    ctx.meta.update_site(site.id, {"account_id": accounts.home_account(ctx, site.user_id, account)})
    return empty()


@routes.post("/api/v1/organization/autojoin")
def add_auto_join(ctx: Context, request: Any) -> Response:
    _principal(ctx, request)
    body = body_object(ctx, request)
    account = organization(ctx, request, str(body.get("id") or ""), "Admin")
    hosts = body.get("auto_join")
    if not isinstance(hosts, list) or not all(
        isinstance(h, str) and is_hostname(normal_hostname(h)) for h in hosts
    ):
        raise ApiError(
            400, "invalid auto_join", {"auto_join": "must be a list of host names like example.com"}
        )
    merged = list(dict.fromkeys([*account.auto_join, *(h.strip().lower() for h in hosts)]))
    return json_response(
        _json(ctx, ctx.meta.save_account(dataclasses.replace(account, auto_join=merged)), "Admin")
    )


@routes.delete("/api/v1/organization/autojoin")
def remove_auto_join(ctx: Context, request: Any) -> Response:
    _principal(ctx, request)
    params = query_params(request)
    account = organization(ctx, request, query_value(params, "id"), "Admin")
    host = query_value(params, "auto_join").lower()
    if host not in account.auto_join:
        raise ApiError(404, "auto-join host name not found")
    ctx.meta.save_account(
        dataclasses.replace(account, auto_join=[h for h in account.auto_join if h != host])
    )
    return empty()

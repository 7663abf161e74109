"""Pirsch organizations (`/api/v1/organization...`): accounts shared by members.

An organization is an account with `organization=True` and an owner; its sites are the sites
whose account_id is its id; members hold a role on all of them; auto-join host names make new
users with a matching email Viewers (MetaStore.create_user)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from robyn import Response

from trail.api.common import (
    ApiError,
    authorize_site,
    handler,
    json_response,
    query_params,
    query_value,
)
from trail.api.pirsch_manage import HOSTNAME_RE
from trail.api.pirsch_member import organization
from trail.api.resources import body_object, caller, invalid, ok, string_field
from trail.context import Context
from trail.storage.documents import records
from trail.storage.meta import Account, Principal, now_rfc3339

PATH = "/api/v1/organization"


def register(app: Any, ctx: Context) -> None:
    app.get(PATH)(handler(lambda request: list_organizations(ctx, request)))
    app.post(PATH)(handler(lambda request: create_organization(ctx, request)))
    app.put(PATH)(handler(lambda request: update_organization(ctx, request)))
    app.delete(PATH)(handler(lambda request: delete_organization(ctx, request)))
    app.put(PATH + "/theme")(handler(lambda request: set_default_theme(ctx, request)))
    app.get(PATH + "/domain")(handler(lambda request: list_org_domains(ctx, request)))
    app.post(PATH + "/domain")(handler(lambda request: add_org_domain(ctx, request)))
    app.delete(PATH + "/domain")(handler(lambda request: remove_org_domain(ctx, request)))
    app.post(PATH + "/autojoin")(handler(lambda request: add_auto_join(ctx, request)))
    app.delete(PATH + "/autojoin")(handler(lambda request: remove_auto_join(ctx, request)))


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
    invalid(errors, "organization")
    return name


def _principal(ctx: Context, request: Any) -> Principal:
    return caller(ctx, request, "organizations", user_only=True)


def list_organizations(ctx: Context, request: Any) -> Response:
    principal = _principal(ctx, request)
    out = []
    for account in ctx.meta.all_accounts():
        role = principal.org_role(account) if account.organization else None
        if role:
            out.append(_json(ctx, account, role))
    return json_response(sorted(out, key=lambda o: (o["def_time"], o["id"])))


def create_organization(ctx: Context, request: Any) -> Response:
    principal = _principal(ctx, request)
    name = _name(body_object(ctx, request))
    stamp = now_rfc3339()
    account = Account(
        id=str(uuid.uuid4()),
        name=name,
        def_time=stamp,
        mod_time=stamp,
        organization=True,
        user_id=principal.user.id if principal.user else None,
    )
    ctx.meta.save_account(account)
    return json_response(_json(ctx, account, "Owner"))


def update_organization(ctx: Context, request: Any) -> Response:
    _principal(ctx, request)
    body = body_object(ctx, request)
    account = organization(ctx, request, str(body.get("id") or ""), "Owner")
    account = ctx.meta.save_account(dataclasses.replace(account, name=_name(body)))
    return json_response(_json(ctx, account, "Owner"))


def delete_organization(ctx: Context, request: Any) -> Response:
    """Delete it; its sites are deleted too (`delete_domains=true`) or go back to their owners."""
    _principal(ctx, request)
    params = query_params(request)
    account = organization(ctx, request, query_value(params, "id"), "Owner")
    delete_domains = query_value(params, "delete_domains").lower() == "true"
    for site in [s for s in ctx.meta.all_sites() if s.account_id == account.id]:
        if delete_domains:
            ctx.meta.delete_site(site.id)
        else:
            ctx.meta.update_site(site.id, {"account_id": _home_account(ctx, site.user_id, account)})
    ctx.meta.delete_account(account.id)
    return ok()


def _home_account(ctx: Context, user_id: str | None, org: Account) -> str | None:
    """Where a site leaving an organization goes: its creator's own account (or the org owner's)."""
    for uid in (user_id, org.user_id):
        user = ctx.meta.get_user(uid) if uid else None
        if user is not None:
            return user.account_id
    return None


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
    return ok()


def list_org_domains(ctx: Context, request: Any) -> Response:
    _principal(ctx, request)
    account = organization(ctx, request, query_value(query_params(request), "id"), "Viewer")
    sites = sorted(
        (s for s in ctx.meta.all_sites() if s.account_id == account.id),
        key=lambda s: (s.def_time, s.id),
    )
    return json_response([s.to_pirsch() for s in sites])


def add_org_domain(ctx: Context, request: Any) -> Response:
    """Move a site the caller owns into an organization it administers."""
    _principal(ctx, request)
    body = body_object(ctx, request)
    account = organization(ctx, request, str(body.get("id") or ""), "Admin")
    if not body.get("domain_id"):
        raise ApiError(400, "domain_id is required", {"domain_id": "required"})
    site = authorize_site(ctx, request, str(body["domain_id"]), "domains", write=True, role="Owner")
    updated = ctx.meta.update_site(site.id, {"account_id": account.id})
    return json_response(updated.to_pirsch() if updated else {})


def remove_org_domain(ctx: Context, request: Any) -> Response:
    _principal(ctx, request)
    params = query_params(request)
    account = organization(ctx, request, query_value(params, "id"), "Admin")
    site = ctx.meta.get_site(query_value(params, "domain_id"))
    if site is None or site.account_id != account.id:
        raise ApiError(404, "domain not found")
    ctx.meta.update_site(site.id, {"account_id": _home_account(ctx, site.user_id, account)})
    return ok()


def add_auto_join(ctx: Context, request: Any) -> Response:
    _principal(ctx, request)
    body = body_object(ctx, request)
    account = organization(ctx, request, str(body.get("id") or ""), "Admin")
    hosts = body.get("auto_join")
    if not isinstance(hosts, list) or not all(
        isinstance(h, str) and HOSTNAME_RE.match(h.strip().lower()) for h in hosts
    ):
        raise ApiError(
            400, "invalid auto_join", {"auto_join": "must be a list of host names like example.com"}
        )
    merged = list(dict.fromkeys([*account.auto_join, *(h.strip().lower() for h in hosts)]))
    return json_response(
        _json(ctx, ctx.meta.save_account(dataclasses.replace(account, auto_join=merged)), "Admin")
    )


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
    return ok()

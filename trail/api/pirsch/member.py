"""Pirsch members and invitations (`/api/v1/member`, `/api/v1/invitation`).

A member record {user_id, domain_id | organization_id, role} gives a user a role on one site or
on every site of an organization. Inviting creates invitations by email; a user whose email
matches accepts one and becomes a Viewer. trail sends no email for this: users are created by
`trail admin create-user --email ...` and find their invitations with GET /api/v1/invitation."""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.http import body_object, empty, json_response, query_params, query_value
from trail.api.pirsch.auth import authorize_site, caller, id_in_query, require_role
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, check_fields
from trail.services.sites import domain_record
from trail.storage.documents import records
from trail.storage.meta import Account, Principal, User
from trail.validation import EMAIL_RE

routes = Routes()

MAX_EMAILS = 50
INVITE_ROLES = {"viewer": "Viewer", "admin": "Admin"}


# -- targets: a domain or an organization ------------------------------------------------------


def target(
    ctx: Context, request: Any, domain_id: str, organization_id: str, role: str
) -> tuple[str, str]:
    """("domain_id" | "organization_id", id) after checking the caller holds `role` there."""
    if domain_id:
        return "domain_id", authorize_site(ctx, request, domain_id, "domains", role=role).id
    if organization_id:
        return "organization_id", organization(ctx, request, organization_id, role).id
    caller(ctx, request)
    raise ApiError(400, "id (a domain) or organization_id is required", {"id": "required"})


def organization(ctx: Context, request: Any, org_id: str, role: str) -> Account:
    """The organization `org_id` if the caller holds `role` there (404 when out of reach)."""
    principal = caller(ctx, request, "organizations", user_only=True)
    account = ctx.meta.get_account(org_id) if org_id else None
    have = principal.org_role(account) if account is not None and account.organization else None
    if account is None or have is None:
        raise ApiError(404, "organization not found")
    require_role(have, role)
    return account


def _user_json(ctx: Context, user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    name = ctx.meta.get_prefs(user.id).get("full_name", "")  # POST /api/v1/user/name
    return {"id": user.id, "email": user.email, "full_name": name, "picture": None}


def _member_json(ctx: Context, rec: dict[str, Any]) -> dict[str, Any]:
    return {**rec, "user": _user_json(ctx, ctx.meta.get_user(rec["user_id"]))}


def _owner_json(ctx: Context, kind: str, target_id: str) -> list[dict[str, Any]]:
    """The owner, listed like a member (it has no member record: it cannot be removed)."""
    owner = None
    if kind == "domain_id":
        site = ctx.meta.get_site(target_id)
        owner = site.user_id if site else None
    else:
        account = ctx.meta.get_account(target_id)
        owner = account.user_id if account else None
    user = ctx.meta.get_user(owner) if owner else None
    if user is None:
        return []
    return [
        {
            "id": "",  # no member record; a string, as in Pirsch's OpenAPI file
            "def_time": user.def_time,
            "mod_time": user.def_time,
            "user_id": user.id,
            "domain_id": target_id if kind == "domain_id" else None,
            "organization_id": target_id if kind == "organization_id" else None,
            "role": "Owner",
            "user": _user_json(ctx, user),
        }
    ]


# -- members -----------------------------------------------------------------------------------


@routes.get("/api/v1/member")
def list_members(ctx: Context, request: Any) -> Response:
    members = records(ctx.meta, "members")
    params = query_params(request)
    kind, target_id = target(
        ctx, request, query_value(params, "id"), query_value(params, "organization_id"), "Viewer"
    )
    listed = [_member_json(ctx, r) for r in members.find(**{kind: target_id})]
    return json_response(_owner_json(ctx, kind, target_id) + listed)


@routes.post("/api/v1/member")
def invite(ctx: Context, request: Any) -> Response:
    members = records(ctx.meta, "members")
    invitations = records(ctx.meta, "invitations")
    caller(ctx, request)
    body = body_object(ctx, request)
    kind, target_id = target(
        ctx, request, str(body.get("id") or ""), str(body.get("organization_id") or ""), "Admin"
    )
    emails = body.get("emails")
    errors: dict[str, str] = {}
    if not isinstance(emails, list) or not emails or len(emails) > MAX_EMAILS:
        errors["emails"] = f"must be a list of 1 to {MAX_EMAILS} email addresses"
    elif not all(isinstance(e, str) and EMAIL_RE.match(e.strip()) for e in emails):
        errors["emails"] = "every entry must be an email address"
    check_fields(errors, "invitation")
    member_emails = {(_email(ctx, r["user_id"])) for r in members.find(**{kind: target_id})}
    pending = {r["email"] for r in invitations.find(**{kind: target_id})}
    created = []
    for email in dict.fromkeys(e.strip().lower() for e in emails or []):
        if email in member_emails or email in pending:
            continue
        fields = {"domain_id": None, "organization_id": None, "email": email, "role": "Viewer"}
        created.append(invitations.create({**fields, kind: target_id}))
    return json_response(created)


def _email(ctx: Context, user_id: str) -> str:
    user = ctx.meta.get_user(user_id)
    return (user.email or "").lower() if user else ""


def _member_target(ctx: Context, request: Any, rec: dict[str, Any] | None, role: str) -> None:
    if rec is None:
        raise ApiError(404, "member not found")
    try:
        target(ctx, request, rec.get("domain_id") or "", rec.get("organization_id") or "", role)
    except ApiError as e:
        raise ApiError(404, "member not found") if e.status == 404 else e from None


@routes.put("/api/v1/member")
def update_member(ctx: Context, request: Any) -> Response:
    members = records(ctx.meta, "members")
    caller(ctx, request)
    body = body_object(ctx, request)
    errors: dict[str, str] = {}
    role = INVITE_ROLES.get(str(body.get("role", "")).lower())
    if role is None:
        errors["role"] = "must be Viewer or Admin (Owner needs a domain transfer)"
    if not body.get("id"):
        errors["id"] = "required"
    check_fields(errors, "member")
    rec = members.get(str(body["id"]))
    _member_target(ctx, request, rec, "Admin")
    return json_response(_member_json(ctx, members.merge(str(body["id"]), {"role": role}) or {}))


@routes.delete("/api/v1/member")
def remove_member(ctx: Context, request: Any) -> Response:
    members = records(ctx.meta, "members")
    member_id = id_in_query(ctx, request)
    rec = members.get(member_id)
    principal = caller(ctx, request)
    leaving = (
        rec is not None
        and principal.user is not None
        and principal.domain_id is None
        and rec["user_id"] == principal.user.id
    )
    if not leaving:  # members may leave; removing someone else takes an Admin
        _member_target(ctx, request, rec, "Admin")
    members.delete(member_id)
    return empty()


# -- invitations -------------------------------------------------------------------------------


def _invitation_json(ctx: Context, rec: dict[str, Any]) -> dict[str, Any]:
    site = ctx.meta.get_site(rec["domain_id"]) if rec.get("domain_id") else None
    account = ctx.meta.get_account(rec["organization_id"]) if rec.get("organization_id") else None
    return {
        **rec,
        "domain": domain_record(ctx, site, "Viewer") if site else None,
        "organization": {"id": account.id, "name": account.name} if account else None,
    }


def _mine(principal: Principal, rec: dict[str, Any] | None) -> bool:
    email = (principal.user.email or "").lower() if principal.user else ""
    return rec is not None and bool(email) and principal.domain_id is None and rec["email"] == email


@routes.get("/api/v1/invitation")
def list_invitations(ctx: Context, request: Any) -> Response:
    invitations = records(ctx.meta, "invitations")
    params = query_params(request)
    domain_id, org_id = query_value(params, "domain_id"), query_value(params, "organization_id")
    if domain_id or org_id:
        kind, target_id = target(ctx, request, domain_id, org_id, "Admin")
        return json_response(
            [_invitation_json(ctx, r) for r in invitations.find(**{kind: target_id})]
        )
    principal = caller(ctx, request, user_only=True)
    email = (principal.user.email or "").lower() if principal.user else ""
    return json_response(
        [_invitation_json(ctx, r) for r in invitations.find(email=email)] if email else []
    )


@routes.post("/api/v1/invitation")
def accept_invitation(ctx: Context, request: Any) -> Response:
    members = records(ctx.meta, "members")
    invitations = records(ctx.meta, "invitations")
    principal = caller(ctx, request, user_only=True)
    body = body_object(ctx, request)
    if not body.get("id"):
        raise ApiError(400, "id is required", {"id": "required"})
    rec = invitations.get(str(body["id"]))
    if not _mine(principal, rec) or principal.user is None or rec is None:
        raise ApiError(404, "invitation not found")
    kind = "domain_id" if rec.get("domain_id") else "organization_id"
    existing = members.find(user_id=principal.user.id, **{kind: rec[kind]})
    member = (
        existing[0]
        if existing
        else members.create(
            {
                "user_id": principal.user.id,
                "domain_id": rec.get("domain_id"),
                "organization_id": rec.get("organization_id"),
                "role": rec.get("role", "Viewer"),
            }
        )
    )
    invitations.delete(rec["id"])
    return json_response(_member_json(ctx, member))


@routes.delete("/api/v1/invitation")
def delete_invitation(ctx: Context, request: Any) -> Response:
    invitations = records(ctx.meta, "invitations")
    principal = caller(ctx, request)
    body = body_object(ctx, request)
    if not body.get("id"):
        raise ApiError(400, "id is required", {"id": "required"})
    rec = invitations.get(str(body["id"]))
    if not _mine(principal, rec):  # the invitee may decline; otherwise an Admin of the target
        if rec is None:
            raise ApiError(404, "invitation not found")
        try:
            target(
                ctx, request, rec.get("domain_id") or "", rec.get("organization_id") or "", "Admin"
            )
        except ApiError as e:
            raise ApiError(404, "invitation not found") if e.status == 404 else e from None
    invitations.delete(str(body["id"]))
    return empty()

"""Pirsch `/api/v1/user...`: the calling user, its preferences and dashboard toggles.

Self-hosted trail has no news feed and no affiliate rewards: those answer a fixed empty result.
`POST /api/v1/user/name` {full_name} sets the display name the dashboard shows (its account page
and header): 1 to 200 characters, no control characters, surrounding spaces dropped.
The dashboard password is changed with trail's own `PUT /api/v1/user/password`; Pirsch's
`POST` form (with `confirm_password`) answers a 400 that points there."""

from __future__ import annotations

import re
from typing import Any

from robyn import Response

from trail.api.http import body_object, empty, json_response, string_field
from trail.api.pirsch.auth import authenticate, caller
from trail.api.pirsch.member import EMAIL_RE
from trail.api.routing import Routes
from trail.api.session_cookie import cookie_token, uses_cookie
from trail.context import Context
from trail.errors import ApiError, FieldError, check_fields
from trail.services import signin
from trail.storage.meta import Principal, User

routes = Routes()

PREFS = {
    "full_name": "",
    "language": "en",
    "default_time_range": "",
    "favorite_domains": [],
    "pinned_domains": [],
    "active_visitors_title": False,
    "full_width": False,
    "read_news": 0,
}
TIME_RANGES = (
    "",
    "today",
    "yesterday",
    "7d",
    "14d",
    "30d",
    "60d",
    "90d",
    "week",
    "month",
    "year",
    "all",
)


def prefs(ctx: Context, user_id: str) -> dict[str, Any]:
    return {**PREFS, **ctx.meta.get_prefs(user_id)}


def _save_prefs(ctx: Context, user_id: str, changes: dict[str, Any]) -> None:
    ctx.meta.update_prefs(user_id, changes)


def user_json(ctx: Context, user: User) -> dict[str, Any]:
    account = ctx.meta.get_account(user.account_id)
    return {
        "id": user.id,
        "def_time": user.def_time,
        "email": user.email,
        "role": user.role,
        "account_id": user.account_id,
        "account_name": account.name if account else "",
        **prefs(ctx, user.id),
    }


@routes.get("/api/v1/user")
def get_user(ctx: Context, request: Any) -> Response:
    principal = caller(ctx, request, user_only=True)
    assert principal.user is not None
    return json_response(user_json(ctx, principal.user))


def _one_field(body: dict[str, Any], name: str, max_len: int = 200) -> str:
    errors: dict[str, str] = {}
    value = string_field(body, name, errors, max_len=max_len)
    check_fields(errors, "user")
    return value


NAME_MAX = 200
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def set_name(ctx: Context, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    name = string_field(body, "full_name", errors, max_len=NAME_MAX)
    if CONTROL.search(name):
        errors["full_name"] = "must not contain control characters (line breaks, tabs)"
    if errors:
        raise FieldError("full_name", errors["full_name"])
    return {"full_name": name}


def set_language(ctx: Context, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    return {"language": _one_field(body, "language", max_len=10).lower()}


def set_filter(ctx: Context, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("default_time_range")
    if value not in TIME_RANGES:
        raise ApiError(
            400,
            "invalid default_time_range",
            {"default_time_range": "must be one of " + ", ".join(TIME_RANGES[1:])},
        )
    return {"default_time_range": value}


def set_email(ctx: Context, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    """Change the email invitations are matched against (no confirmation code: no mail needed)."""
    email = _one_field(body, "email", max_len=254).lower()
    if not EMAIL_RE.match(email):
        raise FieldError("email", "must be an email address")
    assert principal.user is not None
    try:
        ctx.meta.set_user_email(principal.user.id, email)
    except KeyError:
        raise FieldError("email", "already in use") from None
    return {}


def _toggle_site(
    ctx: Context, principal: Principal, body: dict[str, Any], key: str
) -> dict[str, Any]:
    site_id = str(body.get("id") or "")
    if not site_id:
        raise ApiError(400, "id is required", {"id": "required"})
    site = ctx.meta.get_site(site_id)
    if site is None or not principal.can_see(site):
        raise ApiError(404, "domain not found")
    assert principal.user is not None
    ids = list(prefs(ctx, principal.user.id)[key])
    return {key: [i for i in ids if i != site_id] if site_id in ids else [*ids, site_id]}


def favorite(ctx: Context, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    return _toggle_site(ctx, principal, body, "favorite_domains")


def pin(ctx: Context, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    return _toggle_site(ctx, principal, body, "pinned_domains")


def _flip(ctx: Context, principal: Principal, key: str) -> dict[str, Any]:
    assert principal.user is not None
    return {key: not prefs(ctx, principal.user.id)[key]}


def toggle_active(ctx: Context, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    return _flip(ctx, principal, "active_visitors_title")


def toggle_full_width(ctx: Context, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    return _flip(ctx, principal, "full_width")


def read_news(ctx: Context, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    news = body.get("news")
    if not isinstance(news, int) or isinstance(news, bool):
        raise ApiError(400, "invalid news", {"news": "must be a number"})
    return {"read_news": news}


@routes.post("/api/v1/user/password")
def no_passwords(ctx: Context, request: Any) -> Response:
    caller(ctx, request, user_only=True)
    raise ApiError(
        400,
        "trail users authenticate with API keys; change the dashboard password with "
        "PUT /api/v1/user/password",
        {"password": "not available in self-hosted trail: use PUT /api/v1/user/password"},
    )


@routes.route("put", "/api/v1/user/password", offload=True)
def change_password(ctx: Context, request: Any) -> Response:
    """{current_password, password}: the current password is needed when the user has one.
    Revokes the user's other dashboard sessions (all of them with an API key); answers how many
    (`revoked_sessions`)."""
    principal = authenticate(ctx, request)
    if principal.kind != "user" or principal.user is None:
        raise ApiError(403, "changing a password needs the user's API key or a signed-in session")
    body = body_object(ctx, request)
    keep = cookie_token(request) if uses_cookie(request) else None
    revoked = signin.change_password(
        ctx, principal.user, body.get("current_password"), body.get("password"), keep
    )
    return json_response({"revoked_sessions": revoked})


def _change(ctx: Context, request: Any, fn: Any) -> Response:
    """Apply one preference change of the calling user."""
    principal = caller(ctx, request, user_only=True)
    assert principal.user is not None
    body = body_object(ctx, request) if fn not in (toggle_active, toggle_full_width) else {}
    _save_prefs(ctx, principal.user.id, fn(ctx, principal, body))
    return empty()


@routes.post("/api/v1/user/name")
def post_user_name(ctx: Context, request: Any) -> Response:
    return _change(ctx, request, set_name)


@routes.post("/api/v1/user/email")
def post_user_email(ctx: Context, request: Any) -> Response:
    return _change(ctx, request, set_email)


@routes.post("/api/v1/user/language")
def post_user_language(ctx: Context, request: Any) -> Response:
    return _change(ctx, request, set_language)


@routes.post("/api/v1/user/filter")
def post_user_filter(ctx: Context, request: Any) -> Response:
    return _change(ctx, request, set_filter)


@routes.post("/api/v1/user/favorite")
def post_user_favorite(ctx: Context, request: Any) -> Response:
    return _change(ctx, request, favorite)


@routes.post("/api/v1/user/pin")
def post_user_pin(ctx: Context, request: Any) -> Response:
    return _change(ctx, request, pin)


@routes.post("/api/v1/user/active")
def post_user_active(ctx: Context, request: Any) -> Response:
    return _change(ctx, request, toggle_active)


@routes.post("/api/v1/user/fullwidth")
def post_user_fullwidth(ctx: Context, request: Any) -> Response:
    return _change(ctx, request, toggle_full_width)


@routes.post("/api/v1/user/news")
def post_user_news(ctx: Context, request: Any) -> Response:
    return _change(ctx, request, read_news)


@routes.get("/api/v1/user/news")
def list_news(ctx: Context, request: Any) -> Response:
    caller(ctx, request, user_only=True)
    return json_response([])


@routes.get("/api/v1/user/rewards")
def list_rewards(ctx: Context, request: Any) -> Response:
    caller(ctx, request, user_only=True)
    return json_response({"sum": 0, "count": 0, "rewards": []})

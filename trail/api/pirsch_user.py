"""Pirsch `/api/v1/user...`: the calling user, its preferences and dashboard toggles.

Self-hosted trail users authenticate with API keys, so there are no passwords, no news feed and
no affiliate rewards: those answer a fixed empty result or a 400 that says so."""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.common import ApiError, handler, json_response
from trail.api.pirsch_member import EMAIL_RE
from trail.api.resources import body_object, caller, invalid, ok, string_field
from trail.context import Context
from trail.storage.meta import Principal, User

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


def register(app: Any, ctx: Context) -> None:
    app.get("/api/v1/user")(handler(lambda request: get_user(ctx, request)))
    for path, fn in (
        ("name", set_name),
        ("email", set_email),
        ("language", set_language),
        ("filter", set_filter),
        ("favorite", favorite),
        ("pin", pin),
        ("active", toggle_active),
        ("fullwidth", toggle_full_width),
        ("news", read_news),
    ):
        app.post(f"/api/v1/user/{path}")(handler(_bound(ctx, fn)))
    app.post("/api/v1/user/password")(handler(lambda request: no_passwords(ctx, request)))
    app.get("/api/v1/user/news")(
        handler(lambda request: (caller(ctx, request, user_only=True), json_response([]))[1])
    )
    app.get("/api/v1/user/rewards")(
        handler(
            lambda request: (
                caller(ctx, request, user_only=True),
                json_response({"sum": 0, "count": 0, "rewards": []}),
            )[1]
        )
    )


def _bound(ctx: Context, fn: Any) -> Any:
    def route(request: Any) -> Response:
        principal = caller(ctx, request, user_only=True)
        assert principal.user is not None
        body = body_object(ctx, request) if fn not in (toggle_active, toggle_full_width) else {}
        changes = fn(ctx, principal, body)
        _save_prefs(ctx, principal.user.id, changes)
        return ok()

    route.__name__ = f"user_{fn.__name__}"
    return route


def prefs(ctx: Context, user_id: str) -> dict[str, Any]:
    with ctx.meta.env.begin() as txn:
        return {**PREFS, **(ctx.meta._get(txn, "prefs", user_id) or {})}


def _save_prefs(ctx: Context, user_id: str, changes: dict[str, Any]) -> None:
    with ctx.meta.env.begin(write=True) as txn:
        current = ctx.meta._get(txn, "prefs", user_id) or {}
        ctx.meta._put(txn, "prefs", user_id, {**current, **changes})


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


def get_user(ctx: Context, request: Any) -> Response:
    principal = caller(ctx, request, user_only=True)
    assert principal.user is not None
    return json_response(user_json(ctx, principal.user))


def _one_field(body: dict[str, Any], name: str, max_len: int = 200) -> str:
    errors: dict[str, str] = {}
    value = string_field(body, name, errors, max_len=max_len)
    invalid(errors, "user")
    return value


def set_name(ctx: Context, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    return {"full_name": _one_field(body, "full_name")}


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
        raise ApiError(400, "invalid email", {"email": "must be an email address"})
    assert principal.user is not None
    with ctx.meta.env.begin(write=True) as txn:
        if any((r.get("email") or "").lower() == email for _, r in ctx.meta._scan(txn, "users")):
            raise ApiError(400, "email already in use", {"email": "already in use"})
        rec = ctx.meta._get(txn, "users", principal.user.id)
        if rec is not None:
            ctx.meta._put(txn, "users", principal.user.id, {**rec, "email": email})
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


def no_passwords(ctx: Context, request: Any) -> Response:
    caller(ctx, request, user_only=True)
    raise ApiError(
        400,
        "trail users sign in with API keys: there is no password to change",
        {"password": "not available in self-hosted trail"},
    )

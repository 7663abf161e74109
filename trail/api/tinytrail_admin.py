"""TinyTrail admin routes: accounts, users (with recoverable API keys), and manual aggregation.

An account is the same record as a Pirsch organization; a user's `tt_` key also works on the
Pirsch API (as `Authorization: Bearer`).
"""

from __future__ import annotations

import importlib
import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from robyn import Response

from trail.api.common import ApiError
from trail.api.tinytrail_common import (
    UUID_RE,
    body_object,
    invalid,
    ok,
    optional_str,
    path_id,
    require_admin,
    tt_handler,
)
from trail.services.tinytrail_websites import purge_site_data
from trail.storage.accounts import AccountStore
from trail.storage.meta import ROLES, Account, User

if TYPE_CHECKING:
    from trail.context import Context

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EMAIL_MAX = 254


def account_json(a: Account) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "createdAt": a.def_time}


def user_json(u: User, api_key: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": u.id,
        "accountId": u.account_id,
        "email": u.email,
        "role": u.role,
    }
    if api_key is not None:
        out["apiKey"] = api_key
    out["createdAt"] = u.def_time
    return out


def register(app: Any, ctx: Context) -> None:
    store = AccountStore(ctx.meta, ctx.data_dir)
    routes = {
        ("get", "/api/v1/accounts"): lambda request: list_accounts(ctx, store, request),
        ("post", "/api/v1/accounts"): lambda request: create_account(ctx, request),
        ("delete", "/api/v1/accounts/:id"): lambda request: delete_account(ctx, store, request),
        ("get", "/api/v1/users"): lambda request: list_users(ctx, store, request),
        ("post", "/api/v1/users"): lambda request: create_user(ctx, store, request),
        ("get", "/api/v1/users/:id/api-key"): lambda request: get_api_key(ctx, store, request),
        ("delete", "/api/v1/users/:id"): lambda request: delete_user(ctx, store, request),
        ("post", "/api/v1/admin/aggregate"): lambda request: aggregate(ctx, request),
    }
    for (method, path), fn in routes.items():
        getattr(app, method)(path)(tt_handler(fn))


# -- accounts ---------------------------------------------------------------------------------


def list_accounts(ctx: Context, store: AccountStore, request: Any) -> Response:
    require_admin(ctx, request)
    return ok([account_json(a) for a in store.list_accounts()])


def create_account(ctx: Context, request: Any) -> Response:
    require_admin(ctx, request)
    body = body_object(ctx, request)
    name = optional_str(body, "name", 200)
    if not name:
        raise invalid("name", "required: a non-empty string")
    return ok(account_json(ctx.meta.create_account(name)), 201)


def delete_account(ctx: Context, store: AccountStore, request: Any) -> Response:
    principal = require_admin(ctx, request)
    account_id = path_id(request)
    if account_id == principal.account_id:
        raise invalid("id", "an admin cannot delete the account it belongs to")
    result = store.delete_account(account_id)
    if result is None:
        raise ApiError(404, "account not found")
    account, sites = result
    for site in sites:
        purge_site_data(ctx.data_dir, site.id)
    return ok(account_json(account))


# -- users ------------------------------------------------------------------------------------


def list_users(ctx: Context, store: AccountStore, request: Any) -> Response:
    require_admin(ctx, request)
    return ok([user_json(u) for u in store.list_users()])


def create_user(ctx: Context, store: AccountStore, request: Any) -> Response:
    require_admin(ctx, request)
    body = body_object(ctx, request)
    account_id = body.get("account_id")
    if not isinstance(account_id, str) or not UUID_RE.match(account_id):
        raise invalid("account_id", "required: the UUID of an account")
    role = body.get("role")
    if role not in ROLES:
        raise invalid("role", f"required: one of {', '.join(ROLES)}")
    email = optional_str(body, "email", EMAIL_MAX) or None
    try:
        user, key = store.create_user(role, account_id.lower(), email)
    except KeyError:
        raise invalid("account_id", "account not found") from None
    return ok(user_json(user, key), 201)


def get_api_key(ctx: Context, store: AccountStore, request: Any) -> Response:
    require_admin(ctx, request)
    user_id = path_id(request)
    if ctx.meta.get_user(user_id) is None:
        raise ApiError(404, "user not found")
    key = store.user_key(user_id)
    if key is None:
        # The first-start admin's key was printed once and never derivable.
        raise ApiError(404, "this user's API key is not recoverable (created at first start)")
    return ok({"id": user_id, "apiKey": key})


def delete_user(ctx: Context, store: AccountStore, request: Any) -> Response:
    principal = require_admin(ctx, request)
    user_id = path_id(request)
    if principal.user is not None and user_id == principal.user.id:
        raise invalid("id", "an admin cannot delete itself")
    user = store.delete_user(user_id)
    if user is None:
        raise ApiError(404, "user not found")
    return ok(user_json(user))


# -- aggregation ------------------------------------------------------------------------------


def parse_day(value: Any, field: str = "date") -> date:
    if not isinstance(value, str) or not _DATE.match(value.strip()):
        raise invalid(field, "must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise invalid(field, "must be a valid calendar date YYYY-MM-DD") from None


def aggregate(ctx: Context, request: Any) -> Response:
    """Compact every site's segments of one UTC day (and so its rollups) now."""
    require_admin(ctx, request)
    raw = request.body
    body = body_object(ctx, request) if raw and str(raw).strip() else {}
    value = body.get("date")
    day = parse_day(value) if value is not None else datetime.now(UTC).date() - timedelta(days=1)
    try:
        compaction = importlib.import_module("trail.tasks.compaction")
    except ModuleNotFoundError as e:
        if e.name != "trail.tasks.compaction":
            raise
        raise ApiError(
            500, "aggregation is not available: trail.tasks.compaction is missing"
        ) from None
    summary = compaction.compact_day(ctx.data_dir, day)
    skipped = summary.get("skipped") if isinstance(summary, dict) else None
    message = (
        f"Aggregation skipped for {day.isoformat()}: {skipped}"
        if skipped
        else f"Aggregation completed for {day.isoformat()}"
    )
    return ok({"message": message, "summary": summary})

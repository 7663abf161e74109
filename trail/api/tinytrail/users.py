"""TinyTrail users (`/api/v1/users`), admins only: each with an API key an admin can read again
(`GET /api/v1/users/:id/api-key`); a user's `tt_` key also works on the Pirsch API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robyn import Response

from trail.api.http import body_object
from trail.api.routing import Routes
from trail.api.tinytrail.auth import optional_str, path_id, require_admin
from trail.api.tinytrail.errors import ok
from trail.errors import ApiError, FieldError
from trail.services import accounts
from trail.storage.meta import ROLES, User
from trail.validation import is_uuid

if TYPE_CHECKING:
    from trail.context import Context

routes = Routes()
EMAIL_MAX = 254


def user_json(u: User, api_key: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": u.id, "accountId": u.account_id, "email": u.email, "role": u.role}
    if api_key is not None:
        out["apiKey"] = api_key
    out["createdAt"] = u.def_time
    return out


@routes.get("/api/v1/users")
def list_users(ctx: Context, request: Any) -> Response:
    require_admin(ctx, request)
    return ok([user_json(u) for u in accounts.account_store(ctx).list_users()])


@routes.post("/api/v1/users")
def create_user(ctx: Context, request: Any) -> Response:
    require_admin(ctx, request)
    body = body_object(ctx, request)
    account_id = body.get("account_id")
    if not is_uuid(account_id):
        raise FieldError("account_id", "required: the UUID of an account")
    role = body.get("role")
    if role not in ROLES:
        raise FieldError("role", f"required: one of {', '.join(ROLES)}")
    email = optional_str(body, "email", EMAIL_MAX) or None
    try:
        user, key = accounts.account_store(ctx).create_user(role, account_id.lower(), email)
    except KeyError:
        raise FieldError("account_id", "account not found") from None
    return ok(user_json(user, key), 201)


@routes.get("/api/v1/users/:id/api-key")
def get_api_key(ctx: Context, request: Any) -> Response:
    require_admin(ctx, request)
    user_id = path_id(request)
    if ctx.meta.get_user(user_id) is None:
        raise ApiError(404, "user not found")
    key = accounts.account_store(ctx).user_key(user_id)
    if key is None:
        # The first-start admin's key was printed once and never derivable.
        raise ApiError(404, "this user's API key is not recoverable (created at first start)")
    return ok({"id": user_id, "apiKey": key})


@routes.delete("/api/v1/users/:id")
def delete_user(ctx: Context, request: Any) -> Response:
    principal = require_admin(ctx, request)
    user_id = path_id(request)
    if principal.user is not None and user_id == principal.user.id:
        raise FieldError("id", "an admin cannot delete itself")
    return ok(user_json(accounts.delete_user(ctx, user_id)))

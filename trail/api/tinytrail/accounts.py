"""TinyTrail accounts (`/api/v1/accounts`), admins only. An account is the same record as a
Pirsch organization; deleting one is `trail.services.accounts`' job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robyn import Response

from trail.api.http import body_object
from trail.api.routing import Routes
from trail.api.tinytrail.auth import optional_str, path_id, require_admin
from trail.api.tinytrail.errors import ok
from trail.errors import FieldError
from trail.services import accounts
from trail.storage.meta import Account

if TYPE_CHECKING:
    from trail.context import Context

routes = Routes()


def account_json(a: Account) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "createdAt": a.def_time}


@routes.get("/api/v1/accounts")
def list_accounts(ctx: Context, request: Any) -> Response:
    require_admin(ctx, request)
    return ok([account_json(a) for a in accounts.account_store(ctx).list_accounts()])


@routes.post("/api/v1/accounts")
def create_account(ctx: Context, request: Any) -> Response:
    require_admin(ctx, request)
    body = body_object(ctx, request)
    name = optional_str(body, "name", 200)
    if not name:
        raise FieldError("name", "required: a non-empty string")
    return ok(account_json(accounts.create_account(ctx, name)), 201)


@routes.delete("/api/v1/accounts/:id")
def delete_account(ctx: Context, request: Any) -> Response:
    principal = require_admin(ctx, request)
    account_id = path_id(request)
    if account_id == principal.account_id:
        raise FieldError("id", "an admin cannot delete the account it belongs to")
    return ok(account_json(accounts.delete_account(ctx, account_id)))

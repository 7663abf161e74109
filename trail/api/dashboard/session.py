"""Signing in and out of the dashboard (`/api/v1/auth/...`, trail's own, not in Pirsch's API).

- `POST /api/v1/auth/session` {email, password}: sign in; sets the session cookie and answers
  the session (user with its display name `full_name`, `csrf_token`, `expires_at`). 401 for a
  wrong email or password (the same answer for both), 429 with Retry-After over the attempt
  limits.
- `GET /api/v1/auth/session`: the cookie's session, 401 when signed out.
- `DELETE /api/v1/auth/session`: sign out (revokes the session, deletes the cookie).
- `POST /api/v1/auth/password-link` {token, password, email?}: set a password with a one-time
  link (`trail admin set-password --link`, printed on the first start) and sign in.

Passwords are checked on the query threads (`offload`): an Argon2 check takes tens of
milliseconds that the hits queued on this worker should not wait for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from robyn import Response

from trail.api.http import body_object, json_response, string_field
from trail.api.routing import Routes
from trail.api.session_cookie import (
    check_csrf,
    check_same_origin,
    clear_cookie,
    cookie_token,
    live_session,
    session_of,
    set_cookie,
)
from trail.context import Context
from trail.errors import ApiError, FieldError, check_fields
from trail.services import collect, signin
from trail.storage.meta import User
from trail.storage.signins import WebSession

routes = Routes()
# The session answer carries the CSRF token: no cache may keep it.
NO_STORE = {"cache-control": "no-store"}


def client_ip(ctx: Context, request: Any) -> str:
    peer = collect.peer_address(request.ip_addr)
    return collect.client_ip(ctx, peer, request.headers.to_dict())


def session_json(ctx: Context, user: User, session: WebSession) -> dict[str, Any]:
    expires = datetime.fromtimestamp(session.expires, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "user": {
            "id": user.id,
            "email": user.email,
            "full_name": ctx.meta.get_prefs(user.id).get("full_name", ""),
            "role": user.role,
            "account_id": user.account_id,
        },
        "csrf_token": session.csrf,
        "expires_at": expires,
    }


def signed_in(ctx: Context, request: Any, done: signin.SignedIn) -> Response:
    """The answer that starts a session: its JSON and the cookie."""
    cookie = set_cookie(ctx, request, done.token, ctx.config.session_lifetime_s)
    return json_response(session_json(ctx, done.user, done.session), headers={**NO_STORE, **cookie})


def _password(body: dict[str, Any], name: str, errors: dict[str, str]) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        errors[name] = "required" if value in (None, "") else "must be a string"
        return ""
    if len(value) > signin.MAX_LENGTH:
        errors[name] = f"must be at most {signin.MAX_LENGTH} characters"
    return value


@routes.route("post", "/api/v1/auth/session", offload=True)
def sign_in(ctx: Context, request: Any) -> Response:
    check_same_origin(ctx, request)
    body = body_object(ctx, request)
    errors: dict[str, str] = {}
    email = string_field(body, "email", errors, max_len=254)
    password = _password(body, "password", errors)
    check_fields(errors, "sign-in")
    return signed_in(ctx, request, signin.sign_in(ctx, email, password, client_ip(ctx, request)))


@routes.get("/api/v1/auth/session")
def current_session(ctx: Context, request: Any) -> Response:
    found = session_of(ctx, request)
    if found is None:
        raise ApiError(401, "not signed in")
    session, principal = found
    assert principal.user is not None
    return json_response(session_json(ctx, principal.user, session), headers=NO_STORE)


@routes.delete("/api/v1/auth/session")
def sign_out(ctx: Context, request: Any) -> Response:
    """Revoke the cookie's session; answers 200 and deletes the cookie even when the session
    had already ended (then nothing changes on the server)."""
    found = live_session(ctx, request)
    if found is not None:
        check_csrf(ctx, request, found[0])
        signin.sign_out(ctx.meta, cookie_token(request))
    return json_response({}, headers=clear_cookie(ctx, request))


@routes.route("post", "/api/v1/auth/password-link", offload=True)
def use_password_link(ctx: Context, request: Any) -> Response:
    check_same_origin(ctx, request)
    body = body_object(ctx, request)
    email = body.get("email")
    if email is not None and not isinstance(email, str):
        raise FieldError("email", "must be a string")
    done = signin.use_link(
        ctx,
        body.get("token"),
        body.get("password"),
        email.strip() if email else None,
        client_ip(ctx, request),
    )
    return signed_in(ctx, request, done)

"""Dashboard sign-in: Argon2id passwords, sessions, one-time set-password links, attempt limits.

A signed-in browser holds a random session token in a cookie; the meta store keeps only its
digest, with the user, a CSRF token and the expiry (trail.storage.signins). The session makes the
browser the same `Principal` as the user's API key, so every route authorizes it the same way
(trail.api.pirsch.auth).

Sign-in attempts are counted per client IP and per email (`rate_limit_signin_ip`,
`rate_limit_signin_account`) whether the email belongs to a user or not, and a wrong password
and an unknown email get the same 401 after the same work: the answers do not tell which emails
have accounts. Setting a password revokes the user's other sessions.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from trail.errors import ApiError, FieldError, RateLimited
from trail.services import ratelimit
from trail.storage.signins import SignInStore, WebSession
from trail.validation import is_email

if TYPE_CHECKING:
    from trail.config import Config
    from trail.context import Context
    from trail.storage.meta import MetaStore, User

# OWASP's Argon2id setting (19 MiB, 2 passes, 1 lane): tens of milliseconds per check, so a
# worker stays responsive; hashes made with other parameters are redone at the next sign-in.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MIN_LENGTH = 8
MAX_LENGTH = 1024
WRONG_CREDENTIALS = "wrong email or password"
BAD_LINK = "this set-password link is unknown, used or expired: ask an admin for a new one"
_decoy: str | None = None


@dataclass(frozen=True)
class SignedIn:
    """A new session: the token for the cookie, the record, and its user."""

    token: str
    session: WebSession
    user: User


def store(meta: MetaStore) -> SignInStore:
    return SignInStore(meta)


def check_new_password(value: Any, field: str = "password") -> str:
    """A password a user may choose; 400 naming `field` otherwise."""
    if value is None or value == "":
        raise FieldError(field, "required")
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    if len(value) < MIN_LENGTH:
        raise FieldError(field, f"must be at least {MIN_LENGTH} characters")
    if len(value) > MAX_LENGTH:
        raise FieldError(field, f"must be at most {MAX_LENGTH} characters")
    return value


def _matches(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _decoy_hash() -> str:
    global _decoy
    if _decoy is None:
        _decoy = HASHER.hash(secrets.token_urlsafe(16))
    return _decoy


def _limit(ctx: Context, bucket: str, key: str, problem: str, field: str | None = None) -> None:
    wait = ratelimit.check_rate(ctx, bucket, key)
    if wait is not None:
        raise RateLimited(wait, problem, {field: problem} if field else None)


def _count_ip(ctx: Context, ip: str) -> None:
    _limit(ctx, "signin_ip", ip, "too many sign-in attempts from this address")


def _count_account(ctx: Context, key: str, field: str = "email") -> None:
    problem = "too many sign-in attempts for this account"
    _limit(ctx, "signin_account", key.strip().lower(), problem, field)


def _user_with_password(signins: SignInStore, users: list[User], password: str) -> User | None:
    """The user among `users` whose password this is; as slow when there is none."""
    checked = False
    for user in users:
        stored = signins.password_hash(user.id)
        if stored is None:
            continue
        checked = True
        if _matches(stored, password):
            if HASHER.check_needs_rehash(stored):
                signins.replace_hash(user.id, HASHER.hash(password))
            return user
    if not checked:
        _matches(_decoy_hash(), password)
    return None


def sign_in(ctx: Context, email: str, password: str, ip: str) -> SignedIn:
    """Check an email and password; a new session, or 401 (429 over the attempt limits)."""
    _count_ip(ctx, ip)
    _count_account(ctx, email)
    signins = store(ctx.meta)
    user = _user_with_password(signins, ctx.meta.users_by_email(email), password)
    if user is None:
        raise ApiError(401, WRONG_CREDENTIALS)
    token, session = signins.open_session(user.id, ctx.config.session_lifetime_s)
    return SignedIn(token, session, user)


def sign_out(meta: MetaStore, token: str) -> bool:
    """Revoke the session behind a token; whether there was one."""
    return store(meta).close_session(token)


def change_password(
    ctx: Context, user: User, current: Any, new: Any, keep: str | None = None
) -> int:
    """A user changes its own password: the current one is needed when it has one (checks
    are counted per account, like sign-ins, in a counter of their own). Revokes every other
    session (all but the session token `keep`); returns how many."""
    new = check_new_password(new)
    signins = store(ctx.meta)
    stored = signins.password_hash(user.id)
    if stored is not None:
        if not isinstance(current, str) or not current:
            problem = "must be a string" if current else "required: the password you have now"
            raise FieldError("current_password", problem)
        _count_account(ctx, "password change:" + user.id, "current_password")
        if not _matches(stored, current):
            raise FieldError("current_password", "wrong password")
    return signins.set_password(user.id, HASHER.hash(new), keep=keep)


def _check_email(email: str) -> str:
    if not is_email(email.strip()):
        raise FieldError("email", "must be an email address")
    return email.strip().lower()


def set_password(meta: MetaStore, user_id: str, password: str, email: str | None = None) -> int:
    """An admin sets a user's password (and email): every session of the user is revoked.
    KeyError("email") when another user has the email, KeyError("user") for no such user."""
    password = check_new_password(password)
    email = _check_email(email) if email is not None else None
    return store(meta).set_password(user_id, HASHER.hash(password), email=email)


def set_email(meta: MetaStore, user_id: str, email: str) -> None:
    """An admin sets the email a user signs in with (KeyError as `set_password`)."""
    if meta.set_user_email(user_id, _check_email(email)) is None:
        raise KeyError("user")


# -- one-time set-password links ------------------------------------------------------------------


def base_url(config: Config) -> str:
    """Where people reach trail: `public_url`, else this server's own address."""
    if config.public_url:
        return config.public_url
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(config.host, config.host)
    return f"http://{f'[{host}]' if ':' in host else host}:{config.port}"


def create_link(meta: MetaStore, config: Config, user_id: str) -> tuple[str, float]:
    """A one-time set-password link for the user (the token after `#`, so it never reaches a
    server log or a Referer) and when it expires (epoch seconds)."""
    token, expires = store(meta).create_link(user_id, config.password_link_lifetime_s)
    return f"{base_url(config)}/set-password#token={token}", expires


def use_link(ctx: Context, token: Any, password: Any, email: Any, ip: str) -> SignedIn:
    """Set a password with a link (once), and sign in. `email` is needed when the user has
    none yet: it is what the user signs in with."""
    _count_ip(ctx, ip)
    if not isinstance(token, str) or not token:
        raise FieldError("token", "required")
    password = check_new_password(password)
    email = _check_email(email) if email else None
    signins = store(ctx.meta)
    user = signins.link_user(token)
    if user is None:
        raise FieldError("token", BAD_LINK)
    if not email and not user.email:
        raise FieldError("email", "required: the account has no email yet, you sign in with it")
    try:
        user_id = signins.use_link(token, HASHER.hash(password), email)
    except KeyError:
        raise FieldError("email", "already in use") from None
    user = ctx.meta.get_user(user_id) if user_id else None
    if user is None:
        raise FieldError("token", BAD_LINK)
    session_token, session = signins.open_session(user.id, ctx.config.session_lifetime_s)
    return SignedIn(session_token, session, user)

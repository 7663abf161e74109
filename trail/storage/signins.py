"""Dashboard sign-in records in the meta env: password hashes, sessions and set-password links.

- `passwords`: user id -> {"hash": an Argon2id PHC string, "set_at": epoch seconds}
- `web_sessions`: SHA-256 of the session token -> {"user_id", "csrf", "created", "expires"}
- `password_links`: SHA-256 of the link token -> {"user_id", "expires"}

The tokens themselves live only in the cookie and in the link: a copy of the meta env signs
nobody in. Revoking a session deletes its record; a link is deleted in the same transaction
that sets the password with it, so it works once. Deleting a user takes all three with it
(trail.storage.cascade).
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass

from trail.storage.meta import MetaStore, Principal, User, hash_secret
from trail.storage.tables import Txn


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: whose it is, its CSRF token, and when it ends (epoch seconds)."""

    user_id: str
    csrf: str
    created: float
    expires: float


class SignInStore:
    """Passwords, dashboard sessions and one-time set-password links."""

    def __init__(self, meta: MetaStore) -> None:
        self.meta = meta
        tables = meta.tables
        self._passwords = tables["passwords"]
        self._sessions = tables["web_sessions"]
        self._links = tables["password_links"]
        self._settings = tables["settings"]

    def first_admin_id(self) -> str | None:
        """The admin made on the first start (the one the printed link is for)."""
        value = self._settings.get("admin_user")
        return str(value) if value else None

    # -- passwords ---------------------------------------------------------------------------

    def password_hash(self, user_id: str) -> str | None:
        rec = self._passwords.get(user_id)
        return str(rec["hash"]) if rec else None

    def set_password(
        self,
        user_id: str,
        password_hash: str,
        keep: str | None = None,
        email: str | None = None,
        txn: Txn | None = None,
    ) -> int:
        """Store a user's new password and revoke every session of the user but `keep` (a
        session token); with `email`, make that the user's email too. Returns the number of
        sessions revoked. KeyError("email") when another user has the email, KeyError("user")
        when the user is gone."""
        if txn is None:
            with self.meta.tables.write() as own:
                return self.set_password(user_id, password_hash, keep, email, own)
        if email is not None and self.meta.set_user_email(user_id, email, txn) is None:
            raise KeyError("user")
        if self.meta.tables["users"].get(user_id, txn) is None:
            raise KeyError("user")
        self._passwords.put(user_id, {"hash": password_hash, "set_at": time.time()}, txn)
        kept = hash_secret(keep) if keep else None
        revoked = [
            key
            for key, rec in self._sessions.scan(txn)
            if isinstance(rec, dict) and rec.get("user_id") == user_id and key != kept
        ]
        for key in revoked:
            self._sessions.delete(key, txn)
        return len(revoked)

    def replace_hash(self, user_id: str, password_hash: str) -> None:
        """The same password hashed with today's parameters (no session is revoked)."""
        self._passwords.update(user_id, lambda rec: {**rec, "hash": password_hash})

    # -- sessions ----------------------------------------------------------------------------

    def open_session(self, user_id: str, lifetime_s: float) -> tuple[str, WebSession]:
        """A new session for the user; returns its token (for the cookie) and the record."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        session = WebSession(user_id, secrets.token_urlsafe(32), now, now + lifetime_s)
        self._sessions.put(hash_secret(token), dataclasses.asdict(session))
        return token, session

    def session(self, token: str) -> WebSession | None:
        """The live session behind a token; None when unknown, revoked or expired."""
        rec = self._sessions.get(hash_secret(token)) if token else None
        if not isinstance(rec, dict) or rec["expires"] <= time.time():
            return None
        return WebSession(**rec)

    def principal(self, token: str) -> tuple[WebSession, Principal] | None:
        """The live session behind a token and its user as a principal, read together."""
        if not token:
            return None
        with self.meta.tables.read() as txn:
            rec = self._sessions.get(hash_secret(token), txn)
            if not isinstance(rec, dict) or rec["expires"] <= time.time():
                return None
            principal = self.meta.user_principal(rec["user_id"], txn)
        return (WebSession(**rec), principal) if principal is not None else None

    def close_session(self, token: str) -> bool:
        """Revoke one session (sign-out); whether it existed."""
        return self._sessions.delete(hash_secret(token)) if token else False

    # -- set-password links ------------------------------------------------------------------

    def create_link(self, user_id: str, lifetime_s: float) -> tuple[str, float]:
        """A one-time set-password token for the user; returns it and its expiry."""
        token = secrets.token_urlsafe(32)
        expires = time.time() + lifetime_s
        self._links.put(hash_secret(token), {"user_id": user_id, "expires": expires})
        return token, expires

    def link_user(self, token: str) -> User | None:
        """The user an unused, unexpired link is for (the link stays usable)."""
        rec = self._links.get(hash_secret(token)) if token else None
        if not isinstance(rec, dict) or rec["expires"] <= time.time():
            return None
        return self.meta.get_user(rec["user_id"])

    def use_link(self, token: str, password_hash: str, email: str | None) -> str | None:
        """Set the password (and email) with a link, and delete the link, in one transaction.
        Returns the user id; None when the link is unknown, used or expired. KeyError("email")
        when another user has the email (the link then stays usable)."""
        digest = hash_secret(token)
        with self.meta.tables.write() as txn:
            rec = self._links.get(digest, txn)
            if not isinstance(rec, dict) or rec["expires"] <= time.time():
                return None
            self._links.delete(digest, txn)
            try:
                self.set_password(rec["user_id"], password_hash, email=email, txn=txn)
            except KeyError as e:
                if e.args != ("user",):
                    raise  # leaving the block aborts: the link is still there
                return None  # a link of a deleted user: it goes
        return str(rec["user_id"])

    # -- housekeeping ------------------------------------------------------------------------

    def purge_expired(self, now: float | None = None) -> int:
        """Delete expired sessions and links; how many."""
        now = time.time() if now is None else now
        removed = 0
        with self.meta.tables.write() as txn:
            for table in (self._sessions, self._links):
                for key, rec in table.scan(txn):
                    if not isinstance(rec, dict) or rec.get("expires", 0) <= now:
                        table.delete(key, txn)
                        removed += 1
        return removed

"""Accounts, users and their recoverable API keys, beside the records `MetaStore` keeps.

TinyTrail lets an admin read a user's API key again (`GET /users/:id/api-key`), while the meta
store keeps only SHA-256 digests of secrets. So a TinyTrail key is *derived*, not stored:

    key = "tt_" + base64url(HMAC-SHA256(server_secret, seed))

The per-user random `seed` lives in the meta env (`user_keys` database); the 32-byte
`server_secret` lives in `<data_dir>/secrets/user-keys.secret` (mode 0600), outside the meta env.
A copy of the meta store alone (a backup, a leaked file) yields neither keys nor anything to test
guesses against beyond the usual digest; recovering a key needs both files, which is exactly the
admin's reach. Authentication still goes through the digest, like every other secret.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

import orjson

from trail.storage.meta import Account, MetaStore, Site, User, hash_secret, now_rfc3339

SECRET_FILE = Path("secrets") / "user-keys.secret"
_DBS = ("accounts", "users", "keys", "sites", "clients", "user_keys")


class AccountStore:
    """The account/user side of the meta env that `MetaStore` does not cover."""

    def __init__(self, meta: MetaStore, data_dir: Path) -> None:
        # Opening named databases takes a write transaction: done once, at route registration.
        self.meta = meta
        self.env = meta.env
        self.data_dir = Path(data_dir)
        self._db = {name: self.env.open_db(name.encode()) for name in _DBS}

    def _scan(self, txn: Any, db: str) -> list[tuple[str, dict[str, Any]]]:
        return [(k.decode(), orjson.loads(v)) for k, v in txn.cursor(db=self._db[db])]

    # -- accounts ----------------------------------------------------------------------------

    def list_accounts(self) -> list[Account]:
        with self.env.begin() as txn:
            accounts = [Account(**rec) for _, rec in self._scan(txn, "accounts")]
        return sorted(accounts, key=lambda a: (a.def_time, a.id))

    def delete_account(self, account_id: str) -> tuple[Account, list[Site]] | None:
        """Delete an account, its users (and their keys and clients) and its sites' records.

        Returns the account and the deleted sites, whose stored rows the caller removes.
        """
        account = self.meta.get_account(account_id)
        if account is None:
            return None
        for user in self.list_users():
            if user.account_id == account_id:
                self.delete_user(user.id)
        sites = [s for s in self.meta.all_sites() if s.account_id == account_id]
        for site in sites:
            self.meta.delete_site(site.id)
        with self.env.begin(write=True) as txn:
            txn.delete(account_id.encode(), db=self._db["accounts"])
        return account, sites

    # -- users -------------------------------------------------------------------------------

    def list_users(self) -> list[User]:
        with self.env.begin() as txn:
            users = [User(**rec) for _, rec in self._scan(txn, "users")]
        return sorted(users, key=lambda u: (u.def_time, u.id))

    def create_user(self, role: str, account_id: str, email: str | None) -> tuple[User, str]:
        """A user with a recoverable key; KeyError if the account does not exist."""
        seed = secrets.token_bytes(16)
        user, key = self.meta.create_user(role, account_id, email, key=self._derive(seed))
        with self.env.begin(write=True) as txn:
            txn.put(user.id.encode(), orjson.dumps({"seed": seed.hex()}), db=self._db["user_keys"])
        return user, key

    def user_key(self, user_id: str) -> str | None:
        """The user's API key; None for a key made without a seed (the first-start admin's) or
        when the server secret no longer derives it."""
        with self.env.begin() as txn:
            raw = txn.get(user_id.encode(), db=self._db["user_keys"])
        user = self.meta.get_user(user_id)
        if raw is None or user is None:
            return None
        key = self._derive(bytes.fromhex(orjson.loads(raw)["seed"]))
        # A lost or replaced secret file must not hand out a key that does not work.
        return key if hmac.compare_digest(hash_secret(key), user.key_hash) else None

    def delete_user(self, user_id: str) -> User | None:
        """Delete a user, its key digest and seed, and the Pirsch clients acting for it."""
        user = self.meta.get_user(user_id)
        if user is None:
            return None
        for client in self.meta.list_clients(user_id=user_id):
            self.meta.delete_client(client.id)
        with self.env.begin(write=True) as txn:
            txn.delete(user_id.encode(), db=self._db["users"])
            txn.delete(user.key_hash.encode(), db=self._db["keys"])
            txn.delete(user_id.encode(), db=self._db["user_keys"])
        return user

    # -- sites -------------------------------------------------------------------------------

    def save_site(self, site: Site) -> Site:
        """Store changed settings of an existing site (stamps mod_time)."""
        site = dataclasses.replace(site, mod_time=now_rfc3339())
        with self.env.begin(write=True) as txn:
            txn.put(site.id.encode(), orjson.dumps(dataclasses.asdict(site)), db=self._db["sites"])
        return site

    # -- key derivation ----------------------------------------------------------------------

    def _derive(self, seed: bytes) -> str:
        mac = hmac.new(self._server_secret(), b"trail user key\0" + seed, hashlib.sha256).digest()
        return "tt_" + base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def _server_secret(self) -> bytes:
        path = self.data_dir / SECRET_FILE
        try:
            return bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            pass
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
            f.flush()
            os.fsync(f.fileno())
        try:
            # link() fails if another worker won the race: everyone then reads the winner's secret.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        return bytes.fromhex(path.read_text().strip())

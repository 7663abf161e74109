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
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from trail.storage.meta import Account, MetaStore, Site, User, hash_secret

SECRET_FILE = Path("secrets") / "user-keys.secret"


class AccountStore:
    """The account/user side of the meta env that `MetaStore` does not cover: recoverable keys."""

    def __init__(self, meta: MetaStore, data_dir: Path) -> None:
        self.meta = meta
        self.env = meta.env
        self.data_dir = Path(data_dir)
        self._seeds = meta.tables["user_keys"]

    # -- accounts ----------------------------------------------------------------------------

    def list_accounts(self) -> list[Account]:
        return self.meta.all_accounts()

    def delete_account(self, account_id: str) -> tuple[Account, list[Site]] | None:
        """Delete an account with everything MetaStore.delete_account takes.

        Returns the account and the deleted sites, whose stored rows the caller removes.
        """
        removed = self.meta.delete_account(account_id)
        if removed is None:
            return None
        return removed.accounts[0], removed.sites

    # -- users -------------------------------------------------------------------------------

    def list_users(self) -> list[User]:
        return self.meta.all_users()

    def create_user(self, role: str, account_id: str, email: str | None) -> tuple[User, str]:
        """A user with a recoverable key; KeyError if the account does not exist."""
        seed = secrets.token_bytes(16)
        with self.meta.tables.write() as txn:
            user, key = self.meta.create_user(role, account_id, email, self._derive(seed), txn)
            self._seeds.put(user.id, {"seed": seed.hex()}, txn)
        return user, key

    def user_key(self, user_id: str) -> str | None:
        """The user's API key; None for a key made without a seed (the first-start admin's) or
        when the server secret no longer derives it."""
        rec = self._seeds.get(user_id)
        user = self.meta.get_user(user_id)
        if rec is None or user is None:
            return None
        key = self._derive(bytes.fromhex(rec["seed"]))
        # A lost or replaced secret file must not hand out a key that does not work.
        return key if hmac.compare_digest(hash_secret(key), user.key_hash) else None

    def delete_user(self, user_id: str) -> User | None:
        """Delete a user with everything MetaStore.delete_user takes (key, seed, clients, ...)."""
        removed = self.meta.delete_user(user_id)
        return removed.users[0] if removed is not None else None

    # -- sites -------------------------------------------------------------------------------

    def save_site(self, site: Site) -> Site:
        """Store changed settings of an existing site (stamps mod_time)."""
        return self.meta.save_site(site)

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

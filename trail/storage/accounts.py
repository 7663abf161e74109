"""Accounts, users and their recoverable API keys, beside the records `MetaStore` keeps.

TinyTrail lets an admin read a user's API key again (`GET /users/:id/api-key`), while the meta
store keeps only SHA-256 digests of secrets. So a TinyTrail key is *derived*, not stored:

    key = "tt_" + base64url(HMAC-SHA256(server_secret, seed))

The per-user random `seed` lives in the meta store (`user_keys` table). With LMDB the 32-byte
`server_secret` lives in `<data_dir>/secrets/user-keys.secret` (mode 0600), outside the meta env:
a copy of the meta store alone (a backup, a leaked file) yields neither keys nor anything to test
guesses against beyond the usual digest; recovering a key needs both files, which is exactly the
admin's reach. With PostgreSQL every node must derive the same keys, so the secret is the
`user_key_secret` setting of the shared store, made once by the first node that needs it (from
its own secret file if it has one, so a store migrated from one box keeps that box's keys); a
dump of that database is then as sensitive as the keys themselves. Authentication still goes
through the digest, like every other secret.
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
SECRET_SETTING = "user_key_secret"  # the `settings` key of the secret in a PostgreSQL store


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
        key = self._derive(seed)  # first: with PostgreSQL the secret may take a write of its own
        with self.meta.tables.write() as txn:
            user, key = self.meta.create_user(role, account_id, email, key, txn)
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
        if self.meta.backend == "postgres":
            return shared_secret(self.meta, self.data_dir)
        path = self.data_dir / SECRET_FILE
        found = file_secret(self.data_dir)
        if found is not None:
            return found
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


def file_secret(data_dir: Path) -> bytes | None:
    """The secret of `<data_dir>/secrets/user-keys.secret`; None when there is no such file."""
    try:
        return bytes.fromhex((Path(data_dir) / SECRET_FILE).read_text().strip())
    except FileNotFoundError:
        return None


def shared_secret(meta: MetaStore, data_dir: Path) -> bytes:
    """The secret every node of a shared meta store derives keys with; the first node to need
    it stores it (inside a write transaction: nodes racing to make it all read the winner's)."""
    settings = meta.tables["settings"]
    stored = settings.get(SECRET_SETTING)
    if stored is None:
        with meta.tables.write() as txn:
            stored = settings.get(SECRET_SETTING, txn)
            if stored is None:
                own = file_secret(data_dir)
                stored = own.hex() if own is not None else secrets.token_hex(32)
                settings.put(SECRET_SETTING, stored, txn)
    return bytes.fromhex(str(stored))

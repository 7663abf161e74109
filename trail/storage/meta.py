"""The meta store: accounts, users, sites, clients, keys and tokens in LMDB at <data_dir>/meta,
or in PostgreSQL (`meta_store = "postgres"`, trail.storage.meta_backend).

LMDB is opened with the Python `lmdb` package (never with heed: the two libraries must not share
an env); its lock file makes it safe for every worker and the `trail admin` CLI to open it at
once. Records are orjson documents keyed by id (trail.storage.tables); secrets are stored only
as SHA-256 digests.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import time
import uuid
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from trail.storage import cascade, meta_backend
from trail.storage.cascade import Removed
from trail.storage.models import (
    MEMBER_ROLES,
    ROLES,
    SCOPE_VALUES,
    SCOPES,
    WRITE_ONLY_SCOPES,
    Account,
    Client,
    Principal,
    Site,
    User,
    hash_secret,
    new_access_key,
    new_user_key,
    now_rfc3339,
    random_alnum,
)
from trail.storage.tables import Env, StorageError, Tables, Txn, forget, tables_of

__all__ = [
    "MEMBER_ROLES",
    "ROLES",
    "SCOPES",
    "SCOPE_VALUES",
    "WRITE_ONLY_SCOPES",
    "Account",
    "Client",
    "MetaStore",
    "Principal",
    "Removed",
    "Site",
    "StorageError",
    "User",
    "hash_secret",
    "new_access_key",
    "new_user_key",
    "now_rfc3339",
    "random_alnum",
]

TOKEN_TTL_SECONDS = 3600
_Dated = TypeVar("_Dated", Account, User, Site)


def _oldest_first(items: list[_Dated]) -> list[_Dated]:
    return sorted(items, key=lambda x: (x.def_time, x.id))


class MetaStore:
    """Accounts, users, sites and clients as typed records; every other kind is in `tables`."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.tables: Tables = tables_of(env)
        t = self.tables
        self._accounts, self._users, self._sites = t["accounts"], t["users"], t["sites"]
        self._clients, self._client_ids = t["clients"], t["client_ids"]
        self._keys, self._tokens, self._settings = t["keys"], t["tokens"], t["settings"]
        self._links, self._members, self._prefs = t["links"], t["members"], t["prefs"]

    @classmethod
    def open(cls, path: str | Path, stamp_ttl_ms: int = 0) -> MetaStore:
        """The meta store of <data_dir>/meta, whichever kind it is. `stamp_ttl_ms`: how stale
        `stamp()` may be on PostgreSQL (LMDB's is always exact)."""
        return cls(meta_backend.open_env(Path(path), stamp_ttl_ms / 1000))

    @property
    def backend(self) -> str:
        """Which store this is: lmdb or postgres."""
        return self.tables.backend

    def stamp(self) -> int:
        """A number that moves with every committed change (what the site directory is keyed by)."""
        return self.tables.stamp()

    def close(self) -> None:
        forget(self.env)
        self.env.close()

    def ping(self) -> None:
        """Raise StorageError (an OSError) if the env cannot serve a read transaction."""
        try:
            self._settings.get("admin_user")
        except lmdb.Error as e:  # PostgreSQL failures are StorageErrors already
            raise StorageError(str(e)) from e

    # -- accounts ----------------------------------------------------------------------------

    def create_account(
        self, name: str = "", organization: bool = False, user_id: str | None = None
    ) -> Account:
        """A new account; `organization` ones (Pirsch organizations) have an owner `user_id`."""
        stamp = now_rfc3339()
        account = Account(
            id=str(uuid.uuid4()),
            name=name,
            def_time=stamp,
            mod_time=stamp if organization else "",
            organization=organization,
            user_id=user_id,
        )
        self._accounts.put(account.id, dataclasses.asdict(account))
        return account

    def get_account(self, account_id: str) -> Account | None:
        rec = self._accounts.get(account_id)
        return Account(**rec) if rec else None

    def save_account(self, account: Account) -> Account:
        account = dataclasses.replace(account, mod_time=now_rfc3339())
        self._accounts.put(account.id, dataclasses.asdict(account))
        return account

    def all_accounts(self) -> list[Account]:
        """Every account and organization, oldest first."""
        return _oldest_first([Account(**rec) for _, rec in self._accounts.scan()])

    def delete_account(self, account_id: str) -> Removed | None:
        """Delete an account (or organization) with its users and sites (as delete_user and
        delete_site do), its members, invitations and themes; None if there is no such account."""
        with self.tables.write() as txn:
            if self._accounts.get(account_id, txn) is None:
                return None
            return cascade.delete(self.tables, txn, accounts=[account_id])

    # -- users -------------------------------------------------------------------------------

    def get_user(self, user_id: str) -> User | None:
        rec = self._users.get(user_id)
        return User(**rec) if rec else None

    def all_users(self) -> list[User]:
        """Every user, oldest first."""
        return _oldest_first([User(**rec) for _, rec in self._users.scan()])

    def count_users(self, account_id: str | None) -> int:
        """How many users belong to an account (the `member` count of /statistics/overview)."""
        return len(self._users.find(account_id=account_id))

    def create_user(
        self,
        role: str,
        account_id: str | None = None,
        email: str | None = None,
        key: str | None = None,
        txn: Txn | None = None,
    ) -> tuple[User, str]:
        """Create a user and return it with its API key (the only time the key is visible).

        `key`: a key made by the caller (TinyTrail derives recoverable keys); default random.
        `txn`: a write transaction to do it in (default: one of its own).
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if txn is None:
            with self.tables.write() as own:
                return self.create_user(role, account_id, email, key, own)
        key = key or new_user_key()
        if account_id is None:
            account_id = self._new_account_id(txn, role)
        elif self._accounts.get(account_id, txn) is None:
            raise KeyError(f"account {account_id} does not exist")
        user = User(str(uuid.uuid4()), account_id, role, email, hash_secret(key), now_rfc3339())
        self._users.put(user.id, dataclasses.asdict(user), txn)
        self._keys.put(user.key_hash, {"kind": "user", "id": user.id}, txn)
        self._auto_join(txn, user)
        return user, key

    def _auto_join(self, txn: Txn, user: User) -> None:
        """Make a new user a Viewer of every organization auto-joining its email's host name."""
        host = (user.email or "").rpartition("@")[2].lower()
        if not host:
            return
        for org_id, rec in self._accounts.scan(txn):
            if rec.get("organization") and host in rec.get("auto_join", []):
                member = {
                    "id": str(uuid.uuid4()),
                    "def_time": user.def_time,
                    "mod_time": user.def_time,
                    "user_id": user.id,
                    "domain_id": None,
                    "organization_id": org_id,
                    "role": "Viewer",
                }
                self._members.put(str(member["id"]), member, txn)

    def _new_account_id(self, txn: Txn, role: str) -> str:
        # Admins share the default account; a plain user gets an account of its own.
        if role == "admin":
            default = self._settings.get("default_account", txn)
            if default is not None:
                return str(default)
        account = Account(
            id=str(uuid.uuid4()), name="default" if role == "admin" else "", def_time=now_rfc3339()
        )
        self._accounts.put(account.id, dataclasses.asdict(account), txn)
        if role == "admin":
            self._settings.put("default_account", account.id, txn)
        return account.id

    def ensure_admin(self) -> tuple[User, str] | None:
        """On first start create the admin user; returns (user, key) once, None afterwards."""
        if self._settings.get("admin_user") is not None:
            return None
        with self.tables.write() as txn:
            # Another process may have won the race since: keep the first admin.
            if self._settings.get("admin_user", txn) is not None:
                return None
            user, key = self.create_user("admin", txn=txn)
            self._settings.put("admin_user", user.id, txn)
        return user, key

    def set_user_email(
        self, user_id: str, email: str | None, txn: Txn | None = None
    ) -> User | None:
        """Change a user's email (compared without case); KeyError("email") when another user
        has it, None when there is no such user. `txn`: a write transaction to do it in."""
        if txn is None:
            with self.tables.write() as own:
                return self.set_user_email(user_id, email, own)
        rec = self._users.get(user_id, txn)
        if rec is None:
            return None
        wanted = (email or "").lower()
        if wanted and any(
            (u.get("email") or "").lower() == wanted
            for k, u in self._users.scan(txn)
            if k != user_id
        ):
            raise KeyError("email")
        rec = {**rec, "email": email}
        self._users.put(user_id, rec, txn)
        return User(**rec)

    def users_by_email(self, email: str) -> list[User]:
        """The users with this email (compared without case), oldest first: one, unless
        `trail admin create-user` was given the same email twice."""
        wanted = email.strip().lower()
        found = [
            User(**rec)
            for _, rec in self._users.scan()
            if wanted and (rec.get("email") or "").lower() == wanted
        ]
        return _oldest_first(found)

    def get_prefs(self, user_id: str) -> dict[str, Any]:
        """The preferences a user has set ({} for none; defaults are the API's)."""
        return dict(self._prefs.get(user_id) or {})

    def update_prefs(self, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Set some preferences of a user; returns all it has set."""
        with self.tables.write() as txn:
            prefs = {**(self._prefs.get(user_id, txn) or {}), **changes}
            self._prefs.put(user_id, prefs, txn)
        return prefs

    def delete_user(self, user_id: str) -> Removed | None:
        """Delete a user with its key digest and seed, its user clients (with their keys and
        tokens), memberships, personal themes, preferences and the invitations to its email;
        sites, views and site clients it made stay and forget it. None if there is no such user."""
        with self.tables.write() as txn:
            if self._users.get(user_id, txn) is None:
                return None
            return cascade.delete(self.tables, txn, users=[user_id])

    # -- sites -------------------------------------------------------------------------------

    def create_site(self, site: Site) -> Site:
        """Store a new site; fills id, identification code and times. Raises KeyError on a taken subdomain."""
        stamp = now_rfc3339()
        site = dataclasses.replace(
            site,
            id=str(uuid.uuid4()),
            identification_code=random_alnum(32),
            def_time=stamp,
            mod_time=stamp,
        )
        with self.tables.write() as txn:
            if self._sites.find(txn, subdomain=site.subdomain):
                raise KeyError("subdomain")
            self._sites.put(site.id, dataclasses.asdict(site), txn)
        return site

    def get_site(self, site_id: str) -> Site | None:
        rec = self._sites.get(site_id)
        return Site(**rec) if rec else None

    def update_site(self, site_id: str, fields: dict[str, Any]) -> Site | None:
        """Change some fields of a site; KeyError(field) when a subdomain or custom domain is taken."""
        with self.tables.write() as txn:
            rec = self._sites.get(site_id, txn)
            if rec is None:
                return None
            for name in ("subdomain", "custom_domain"):
                value = fields.get(name)
                if value and any(
                    r["id"] != site_id for r in self._sites.find(txn, **{name: value})
                ):
                    raise KeyError(name)
            site = Site(**{**rec, **fields, "id": site_id, "mod_time": now_rfc3339()})
            self._sites.put(site_id, dataclasses.asdict(site), txn)
        return site

    def save_site(self, site: Site) -> Site:
        """Store changed settings of an existing site as they are (stamps mod_time)."""
        site = dataclasses.replace(site, mod_time=now_rfc3339())
        self._sites.put(site.id, dataclasses.asdict(site))
        return site

    def all_sites(self) -> list[Site]:
        """Every site, oldest first."""
        return _oldest_first([Site(**rec) for _, rec in self._sites.scan()])

    def list_sites_for(self, principal: Principal) -> list[Site]:
        return [s for s in self.all_sites() if principal.can_see(s)]

    def delete_site(self, site_id: str) -> Removed | None:
        """Delete a site and every record that points at it (clients with their keys and tokens,
        access links, goals, webhooks, members, ...: trail.storage.cascade); None if unknown."""
        with self.tables.write() as txn:
            if self._sites.get(site_id, txn) is None:
                return None
            return cascade.delete(self.tables, txn, sites=[site_id])

    def site_for_link(self, code: str) -> Site | None:
        """The site a read-only access link code opens, if any and not expired (`valid_until`)."""
        with self.tables.read() as txn:
            rec = self._links.get(code, txn)
            site = self._sites.get(rec["site_id"], txn) if rec else None
        if rec and rec.get("valid_until") and rec["valid_until"] <= now_rfc3339():
            return None  # both are fixed-width RFC3339 UTC strings, so text order is time order
        return Site(**site) if site else None

    def site_rules(self, site: Site) -> tuple[list[str], list[tuple[str, str]]]:
        """What ingestion enforces for a site: allowed hostnames (empty = any) and traffic
        filters as (type, filter). Records: `alternatives` {id, domain_id, hostname} and
        `filters` {id, domain_id, type, description, filter}; TinyTrail's excluded_ips are IP
        filters too."""
        with self.tables.read() as txn:
            alternatives = [
                r["hostname"] for r in self.tables["alternatives"].find(txn, domain_id=site.id)
            ]
            filters = [
                (r["type"], r["filter"])
                for r in self.tables["filters"].find(txn, domain_id=site.id)
            ]
        filters += [("ip", ip) for ip in getattr(site, "excluded_ips", None) or []]
        hostnames = (
            [] if site.settings.get("allow_any_hostname") else [site.hostname, *alternatives]
        )
        return hostnames, filters

    # -- clients, keys, tokens ---------------------------------------------------------------

    def create_client(
        self,
        type: str,
        domain_id: str | None,
        user_id: str | None,
        description: str,
        scopes: dict[str, str],
    ) -> tuple[Client, str]:
        """Create a client; returns it with its secret (pa_ key or oauth secret), shown once."""
        stamp = now_rfc3339()
        if type == "token":
            secret, public_id = new_access_key(), ""
        else:
            secret, public_id = random_alnum(64), random_alnum(32)
        client = Client(
            id=str(uuid.uuid4()),
            type=type,
            domain_id=domain_id,
            user_id=user_id,
            client_id=public_id,
            secret_hash=hash_secret(secret),
            description=description,
            scopes=scopes,
            def_time=stamp,
            mod_time=stamp,
        )
        with self.tables.write() as txn:
            self._clients.put(client.id, dataclasses.asdict(client), txn)
            if type == "token":
                self._keys.put(client.secret_hash, {"kind": "access_key", "id": client.id}, txn)
            else:
                self._client_ids.put(public_id, client.id, txn)
        return client, secret

    def get_client(self, client_id: str) -> Client | None:
        rec = self._clients.get(client_id)
        return Client(**rec) if rec else None

    def list_clients(
        self, domain_id: str | None = None, user_id: str | None = None
    ) -> list[Client]:
        clients = [Client(**rec) for _, rec in self._clients.scan()]
        if domain_id is not None:
            clients = [c for c in clients if c.domain_id == domain_id]
        if user_id is not None:
            clients = [c for c in clients if c.domain_id is None and c.user_id == user_id]
        return sorted(clients, key=lambda c: (c.def_time, c.id))

    def update_client(self, client: Client, description: str) -> Client:
        client = dataclasses.replace(client, description=description, mod_time=now_rfc3339())
        self._clients.put(client.id, dataclasses.asdict(client))
        return client

    def delete_client(self, client_id: str) -> bool:
        """Delete a client with its access key or its client id and tokens."""
        with self.tables.write() as txn:
            if self._clients.get(client_id, txn) is None:
                return False
            cascade.delete(self.tables, txn, clients=[client_id])
        return True

    def issue_token(self, public_id: str, secret: str) -> tuple[str, float] | None:
        """Exchange oauth client credentials for a bearer token valid one hour; None if wrong."""
        with self.tables.read() as txn:
            record_id = self._client_ids.get(public_id, txn)
            rec = self._clients.get(str(record_id), txn) if record_id else None
        if rec is None or not hmac.compare_digest(rec["secret_hash"], hash_secret(secret)):
            return None
        token = secrets.token_urlsafe(32)
        expires = time.time() + TOKEN_TTL_SECONDS
        self._tokens.put(hash_secret(token), {"client": rec["id"], "expires": expires})
        return token, expires

    def purge_expired_tokens(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self.tables.write() as txn:
            expired = [k for k, rec in self._tokens.scan(txn) if rec["expires"] <= now]
            for key in expired:
                self._tokens.delete(key, txn)
        return len(expired)

    def resolve_secret(self, secret: str) -> Principal | None:
        """The principal behind a user API key, a pa_ access key or an unexpired oauth token."""
        digest = hash_secret(secret)
        with self.tables.read() as txn:
            ref = self._keys.get(digest, txn)
            if ref is not None and ref["kind"] == "user":
                return self.user_principal(ref["id"], txn)
            if ref is not None:
                client = self._clients.get(ref["id"], txn)
                return self._client_principal(txn, "access_key", client)
            token = self._tokens.get(digest, txn)
            if token is None or token["expires"] <= time.time():
                return None
            client = self._clients.get(token["client"], txn)
            return self._client_principal(txn, "client", client)

    def user_principal(self, user_id: str, txn: Txn | None = None) -> Principal | None:
        """The principal of a user acting for itself (its API key, its dashboard session)."""
        if txn is None:
            with self.tables.read() as own:
                return self.user_principal(user_id, own)
        user = self._users.get(user_id, txn)
        if user is None:
            return None
        return Principal("user", User(**user), None, self._memberships(txn, user_id))

    def _client_principal(
        self, txn: Txn, kind: str, rec: dict[str, Any] | None
    ) -> Principal | None:
        if rec is None:
            return None
        client = Client(**rec)
        user = self._users.get(client.user_id, txn) if client.user_id else None
        if client.domain_id is None and user is None:
            return None  # a user client whose user is gone has no reach
        memberships = (
            self._memberships(txn, client.user_id)
            if user and client.user_id and client.domain_id is None
            else {}
        )
        return Principal(kind, User(**user) if user else None, client, memberships)

    def _memberships(self, txn: Txn, user_id: str) -> dict[str, str]:
        """A user's member records as {domain or organization id: role}."""
        return {
            rec.get("domain_id") or rec.get("organization_id") or "": rec["role"]
            for rec in self._members.find(txn, user_id=user_id)
        }

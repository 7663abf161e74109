"""The meta store: accounts, users, sites, clients, keys and tokens in LMDB at <data_dir>/meta.

Opened with the Python `lmdb` package (never with heed: the two libraries must not share an env).
LMDB's lock file makes it safe for every worker and the `trail admin` CLI to open it at once.
Records are orjson documents keyed by id; secrets are stored only as SHA-256 digests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import string
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lmdb
import orjson

SUBDBS = (
    "accounts",
    "users",
    "sites",
    "clients",
    "client_ids",
    "keys",
    "tokens",
    "links",
    "settings",
    "alternatives",
    "filters",
    # access helper: memberships, invitations, per-site snippets and views, themes, user prefs
    "members",
    "invitations",
    "snippets",
    "views",
    "themes",
    "prefs",
)
# Pirsch roles on a domain or organization, weakest first.
MEMBER_ROLES = ("Viewer", "Admin", "Owner")
MAP_SIZE = 4 << 30  # sparse file: LMDB only uses the pages it writes
TOKEN_TTL_SECONDS = 3600
ROLES = ("admin", "user")
SCOPES = ("hit", "event", "session", "statistics", "domains", "organizations", "themes", "billing")
# What each scope may hold, from the Pirsch client table: "" (none), "r" and/or "w".
SCOPE_VALUES = {
    "hit": ("", "w"),
    "event": ("", "w"),
    "session": ("", "w"),
    "statistics": ("", "r"),
    "domains": ("", "r", "w"),
    "organizations": ("", "r", "w"),
    "themes": ("", "r", "w"),
    "billing": ("", "r"),
}
WRITE_ONLY_SCOPES = ("hit", "event", "session")
_ALNUM = string.ascii_letters + string.digits


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def random_alnum(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def new_user_key() -> str:
    return "tt_" + secrets.token_urlsafe(32)


def new_access_key() -> str:
    """A write-only site key: "pa_" + 45 alphanumerics = 48 characters, as the SDKs expect."""
    return "pa_" + random_alnum(45)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class Account:
    """An account; `organization` ones are Pirsch organizations (owner `user_id`, members)."""

    id: str
    name: str
    def_time: str
    mod_time: str = ""
    user_id: str | None = None
    organization: bool = False
    auto_join: list[str] = field(default_factory=list)
    theme_id: str | None = None


@dataclass
class User:
    id: str
    account_id: str
    role: str
    email: str | None
    key_hash: str
    def_time: str


@dataclass
class Site:
    id: str
    hostname: str
    subdomain: str
    timezone: str = "UTC"
    identification_code: str = ""
    account_id: str | None = None
    user_id: str | None = None
    public: bool = False
    group_by_title: bool = False
    active_visitors_seconds: int = 600
    disable_scripts: bool = False
    display_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    # TinyTrail website settings: [{name, pattern}] matched against paths at query time, and
    # IPs/CIDR ranges whose traffic ingestion drops (site_rules hands them to the engine).
    content_groups: list[dict[str, str]] = field(default_factory=list)
    excluded_ips: list[str] = field(default_factory=list)
    custom_domain: str | None = None
    theme_id: str | None = None
    theme_settings: dict[str, Any] = field(default_factory=dict)
    def_time: str = ""
    mod_time: str = ""

    def to_pirsch(self, user_role: str = "Owner") -> dict[str, Any]:
        """The domain object of the Pirsch API."""
        return {
            "id": self.id,
            "def_time": self.def_time,
            "mod_time": self.mod_time,
            "user_id": self.user_id,
            "organization_id": self.account_id,
            "hostname": self.hostname,
            "subdomain": self.subdomain,
            "identification_code": self.identification_code,
            "public": self.public,
            "google_user_id": None,
            "google_user_email": None,
            "gsc_domain": None,
            "new_owner": None,
            "timezone": self.timezone,
            "group_by_title": self.group_by_title,
            "active_visitors_seconds": self.active_visitors_seconds,
            "disable_scripts": self.disable_scripts,
            "statistics_start": None,
            "imported_statistics": False,
            "metadata": self.metadata,
            "theme_id": self.theme_id,
            "theme": {},
            "custom_domain": self.custom_domain,
            "user_role": user_role,
            "settings": self.settings,
            "theme_settings": self.theme_settings,
            "display_name": self.display_name,
            "subscription_active": True,
        }


@dataclass
class Client:
    """A Pirsch API client: `oauth` (client_id + secret -> tokens) or `token` (a pa_ access key).

    `domain_id` set: a domain client, limited to that site. Otherwise a user client acting with
    the reach of `user_id`.
    """

    id: str
    type: str
    domain_id: str | None
    user_id: str | None
    client_id: str
    secret_hash: str
    description: str
    scopes: dict[str, str]
    def_time: str
    mod_time: str

    def to_pirsch(self, client_secret: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "def_time": self.def_time,
            "mod_time": self.mod_time,
            "domain_id": self.domain_id,
            "type": self.type,
            "client_id": self.client_id,
            "description": self.description,
        }
        if client_secret is not None:
            out["client_secret"] = client_secret
        for scope in SCOPES:
            out[f"scope_{scope}"] = self.scopes.get(scope, "")
        return out


@dataclass
class Principal:
    """Who is calling: a user (by API key), or a client (oauth token or pa_ access key)."""

    kind: str  # "user" | "client" | "access_key"
    user: User | None
    client: Client | None = None
    # The user's member records: domain or organization id -> role (Viewer/Admin/Owner).
    memberships: dict[str, str] = field(default_factory=dict)

    @property
    def role(self) -> str:
        return self.user.role if self.user else "user"

    @property
    def account_id(self) -> str | None:
        return self.user.account_id if self.user else None

    @property
    def domain_id(self) -> str | None:
        return self.client.domain_id if self.client else None

    def can_see(self, site: Site) -> bool:
        return self.site_role(site) is not None

    def site_role(self, site: Site) -> str | None:
        """The Pirsch role on `site` (Viewer/Admin/Owner), None when it is out of reach.

        A domain client acts as an Admin of its one site (its scopes limit it further); a
        trail admin owns every site; a user owns the sites of its account and holds the role of
        its membership of the site or of the site's organization otherwise."""
        if self.client is not None and self.client.domain_id is not None:
            return "Admin" if site.id == self.client.domain_id else None
        if self.user is None:
            return None
        if (
            self.user.role == "admin"
            or site.account_id == self.user.account_id
            or site.user_id == self.user.id
        ):
            return "Owner"
        roles = [self.memberships.get(k) for k in (site.id, site.account_id or "")]
        return max((r for r in roles if r), key=MEMBER_ROLES.index, default=None)

    def org_role(self, account: Account) -> str | None:
        """The role on an organization: trail admins and its owner own it, members by record."""
        if self.user is None or (self.client is not None and self.client.domain_id is not None):
            return None
        if self.user.role == "admin" or account.user_id == self.user.id:
            return "Owner"
        return self.memberships.get(account.id)

    def allows(self, scope: str, write: bool = False) -> bool:
        """Whether the principal holds `scope` ("r" or "w"; "w" when `write`). Users hold all."""
        if self.client is None:
            return True
        value = self.client.scopes.get(scope, "")
        return value == "w" if write else value in ("r", "w")


class MetaStore:
    def __init__(self, env: lmdb.Environment) -> None:
        self.env = env
        self._db = {name: env.open_db(name.encode()) for name in SUBDBS}

    @classmethod
    def open(cls, path: str | Path) -> MetaStore:
        Path(path).mkdir(parents=True, exist_ok=True)
        env = lmdb.open(str(path), map_size=MAP_SIZE, max_dbs=128, max_readers=512)
        return cls(env)

    def close(self) -> None:
        self.env.close()

    # -- low level ---------------------------------------------------------------------------

    def _get(self, txn: lmdb.Transaction, db: str, key: str) -> dict[str, Any] | None:
        raw = txn.get(key.encode(), db=self._db[db])
        return orjson.loads(raw) if raw is not None else None

    def _put(self, txn: lmdb.Transaction, db: str, key: str, value: Any) -> None:
        txn.put(key.encode(), orjson.dumps(value), db=self._db[db])

    def _delete(self, txn: lmdb.Transaction, db: str, key: str) -> None:
        txn.delete(key.encode(), db=self._db[db])

    def _scan(self, txn: lmdb.Transaction, db: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for key, raw in txn.cursor(db=self._db[db]):
            yield bytes(key).decode(), orjson.loads(raw)

    def ping(self) -> None:
        """Raise if the environment cannot serve a read transaction."""
        with self.env.begin() as txn:
            txn.get(b"admin_user", db=self._db["settings"])

    # -- accounts and users ------------------------------------------------------------------

    def create_account(self, name: str = "") -> Account:
        account = Account(id=str(uuid.uuid4()), name=name, def_time=now_rfc3339())
        with self.env.begin(write=True) as txn:
            self._put(txn, "accounts", account.id, dataclasses.asdict(account))
        return account

    def get_account(self, account_id: str) -> Account | None:
        with self.env.begin() as txn:
            rec = self._get(txn, "accounts", account_id)
        return Account(**rec) if rec else None

    def get_user(self, user_id: str) -> User | None:
        with self.env.begin() as txn:
            rec = self._get(txn, "users", user_id)
        return User(**rec) if rec else None

    def count_users(self, account_id: str | None) -> int:
        """How many users belong to an account (the `member` count of /statistics/overview)."""
        with self.env.begin() as txn:
            return sum(
                1 for _, rec in self._scan(txn, "users") if rec.get("account_id") == account_id
            )

    def create_user(
        self,
        role: str,
        account_id: str | None = None,
        email: str | None = None,
        key: str | None = None,
    ) -> tuple[User, str]:
        """Create a user and return it with its API key (the only time the key is visible).

        `key`: a key made by the caller (TinyTrail derives recoverable keys); default random.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        key = key or new_user_key()
        with self.env.begin(write=True) as txn:
            if account_id is None:
                account_id = self._new_account_id(txn, role)
            elif self._get(txn, "accounts", account_id) is None:
                raise KeyError(f"account {account_id} does not exist")
            user = User(str(uuid.uuid4()), account_id, role, email, hash_secret(key), now_rfc3339())
            self._put(txn, "users", user.id, dataclasses.asdict(user))
            self._put(txn, "keys", user.key_hash, {"kind": "user", "id": user.id})
            self._auto_join(txn, user)
        return user, key

    def _auto_join(self, txn: lmdb.Transaction, user: User) -> None:
        """Make a new user a Viewer of every organization auto-joining its email's host name."""
        host = (user.email or "").rpartition("@")[2].lower()
        if not host:
            return
        for org_id, rec in list(self._scan(txn, "accounts")):
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
                self._put(txn, "members", str(member["id"]), member)

    def _new_account_id(self, txn: lmdb.Transaction, role: str) -> str:
        # Admins share the default account; a plain user gets an account of its own.
        if role == "admin":
            default = self._get(txn, "settings", "default_account")
            if default is not None:
                return str(default)
        account = Account(
            id=str(uuid.uuid4()), name="default" if role == "admin" else "", def_time=now_rfc3339()
        )
        self._put(txn, "accounts", account.id, dataclasses.asdict(account))
        if role == "admin":
            self._put(txn, "settings", "default_account", account.id)
        return account.id

    def ensure_admin(self) -> tuple[User, str] | None:
        """On first start create the admin user; returns (user, key) once, None afterwards."""
        with self.env.begin() as txn:
            if self._get(txn, "settings", "admin_user") is not None:
                return None
        user, key = self.create_user("admin")
        with self.env.begin(write=True) as txn:
            # Another process may have raced us: keep the first admin, drop ours.
            if self._get(txn, "settings", "admin_user") is not None:
                self._delete(txn, "users", user.id)
                self._delete(txn, "keys", user.key_hash)
                return None
            self._put(txn, "settings", "admin_user", user.id)
        return user, key

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
        with self.env.begin(write=True) as txn:
            for _, rec in self._scan(txn, "sites"):
                if rec["subdomain"] == site.subdomain:
                    raise KeyError("subdomain")
            self._put(txn, "sites", site.id, dataclasses.asdict(site))
        return site

    def get_site(self, site_id: str) -> Site | None:
        with self.env.begin() as txn:
            rec = self._get(txn, "sites", site_id)
        return Site(**rec) if rec else None

    def update_site(self, site_id: str, fields: dict[str, Any]) -> Site | None:
        """Change some fields of a site; KeyError(field) when a subdomain or custom domain is taken."""
        with self.env.begin(write=True) as txn:
            rec = self._get(txn, "sites", site_id)
            if rec is None:
                return None
            for name in ("subdomain", "custom_domain"):
                value = fields.get(name)
                if value and any(
                    r.get(name) == value and k != site_id for k, r in self._scan(txn, "sites")
                ):
                    raise KeyError(name)
            site = Site(**{**rec, **fields, "id": site_id, "mod_time": now_rfc3339()})
            self._put(txn, "sites", site_id, dataclasses.asdict(site))
        return site

    def save_account(self, account: Account) -> Account:
        account = dataclasses.replace(account, mod_time=now_rfc3339())
        with self.env.begin(write=True) as txn:
            self._put(txn, "accounts", account.id, dataclasses.asdict(account))
        return account

    def delete_account(self, account_id: str) -> None:
        """Forget an account and the member records and invitations that point at it."""
        with self.env.begin(write=True) as txn:
            self._delete(txn, "accounts", account_id)
            for db in ("members", "invitations"):
                for key, rec in list(self._scan(txn, db)):
                    if rec.get("organization_id") == account_id:
                        self._delete(txn, db, key)

    def all_accounts(self) -> list[Account]:
        with self.env.begin() as txn:
            return [Account(**rec) for _, rec in self._scan(txn, "accounts")]

    def all_users(self) -> list[User]:
        with self.env.begin() as txn:
            return [User(**rec) for _, rec in self._scan(txn, "users")]

    def all_sites(self) -> list[Site]:
        with self.env.begin() as txn:
            return [Site(**rec) for _, rec in self._scan(txn, "sites")]

    def list_sites_for(self, principal: Principal) -> list[Site]:
        sites = [s for s in self.all_sites() if principal.can_see(s)]
        return sorted(sites, key=lambda s: (s.def_time, s.id))

    def delete_site(self, site_id: str) -> bool:
        """Delete a site with its clients, their keys and tokens, and its access links."""
        with self.env.begin(write=True) as txn:
            if self._get(txn, "sites", site_id) is None:
                return False
            self._delete(txn, "sites", site_id)
            for cid, rec in list(self._scan(txn, "clients")):
                if rec.get("domain_id") == site_id:
                    self._delete_client_txn(txn, Client(**rec))
            for code, rec in list(self._scan(txn, "links")):
                if rec.get("site_id") == site_id:
                    self._delete(txn, "links", code)
            self._delete_owned_records(txn, site_id)
        return True

    def _delete_owned_records(self, txn: lmdb.Transaction, site_id: str) -> None:
        """Every record with this `domain_id`, in every sub-database of the env: resources kept
        by other modules (goals, funnels, webhooks, reports, links, ...) go with their site."""
        names = [bytes(name) for name, _ in txn.cursor()]
        for name in names:
            db = self.env.open_db(name, txn=txn)
            doomed = []
            for key, raw in txn.cursor(db=db):
                try:
                    rec = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and rec.get("domain_id") == site_id:
                    doomed.append(bytes(key))
            for key in doomed:
                txn.delete(key, db=db)

    def site_for_link(self, code: str) -> Site | None:
        """The site a read-only access link code opens, if any and not expired (`valid_until`)."""
        with self.env.begin() as txn:
            rec = self._get(txn, "links", code)
            site = self._get(txn, "sites", rec["site_id"]) if rec else None
        if rec and rec.get("valid_until") and rec["valid_until"] <= now_rfc3339():
            return None  # both are fixed-width RFC3339 UTC strings, so text order is time order
        return Site(**site) if site else None

    def site_rules(self, site: Site) -> tuple[list[str], list[tuple[str, str]]]:
        """What ingestion enforces for a site: allowed hostnames (empty = any) and traffic
        filters as (type, filter). Records: `alternatives` {id, domain_id, hostname} and
        `filters` {id, domain_id, type, description, filter}; TinyTrail's excluded_ips are IP
        filters too."""
        with self.env.begin() as txn:
            alternatives = [
                r["hostname"]
                for _, r in self._scan(txn, "alternatives")
                if r.get("domain_id") == site.id
            ]
            filters = [
                (r["type"], r["filter"])
                for _, r in self._scan(txn, "filters")
                if r.get("domain_id") == site.id
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
        with self.env.begin(write=True) as txn:
            self._put(txn, "clients", client.id, dataclasses.asdict(client))
            if type == "token":
                self._put(txn, "keys", client.secret_hash, {"kind": "access_key", "id": client.id})
            else:
                self._put(txn, "client_ids", public_id, client.id)
        return client, secret

    def get_client(self, client_id: str) -> Client | None:
        with self.env.begin() as txn:
            rec = self._get(txn, "clients", client_id)
        return Client(**rec) if rec else None

    def list_clients(
        self, domain_id: str | None = None, user_id: str | None = None
    ) -> list[Client]:
        with self.env.begin() as txn:
            clients = [Client(**rec) for _, rec in self._scan(txn, "clients")]
        if domain_id is not None:
            clients = [c for c in clients if c.domain_id == domain_id]
        if user_id is not None:
            clients = [c for c in clients if c.domain_id is None and c.user_id == user_id]
        return sorted(clients, key=lambda c: (c.def_time, c.id))

    def update_client(self, client: Client, description: str) -> Client:
        client = dataclasses.replace(client, description=description, mod_time=now_rfc3339())
        with self.env.begin(write=True) as txn:
            self._put(txn, "clients", client.id, dataclasses.asdict(client))
        return client

    def delete_client(self, client_id: str) -> bool:
        with self.env.begin(write=True) as txn:
            rec = self._get(txn, "clients", client_id)
            if rec is None:
                return False
            self._delete_client_txn(txn, Client(**rec))
        return True

    def _delete_client_txn(self, txn: lmdb.Transaction, client: Client) -> None:
        self._delete(txn, "clients", client.id)
        if client.type == "token":
            self._delete(txn, "keys", client.secret_hash)
        else:
            self._delete(txn, "client_ids", client.client_id)
            for token_hash, rec in list(self._scan(txn, "tokens")):
                if rec.get("client") == client.id:
                    self._delete(txn, "tokens", token_hash)

    def issue_token(self, public_id: str, secret: str) -> tuple[str, float] | None:
        """Exchange oauth client credentials for a bearer token valid one hour; None if wrong."""
        with self.env.begin() as txn:
            record_id = self._get(txn, "client_ids", public_id)
            rec = self._get(txn, "clients", str(record_id)) if record_id else None
        if rec is None or not hmac.compare_digest(rec["secret_hash"], hash_secret(secret)):
            return None
        token = secrets.token_urlsafe(32)
        expires = time.time() + TOKEN_TTL_SECONDS
        with self.env.begin(write=True) as txn:
            self._put(txn, "tokens", hash_secret(token), {"client": rec["id"], "expires": expires})
        return token, expires

    def purge_expired_tokens(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self.env.begin(write=True) as txn:
            expired = [k for k, rec in self._scan(txn, "tokens") if rec["expires"] <= now]
            for key in expired:
                self._delete(txn, "tokens", key)
        return len(expired)

    def resolve_secret(self, secret: str) -> Principal | None:
        """The principal behind a user API key, a pa_ access key or an unexpired oauth token."""
        digest = hash_secret(secret)
        with self.env.begin() as txn:
            ref = self._get(txn, "keys", digest)
            if ref is not None and ref["kind"] == "user":
                user = self._get(txn, "users", ref["id"])
                return (
                    Principal("user", User(**user), None, self._memberships(txn, ref["id"]))
                    if user
                    else None
                )
            if ref is not None:
                client = self._get(txn, "clients", ref["id"])
                return self._client_principal(txn, "access_key", client)
            token = self._get(txn, "tokens", digest)
            if token is None or token["expires"] <= time.time():
                return None
            client = self._get(txn, "clients", token["client"])
            return self._client_principal(txn, "client", client)

    def _client_principal(
        self, txn: lmdb.Transaction, kind: str, rec: dict[str, Any] | None
    ) -> Principal | None:
        if rec is None:
            return None
        client = Client(**rec)
        user = self._get(txn, "users", client.user_id) if client.user_id else None
        if client.domain_id is None and user is None:
            return None  # a user client whose user is gone has no reach
        memberships = (
            self._memberships(txn, client.user_id)
            if user and client.user_id and client.domain_id is None
            else {}
        )
        return Principal(kind, User(**user) if user else None, client, memberships)

    def _memberships(self, txn: lmdb.Transaction, user_id: str) -> dict[str, str]:
        """A user's member records as {domain or organization id: role}."""
        out: dict[str, str] = {}
        for _, rec in self._scan(txn, "members"):
            if rec.get("user_id") == user_id:
                out[rec.get("domain_id") or rec.get("organization_id") or ""] = rec["role"]
        return out

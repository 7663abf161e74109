"""The records of the meta store as Python values: accounts, users, sites, clients, callers.

Each dataclass is stored as `dataclasses.asdict(...)` in its table (trail.storage.tables), so a
field added here needs a default: records written before it must still load.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Pirsch roles on a domain or organization, weakest first.
MEMBER_ROLES = ("Viewer", "Admin", "Owner")
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

    def to_pirsch(
        self, user_role: str = "Owner", *, imported_statistics: bool = False
    ) -> dict[str, Any]:
        """The domain object of the Pirsch API (`imported_statistics`: the site holds imported
        statistics, trail.services.sites.domain_record looks it up)."""

        def text_values(settings: dict[str, Any]) -> dict[str, str]:
            # The SDKs decode settings as a map of strings (the Go SDK's KeyValue fails on any
            # other value): other JSON values go out as JSON text ("true", "3").
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in settings.items()}

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
            "imported_statistics": imported_statistics,
            "metadata": self.metadata,
            "theme_id": self.theme_id or "",
            "theme": {},
            "custom_domain": self.custom_domain,
            "user_role": user_role,
            "settings": text_values(self.settings),
            "theme_settings": text_values(self.theme_settings),
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

"""Deleting accounts, users, sites and clients with every record that points at them.

A record points at a site by `domain_id` (or `site_id`, `website_id`), at an account by
`account_id` or `organization_id`, at a user by `user_id`, at a theme by `theme_id`, at a client
through `keys`, `tokens` and `client_ids`; preferences list site ids. Every sub-database of the
env is scanned, declared or not, so a kind added later goes with its site without a change here.

What points at a deleted thing goes with it when it belongs to it (a site's goals, a user's
memberships, password, dashboard sessions and personal themes, an organization's invitations)
and forgets it otherwise (the field becomes null, the id leaves the list): a site made by a
deleted user stays in its account, a site client keeps working for its site. One write
transaction does it all, and leaves a record of each deleted site in `deletions`, for the nodes
that keep its rows outside their data directory (trail.storage.deletion_log).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from trail.storage import deletion_log
from trail.storage.models import Account, Site, User
from trail.storage.tables import Tables, Txn

SITE_FIELDS = ("domain_id", "site_id", "website_id")
ACCOUNT_FIELDS = ("account_id", "organization_id")
# Kinds keyed by the id of a deleted thing, and which thing: they go with it.
KEYED_BY = {
    "accounts": "accounts",
    "users": "users",
    "user_keys": "users",
    "prefs": "users",
    "passwords": "users",
    "sites": "sites",
    "clients": "clients",
    "themes": "themes",
}
# Kinds whose records belong to the user in their `user_id`: they go with it.
USER_OWNED = ("members", "web_sessions", "password_links")
_DELETE = object()


@dataclass
class Removed:
    """What one deletion took out of the meta env, for the caller to clean up outside it:
    the sites' statistics (segments/*/site=<id>) and theme folders (themes/domain-<id>), and
    the deleted themes' folders (themes/<theme id>)."""

    accounts: list[Account] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)
    theme_ids: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # records deleted, by sub-database

    @property
    def site_ids(self) -> list[str]:
        return [s.id for s in self.sites]


@dataclass
class _Doomed:
    accounts: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    sites: set[str] = field(default_factory=set)
    clients: set[str] = field(default_factory=set)
    themes: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)  # invitations to these go too
    every: set[str] = field(default_factory=set)  # all the ids above


def delete(
    tables: Tables,
    txn: Txn,
    accounts: Iterable[str] = (),
    users: Iterable[str] = (),
    sites: Iterable[str] = (),
    clients: Iterable[str] = (),
) -> Removed:
    """Delete these (an account with its users and sites) and what points at them, in `txn`."""
    doomed = _expand(tables, txn, set(accounts), set(users), set(sites), set(clients))
    removed = Removed(
        accounts=[Account(**r) for r in _records(tables, "accounts", doomed.accounts, txn)],
        users=[User(**r) for r in _records(tables, "users", doomed.users, txn)],
        sites=[Site(**r) for r in _records(tables, "sites", doomed.sites, txn)],
        theme_ids=sorted(doomed.themes),
    )
    counts: Counter[str] = Counter()
    for table in tables.every(txn):
        for key, value in table.scan(txn):
            fate = _fate(table.name, key, value, doomed)
            if fate is _DELETE:
                table.delete(key, txn)
                counts[table.name] += 1
            elif fate is not value:
                table.put(key, fate, txn)
    for site in removed.sites:  # after the scan, which took the site's earlier deletion records
        deletion_log.record_site(tables, txn, site.id)
    removed.counts = dict(counts)
    return removed


def _records(tables: Tables, kind: str, ids: set[str], txn: Txn) -> list[dict[str, Any]]:
    found = (tables[kind].get(i, txn) for i in sorted(ids))
    return [r for r in found if r is not None]


def _expand(
    tables: Tables,
    txn: Txn,
    accounts: set[str],
    users: set[str],
    sites: set[str],
    clients: set[str],
) -> _Doomed:
    """Every id that goes: an account's users and sites, their clients and themes."""
    d = _Doomed(accounts=accounts, users=set(users), sites=set(sites), clients=set(clients))
    everyone = tables["users"].scan(txn)
    d.users |= {k for k, u in everyone if _hit(u.get("account_id"), accounts)}
    d.sites |= {k for k, s in tables["sites"].scan(txn) if _hit(s.get("account_id"), accounts)}
    for key, c in tables["clients"].scan(txn):
        # A site client belongs to its site (whoever made it); a user client to its user.
        site, user = c.get("domain_id"), c.get("user_id")
        if _hit(site, d.sites) or (not site and _hit(user, d.users)):
            d.clients.add(key)
    for key, t in tables["themes"].scan(txn):
        if _points_at(t, d.sites, d.accounts) or _hit(t.get("user_id"), d.users):
            d.themes.add(key)
    # An invitation is matched by email: it goes with the last user holding that address.
    gone = {_email(u) for k, u in everyone if k in d.users}
    d.emails = gone - {_email(u) for k, u in everyone if k not in d.users} - {""}
    d.every = d.accounts | d.users | d.sites | d.clients | d.themes
    return d


def _email(user: dict[str, Any]) -> str:
    return str(user.get("email") or "").lower()


def _points_at(rec: dict[str, Any], sites: set[str], accounts: set[str]) -> bool:
    return any(_hit(rec.get(f), sites) for f in SITE_FIELDS) or any(
        _hit(rec.get(f), accounts) for f in ACCOUNT_FIELDS
    )


def _hit(value: Any, ids: set[str]) -> bool:
    return isinstance(value, str) and value in ids


def _fate(kind: str, key: str, value: Any, d: _Doomed) -> Any:
    """_DELETE, the value unchanged (the same object), or the value without its references."""
    if kind in KEYED_BY and key in getattr(d, KEYED_BY[kind]):
        return _DELETE
    if kind == "settings":  # admin_user stays: it records that the first admin was made
        return _DELETE if key == "default_account" and _hit(value, d.accounts) else value
    if kind == "client_ids":
        return _DELETE if _hit(value, d.clients) else value
    if not isinstance(value, dict):
        return value
    if (
        (kind == "keys" and _hit(value.get("id"), d.users | d.clients))
        or (kind == "tokens" and _hit(value.get("client"), d.clients))
        or (kind in USER_OWNED and _hit(value.get("user_id"), d.users))
        or (kind == "invitations" and _hit(value.get("email"), d.emails))
        or _points_at(value, d.sites, d.accounts)
    ):
        return _DELETE
    return _forget(value, d)


def _forget(rec: dict[str, Any], d: _Doomed) -> dict[str, Any]:
    """`rec` without its references to deleted things (the same object when it has none)."""
    ids = d.every
    changes: dict[str, Any] = {}
    for name, value in rec.items():
        if name in ("user_id", "theme_id") and _hit(value, ids):
            changes[name] = None
        elif isinstance(value, list) and any(_hit(v, ids) for v in value):
            changes[name] = [v for v in value if not _hit(v, ids)]
    return {**rec, **changes} if changes else rec

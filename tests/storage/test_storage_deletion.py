"""Deleting a site, a user or an account leaves no record in the meta env that points at it.

A world holds every record kind, made through the stores; each case deletes one thing, then a
generic scan of every sub-database (read with plain lmdb, not through the record layer) checks
that no record names a deleted id and that every record which named none is still there."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from trail.storage import access_links
from trail.storage.accounts import AccountStore
from trail.storage.documents import records
from trail.storage.goals import goal_store
from trail.storage.meta import Account, MetaStore, Removed, Site, now_rfc3339

# Per-site documents, by kind: what the management API stores for a site.
SITE_DOCUMENTS = (
    "alternatives", "filters", "snippets", "email_reports", "webhooks", "short_links", "views",
)  # fmt: skip


@dataclass
class World:
    meta: MetaStore
    store: AccountStore
    ids: dict[str, str] = field(default_factory=dict)  # name -> id
    keys: dict[str, str] = field(default_factory=dict)  # user name -> API key


def _site(w: World, name: str, account: str, user: str) -> None:
    site = w.meta.create_site(
        Site(id="", hostname=f"{name}.example", subdomain=name, account_id=w.ids[account],
             user_id=w.ids[user])
    )  # fmt: skip
    w.ids[name] = site.id
    meta, sid, uid = w.meta, site.id, w.ids[user]
    w.meta.create_client("token", sid, uid, "key", {"hit": "w"})
    oauth, secret = w.meta.create_client("oauth", sid, uid, "app", {"statistics": "r"})
    assert w.meta.issue_token(oauth.client_id, secret)
    access_links.create(meta, sid, "link", None)
    hook = records(meta, "webhooks").create({"domain_id": sid, "event": "x", "active": True})
    records(meta, "webhook_outbox").create({"webhook_id": hook["id"], "domain_id": sid})
    for kind in SITE_DOCUMENTS:
        fields = {"domain_id": sid, "name": kind, "user_id": uid if kind == "views" else None}
        records(meta, kind).create(
            fields | ({"webhook_id": hook["id"]} if kind == "short_links" else {})
        )
    records(meta, "traffic_alerts").create({"domain_id": sid}, record_id=sid)
    goals = goal_store(meta)
    goals.save_goal({"domain_id": sid, "name": "g", "pattern": None})
    goals.save_funnel({"domain_id": sid, "name": "f", "steps": [{"name": "a", "filter": {}}]})
    theme = records(meta, "themes").create({"domain_id": sid, "organization_id": None,
                                            "user_id": None, "name": "t"})  # fmt: skip
    w.meta.update_site(sid, {"theme_id": theme["id"]})
    records(meta, "invitations").create(
        {"domain_id": sid, "organization_id": None, "email": "later@z.test", "role": "Viewer"}
    )


def _user(w: World, name: str, account: str, email: str) -> None:
    user, key = w.store.create_user("user", w.ids[account], email)
    w.ids[name], w.keys[name] = user.id, key
    client, secret = w.meta.create_client("oauth", None, user.id, "cli", {"statistics": "r"})
    assert w.meta.issue_token(client.client_id, secret)
    theme = records(w.meta, "themes").create(
        {"user_id": user.id, "organization_id": None, "domain_id": None, "name": "mine"}
    )
    w.ids[f"{name}_theme"] = theme["id"]


def _member(w: World, user: str, target: str, kind: str = "domain_id") -> None:
    fields = {"user_id": w.ids[user], "domain_id": None, "organization_id": None, "role": "Viewer"}
    records(w.meta, "members").create({**fields, kind: w.ids[target]})


def _invite(w: World, email: str, target: str, kind: str = "domain_id") -> None:
    fields = {"domain_id": None, "organization_id": None, "email": email, "role": "Viewer"}
    records(w.meta, "invitations").create({**fields, kind: w.ids[target]})


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    meta = MetaStore.open(tmp_path / "meta")
    w = World(meta, AccountStore(meta, tmp_path))
    admin = meta.ensure_admin()
    assert admin is not None
    w.ids["admin"] = admin[0].id
    w.ids["a1"], w.ids["a2"] = meta.create_account("one").id, meta.create_account("two").id
    _user(w, "u1", "a1", "U1@x.test")
    _user(w, "u2", "a1", "u2@x.test")
    _user(w, "u3", "a2", "u3@y.test")
    stamp = now_rfc3339()
    org = Account(id=str(uuid.uuid4()), name="org", def_time=stamp, organization=True,
                  user_id=w.ids["u1"])  # fmt: skip
    w.ids["org"] = meta.save_account(org).id
    _site(w, "s1", "a1", "u1")
    _site(w, "s2", "a1", "u2")
    _site(w, "s3", "a2", "u3")
    _site(w, "s4", "a2", "u1")  # made by u1 in another account: outlives u1
    _site(w, "s5", "org", "u3")
    org_theme = records(meta, "themes").create(
        {"organization_id": w.ids["org"], "user_id": None, "domain_id": None, "name": "o"}
    )
    meta.save_account(dataclasses.replace(org, theme_id=org_theme["id"]))
    meta.update_site(w.ids["s3"], {"theme_id": w.ids["u1_theme"]})
    _member(w, "u1", "s3")
    _member(w, "u3", "s1")
    _member(w, "u2", "org", "organization_id")
    _member(w, "u3", "org", "organization_id")
    _invite(w, "u1@x.test", "s3")
    _invite(w, "u3@y.test", "s2")
    _invite(w, "new@z.test", "org", "organization_id")
    for user in ("u1", "u2", "u3"):
        meta.update_prefs(w.ids[user], {"favorite_domains": [w.ids["s1"], w.ids["s3"]],
                                        "pinned_domains": [w.ids["s5"]], "language": "en"})  # fmt: skip
    yield w
    meta.close()


def dump(meta: MetaStore) -> dict[tuple[str, str], Any]:
    """Every record of every sub-database, read with plain lmdb."""
    out: dict[tuple[str, str], Any] = {}
    env = meta.env
    with env.begin() as txn:
        names = [bytes(k) for k, _ in txn.cursor()]
        for name in names:
            db = env.open_db(name, txn=txn, create=False)
            for key, raw in txn.cursor(db=db):
                out[(name.decode(), bytes(key).decode())] = orjson.loads(raw)
    return out


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def naming(records_: dict[tuple[str, str], Any], ids: set[str]) -> list[tuple[str, str]]:
    """The records whose key or any value names one of `ids` (the first admin marker aside)."""
    return [
        (kind, key)
        for (kind, key), value in records_.items()
        if (kind, key) != ("settings", "admin_user")
        and (key in ids or any(s in ids for s in strings(value)))
    ]


CASES: dict[str, tuple[Callable[[World], Removed | None], list[str], list[str]]] = {
    # name: (delete, the sites it takes, the users it takes)
    "site": (lambda w: w.meta.delete_site(w.ids["s1"]), ["s1"], []),
    "user": (lambda w: w.meta.delete_user(w.ids["u1"]), [], ["u1"]),
    "account": (lambda w: w.meta.delete_account(w.ids["a1"]), ["s1", "s2"], ["u1", "u2"]),
    "organization": (lambda w: w.meta.delete_account(w.ids["org"]), ["s5"], []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_deletion_leaves_nothing_pointing_at_what_went(world: World, case: str) -> None:
    delete, sites, users = CASES[case]
    before = dump(world.meta)
    removed = delete(world)
    after = dump(world.meta)
    assert removed is not None
    assert sorted(removed.site_ids) == sorted(world.ids[s] for s in sites)
    assert sorted(u.id for u in removed.users) == sorted(world.ids[u] for u in users)
    gone = {k for k in before if k not in after}
    assert sum(removed.counts.values()) == len(gone)
    # Everything that went, by key and by id, is named by no record that stayed, but for the
    # record of each deleted site in the deletions log (trail.storage.deletion_log).
    gone_ids = {key for _, key in gone} | {
        before[k]["id"] for k in gone if isinstance(before[k], dict) and "id" in before[k]
    }
    log = {("deletions", f"site={world.ids[s]}") for s in sites}
    assert set(after) - set(before) == log
    assert set(naming(after, gone_ids)) == log
    # Every record that named nothing that went is still there, unchanged.
    untouched = set(before) - set(naming(before, gone_ids))
    assert {k: after.get(k) for k in untouched} == {k: before[k] for k in untouched}
    assert set(removed.theme_ids) == {before[k]["id"] for k in gone if k[0] == "themes"}


def test_site_deletion_takes_every_kind_of_site_record(world: World) -> None:
    before = dump(world.meta)
    removed = world.meta.delete_site(world.ids["s1"])
    assert removed is not None
    kinds = {"sites", "clients", "client_ids", "keys", "tokens", "links", "webhook_outbox",
             "traffic_alerts", "goals", "funnels", "themes", "members", "invitations",
             *SITE_DOCUMENTS}  # fmt: skip
    assert set(removed.counts) == kinds
    assert world.meta.delete_site(world.ids["s1"]) is None
    # Preferences keep the other sites.
    prefs = world.meta.get_prefs(world.ids["u2"])
    assert prefs["favorite_domains"] == [world.ids["s3"]] and prefs["language"] == "en"
    assert len(dump(world.meta)) < len(before)


def test_user_deletion_keeps_what_belongs_to_sites(world: World) -> None:
    meta, ids = world.meta, world.ids
    removed = meta.delete_user(ids["u1"])
    assert removed is not None and removed.theme_ids == [ids["u1_theme"]]
    assert meta.resolve_secret(world.keys["u1"]) is None
    assert world.store.user_key(ids["u1"]) is None
    assert meta.get_prefs(ids["u1"]) == {}
    # The site u1 made elsewhere stays in its account, as do its site clients and views.
    s4 = meta.get_site(ids["s4"])
    assert s4 is not None and s4.user_id is None
    assert [c.user_id for c in meta.list_clients(domain_id=ids["s4"])] == [None, None]
    assert [v["user_id"] for v in records(meta, "views").find(domain_id=ids["s4"])] == [None]
    # The theme s3 used is gone, so s3 has none; the organization u1 owned has no owner.
    assert meta.get_site(ids["s3"]).theme_id is None  # type: ignore[union-attr]
    assert meta.get_account(ids["org"]).user_id is None  # type: ignore[union-attr]
    # The invitation to u1's email went (its email matched whatever the case).
    assert records(meta, "invitations").find(domain_id=ids["s3"], email="u1@x.test") == []
    assert meta.delete_user(ids["u1"]) is None


def test_account_deletion_forgets_the_default_account_setting(world: World) -> None:
    meta = world.meta
    admin = meta.get_user(world.ids["admin"])
    assert admin is not None
    removed = meta.delete_account(admin.account_id)
    assert removed is not None and [u.id for u in removed.users] == [world.ids["admin"]]
    user, _ = meta.create_user("admin")  # a new default account, not the deleted one
    assert meta.get_account(user.account_id) is not None


def test_an_invitation_stays_while_another_user_has_the_email(world: World) -> None:
    meta = world.meta
    twin, _ = meta.create_user("user", world.ids["a2"], "u1@X.test")
    meta.delete_user(world.ids["u1"])
    assert [i["email"] for i in records(meta, "invitations").find(email="u1@x.test")] == [
        "u1@x.test"
    ]
    meta.delete_user(twin.id)
    assert records(meta, "invitations").find(email="u1@x.test") == []


def test_client_deletion_takes_its_keys_and_tokens(world: World) -> None:
    meta = world.meta
    client, secret = meta.create_client("oauth", world.ids["s2"], None, "c", {})
    token, _ = meta.issue_token(client.client_id, secret) or ("", 0)
    assert meta.resolve_secret(token) is not None
    key_client, key = meta.create_client("token", world.ids["s2"], None, "k", {"hit": "w"})
    assert meta.resolve_secret(key) is not None
    before = dump(meta)
    assert meta.delete_client(client.id) and meta.delete_client(key_client.id)
    assert not meta.delete_client(client.id)
    assert meta.resolve_secret(token) is None and meta.resolve_secret(key) is None
    assert len(before) - len(dump(meta)) == 5  # two clients, a client id, a token, a key

"""The record layer (trail.storage.tables) and the MetaStore methods built on it, on real LMDB."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb
import orjson
import pytest

from trail.storage.documents import records
from trail.storage.goals import goal_store
from trail.storage.meta import MetaStore, Site, StorageError, hash_secret
from trail.storage.tables import tables_of


@pytest.fixture
def meta(tmp_path: Path) -> Iterator[MetaStore]:
    store = MetaStore.open(tmp_path / "meta")
    yield store
    store.close()


def test_table_reads_and_writes_in_its_own_or_a_given_transaction(meta: MetaStore) -> None:
    t = meta.tables["snippets"]
    t.put("b", {"id": "b", "domain_id": "d1"})
    with meta.tables.write() as txn:
        t.put("a", {"id": "a", "domain_id": "d2"}, txn)
        t.put("c", "plain", txn)
        assert t.get("a", txn) == {"id": "a", "domain_id": "d2"}
    assert [k for k, _ in t.scan()] == ["a", "b", "c"]
    assert t.find(domain_id="d1") == [{"id": "b", "domain_id": "d1"}]
    match = {"domain_id": "d2"}  # a field named `txn` would be matched too: txn is positional
    assert t.find(**match)[0]["id"] == "a"
    assert [r["id"] for r in t.find()] == ["a", "b"]  # a plain value is not a document
    assert t.update("b", lambda r: {**r, "x": 1}) == {"id": "b", "domain_id": "d1", "x": 1}
    assert t.update("missing", lambda r: r) is None and t.get("missing") is None
    assert t.update("a", lambda r: None) is None and t.get("a") is None
    assert t.delete("c") and not t.delete("c") and not t.delete("")
    assert t.get("") is None


def test_a_write_transaction_lands_whole_or_not_at_all(meta: MetaStore) -> None:
    users, keys = meta.tables["views"], meta.tables["filters"]
    with pytest.raises(RuntimeError), meta.tables.write() as txn:
        users.put("u", {"id": "u"}, txn)
        keys.put("k", {"id": "k"}, txn)
        raise RuntimeError("half way")
    assert users.get("u") is None and keys.get("k") is None


def test_tables_are_opened_once_per_env_and_undeclared_kinds_work(meta: MetaStore) -> None:
    assert tables_of(meta.env) is meta.tables
    assert records(meta, "goals").table is meta.tables["goals"]
    assert goal_store(meta).tables is goal_store(meta.env).tables is meta.tables
    later = meta.tables["added_later"]
    later.put("x", {"id": "x", "domain_id": "gone"})
    with meta.tables.read() as txn:
        assert "added_later" in [t.name for t in meta.tables.every(txn)]


def test_cascade_reaches_kinds_it_does_not_know(meta: MetaStore) -> None:
    site = meta.create_site(Site(id="", hostname="a.example", subdomain="a"))
    later = meta.tables["added_later"]
    later.put("x", {"id": "x", "website_id": site.id})
    later.put("y", {"id": "y", "website_id": "another"})
    removed = meta.delete_site(site.id)
    assert removed is not None and removed.counts == {"sites": 1, "added_later": 1}
    assert [k for k, _ in later.scan()] == ["y"]


def test_documents_keep_ids_and_times(meta: MetaStore) -> None:
    store = records(meta, "views")
    a = store.create({"domain_id": "d", "name": "a"})
    b = store.create({"domain_id": "d", "name": "b"}, record_id="fixed")
    assert len(a["id"]) == 36 and b["id"] == "fixed" and a["def_time"] == a["mod_time"]
    assert [r["name"] for r in store.find(domain_id="d")] == ["a", "b"]
    merged = store.merge("fixed", {"name": "c"}, when=lambda r: r["name"] == "b")
    assert merged is not None and merged["name"] == "c" and merged["def_time"] == b["def_time"]
    assert store.merge("fixed", {"name": "d"}, when=lambda r: False)["name"] == "c"  # type: ignore[index]
    assert store.update("fixed", lambda r: None) is None and store.get("fixed") is None
    with meta.tables.write() as txn:
        store.create({"domain_id": "e"}, record_id="in-txn", txn=txn)
        assert store.find(txn, domain_id="e")[0]["id"] == "in-txn"
    assert store.delete("in-txn") and store.get("in-txn") is None
    assert len(records(meta, "short_links").create({})["id"]) == 10


def test_stored_bytes_are_what_they_always_were(meta: MetaStore) -> None:
    """Existing data dirs must read the same: the key is the id, the value orjson of asdict."""
    user, key = meta.create_user("user", email="a@b.test")
    site = meta.create_site(Site(id="", hostname="h.example", subdomain="h"))
    env = meta.env
    with env.begin() as txn:
        raw_user = txn.get(user.id.encode(), db=env.open_db(b"users", txn=txn, create=False))
        raw_site = txn.get(site.id.encode(), db=env.open_db(b"sites", txn=txn, create=False))
        raw_key = txn.get(hash_secret(key).encode(), db=env.open_db(b"keys", txn=txn, create=False))
    assert raw_user == orjson.dumps(dataclasses.asdict(user))
    assert raw_site == orjson.dumps(dataclasses.asdict(site))
    assert raw_key is not None and orjson.loads(raw_key) == {"kind": "user", "id": user.id}


def test_a_data_dir_written_before_reads_the_same(tmp_path: Path) -> None:
    """Records put with plain lmdb the way earlier versions did are read by the store."""
    env = lmdb.open(str(tmp_path / "meta"), map_size=1 << 24, max_dbs=128)
    user: dict[str, Any] = {"id": "u1", "account_id": "a1", "role": "user", "email": None,
            "key_hash": hash_secret("tt_old"), "def_time": "2024-01-01T00:00:00.000000Z"}  # fmt: skip
    with env.begin(write=True) as txn:
        for name, key, value in (
            ("accounts", "a1", {"id": "a1", "name": "old", "def_time": user["def_time"]}),
            ("users", "u1", user),
            ("keys", user["key_hash"], {"kind": "user", "id": "u1"}),
            ("settings", "default_account", "a1"),
            ("prefs", "u1", {"language": "de"}),
        ):
            txn.put(key.encode(), orjson.dumps(value), db=env.open_db(name.encode(), txn=txn))
    env.close()
    meta = MetaStore.open(tmp_path / "meta")
    try:
        principal = meta.resolve_secret("tt_old")
        assert principal is not None and principal.user is not None
        assert principal.user.account_id == "a1" and meta.get_account("a1").name == "old"  # type: ignore[union-attr]
        assert meta.get_prefs("u1") == {"language": "de"}
        admin, _ = meta.create_user("admin")
        assert admin.account_id == "a1"  # the stored default account
    finally:
        meta.close()


def test_user_email_is_unique_without_case(meta: MetaStore) -> None:
    a, _ = meta.create_user("user", email="a@b.test")
    b, _ = meta.create_user("user", email="b@b.test")
    with pytest.raises(KeyError, match="email"):
        meta.set_user_email(b.id, "A@B.test")
    assert meta.set_user_email(a.id, "A@b.test").email == "A@b.test"  # type: ignore[union-attr]
    assert meta.get_user(a.id).email == "A@b.test"  # type: ignore[union-attr]
    assert meta.set_user_email("nobody", "c@b.test") is None


def test_prefs_merge(meta: MetaStore) -> None:
    assert meta.get_prefs("u") == {}
    assert meta.update_prefs("u", {"language": "de"}) == {"language": "de"}
    assert meta.update_prefs("u", {"full_width": True}) == {"language": "de", "full_width": True}
    assert meta.get_prefs("u") == {"language": "de", "full_width": True}


def test_ping_on_a_closed_store_raises_an_os_error(tmp_path: Path) -> None:
    store = MetaStore.open(tmp_path / "meta")
    store.ping()
    store.close()
    with pytest.raises(StorageError) as raised:
        store.ping()
    assert isinstance(raised.value, OSError)

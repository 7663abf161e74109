"""Sign-in records (trail.storage.signins) on real LMDB: digests only, expiry, single-use links,
revocation, and what deleting a user takes with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trail.storage.meta import MetaStore, hash_secret
from trail.storage.signins import SignInStore


@pytest.fixture
def meta(tmp_path: Path) -> Iterator[MetaStore]:
    store = MetaStore.open(tmp_path / "meta")
    yield store
    store.close()


def test_only_digests_of_tokens_are_stored(meta: MetaStore) -> None:
    store = SignInStore(meta)
    user, _ = meta.create_user("user", email="a@example.com")
    token, session = store.open_session(user.id, 60)
    link, _ = store.create_link(user.id, 60)
    stored = [k for name in ("web_sessions", "password_links") for k, _ in meta.tables[name].scan()]
    assert stored == [hash_secret(token), hash_secret(link)]
    raw = b"".join(bytes(v) for _, v in meta.env.begin().cursor(db=meta.tables["web_sessions"].db))
    assert token.encode() not in raw and session.csrf.encode() in raw
    found = store.principal(token)
    assert found is not None and found[1].user is not None and found[1].user.id == user.id


def test_expired_sessions_and_links_are_gone(meta: MetaStore) -> None:
    store = SignInStore(meta)
    user, _ = meta.create_user("user")
    live, _ = store.open_session(user.id, 60)
    dead, _ = store.open_session(user.id, -1)
    old_link, _ = store.create_link(user.id, -1)
    assert store.session(live) is not None and store.session(dead) is None
    assert store.principal(dead) is None and store.link_user(old_link) is None
    assert store.use_link(old_link, "hash", None) is None
    assert store.purge_expired() == 2 and store.session(live) is not None


def test_a_link_sets_the_password_once(meta: MetaStore) -> None:
    store = SignInStore(meta)
    meta.create_user("user", email="taken@example.com")
    user, _ = meta.create_user("user")
    link, _ = store.create_link(user.id, 60)
    with pytest.raises(KeyError):
        store.use_link(link, "hash-1", "taken@example.com")
    assert store.link_user(link) is not None  # a refused email leaves the link usable
    assert store.use_link(link, "hash-2", "mine@example.com") == user.id
    assert store.password_hash(user.id) == "hash-2"
    assert meta.get_user(user.id).email == "mine@example.com"  # type: ignore[union-attr]
    assert store.use_link(link, "hash-3", None) is None and store.password_hash(user.id) == "hash-2"


def test_a_new_password_revokes_all_sessions_but_the_kept_one(meta: MetaStore) -> None:
    store = SignInStore(meta)
    user, _ = meta.create_user("user")
    other, _ = meta.create_user("user")
    kept, _ = store.open_session(user.id, 60)
    gone, _ = store.open_session(user.id, 60)
    others, _ = store.open_session(other.id, 60)
    assert store.set_password(user.id, "h", keep=kept) == 1
    assert store.session(kept) and not store.session(gone) and store.session(others)
    assert store.set_password(user.id, "h2") == 1 and not store.session(kept)
    with pytest.raises(KeyError):
        store.set_password("no-such-user", "h")


def test_deleting_a_user_takes_its_password_sessions_and_links(meta: MetaStore) -> None:
    store = SignInStore(meta)
    user, _ = meta.create_user("user")
    stays, _ = meta.create_user("user")
    store.set_password(user.id, "h")
    store.set_password(stays.id, "h")
    token, _ = store.open_session(user.id, 60)
    kept, _ = store.open_session(stays.id, 60)
    store.create_link(user.id, 60)
    removed = meta.delete_user(user.id)
    assert removed is not None
    assert {k: removed.counts.get(k) for k in ("passwords", "web_sessions", "password_links")} == {
        "passwords": 1,
        "web_sessions": 1,
        "password_links": 1,
    }
    assert store.password_hash(user.id) is None and store.session(token) is None
    assert store.password_hash(stays.id) == "h" and store.session(kept) is not None

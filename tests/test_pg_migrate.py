"""`trail migrate postgres` (trail.storage.pg_migrate) and the TinyTrail key secret shared by the
nodes of one PostgreSQL meta store (trail.storage.accounts), on a real PostgreSQL server and
real trail servers."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.postgres import PostgresCluster
from tests.server import Reply, TrailServer, free_port, request
from trail.storage import meta_backend
from trail.storage.accounts import SECRET_FILE, SECRET_SETTING, AccountStore, shared_secret
from trail.storage.meta import MetaStore
from trail.storage.pg import PgEnv
from trail.storage.pg_migrate import MigrateError, migrate


def trail(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trail", *argv],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def migrate_cli(data_dir: Path, url: str) -> dict[str, Any]:
    done = trail("migrate", "postgres", "--data-dir", str(data_dir), "--url", url)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def ok(r: Reply, status: int = 200) -> Any:
    assert r.status == status, r.body
    body = r.json()
    return body["data"] if isinstance(body, dict) and "data" in body else body


def postgres_env(url: str) -> dict[str, str]:
    return {"TRAIL_META_STORE": "postgres", "TRAIL_POSTGRES_URL": url}


def records(url: str) -> dict[tuple[str, str], str]:
    env = PgEnv.open(url)
    try:
        rows = env.run(lambda c: c.execute("SELECT kind, key, value::text FROM records").fetchall())
    finally:
        env.close()
    return {(kind, key): text for kind, key, text in rows}


def fill(s: TrailServer) -> dict[str, Any]:
    """Records of most kinds, made through the API: a site with an access key, a goal and a
    funnel, a TinyTrail account and user with a recoverable key and a dashboard password."""
    site, access_key = s.create_site("migrate.example")
    goal = {"domain_id": site, "name": "Pricing", "path_pattern": "/pricing"}
    assert s.call("POST", "/api/v1/goal", goal, key=s.admin_key).status == 200
    account = ok(s.call("POST", "/api/v1/accounts", {"name": "moved"}, key=s.admin_key), 201)
    body = {"account_id": account["id"], "role": "user", "email": "moved@migrate.example"}
    user = ok(s.call("POST", "/api/v1/users", body, key=s.admin_key), 201)
    r = s.call("PUT", "/api/v1/user/password", {"password": "moved password 1"}, key=user["apiKey"])
    assert r.status == 200, r.body
    return {"site": site, "access_key": access_key, "user": user}


def sign_in(s: TrailServer, email: str, password: str) -> int:
    body = {"email": email, "password": password}
    return request("POST", s.url + "/api/v1/auth/session", body).status


def check_served(s: TrailServer, admin_key: str, made: dict[str, Any]) -> None:
    """What `fill` made answers on `s` as it did where it was made."""
    site, user = made["site"], made["user"]
    domains = ok(s.call("GET", "/api/v1/domain", key=admin_key))
    assert [d["hostname"] for d in domains if d["id"] == site] == ["migrate.example"]
    goals = ok(s.call("GET", f"/api/v1/goal?id={site}", key=admin_key))
    assert [(g["name"], g["path_pattern"]) for g in goals] == [("Pricing", "/pricing")]
    again = ok(s.call("GET", f"/api/v1/users/{user['id']}/api-key", key=admin_key))
    assert again == {"id": user["id"], "apiKey": user["apiKey"]}
    assert ok(s.call("GET", "/api/v1/websites", key=user["apiKey"])) == []
    assert sign_in(s, "moved@migrate.example", "moved password 1") == 200
    assert sign_in(s, "moved@migrate.example", "a wrong password") == 401


def test_a_box_moves_its_meta_store_into_postgres(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    data_dir, url = tmp_path / "box", postgres.database()
    box = TrailServer(data_dir, workers=1).start()
    try:
        admin_key = box.admin_key
        assert admin_key is not None
        made = fill(box)
    finally:
        assert box.stop() == 0
    first = migrate_cli(data_dir, url)
    assert first["copied"] > 10 and first["updated"] == first["skipped"] == 0
    assert first["user_key_secret"] == "copied" and "***" not in first["target"]
    assert {"users", "keys", "sites", "clients", "goals", "settings", "user_keys"} <= set(
        first["tables"]
    )
    stored = records(url)
    assert (SECRET_SETTING, "") not in stored and ("settings", SECRET_SETTING) in stored
    # A second run copies nothing.
    again = migrate_cli(data_dir, url)
    assert (again["copied"], again["updated"]) == (0, 0)
    assert again["unchanged"] == first["copied"]
    assert records(url) == stored

    node = TrailServer(data_dir, workers=1, env=postgres_env(url)).start()
    try:
        assert node.admin_key is None  # the box's admin came along: no new one
        assert ok(node.call("GET", "/health"))["meta_store"] == "postgres"
        check_served(node, admin_key, made)
    finally:
        assert node.stop() == 0
    assert meta_backend.postgres_url(data_dir / "meta") == url
    # The site's access key (write-only, so not usable on a read above) resolves to its client.
    pg = MetaStore(PgEnv.open(url))
    try:
        principal = pg.resolve_secret(made["access_key"])
        assert principal is not None and principal.client is not None
        assert (principal.kind, principal.client.domain_id) == ("access_key", made["site"])
    finally:
        pg.close()
    # A second node with a data dir of its own serves the same records, TinyTrail keys included.
    other = TrailServer(tmp_path / "other", workers=1, env=postgres_env(url)).start()
    try:
        assert other.admin_key is None
        check_served(other, admin_key, made)
    finally:
        assert other.stop() == 0


def test_the_data_dir_waits_for_a_current_migration(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    data_dir, url = tmp_path / "box", postgres.database()
    meta = MetaStore.open(data_dir / "meta")
    meta.ensure_admin()
    meta.close()
    port = str(free_port())
    serve = ("serve", "--port", port, "--data-dir", str(data_dir), "--workers", "1",
             "--meta-store", "postgres", "--postgres-url", url)  # fmt: skip
    done = trail(*serve)
    assert done.returncode == 2 and "trail migrate postgres" in done.stderr, done.stderr
    migrate_cli(data_dir, url)
    # The box changed after the copy: the data dir is refused until the copy is brought up to date.
    meta = MetaStore.open(data_dir / "meta")
    user, _ = meta.create_user("user")
    meta.close()
    done = trail(*serve[:-1], postgres.database())
    assert done.returncode == 2 and "was migrated into" in done.stderr, done.stderr
    done = trail(*serve)
    assert done.returncode == 2 and "changed after `trail migrate postgres`" in done.stderr
    assert migrate_cli(data_dir, url)["copied"] >= 2  # the user and its key digest
    config_check = meta_backend.last_txnid(data_dir / "meta")
    node = TrailServer(data_dir, workers=1, env=postgres_env(url)).start()
    try:
        assert meta_backend.last_txnid(data_dir / "meta") == config_check  # LMDB left alone
        assert node.admin_key is None
    finally:
        assert node.stop() == 0
    pg = MetaStore(PgEnv.open(url))
    try:
        assert pg.get_user(user.id) == user
    finally:
        pg.close()


def test_the_lmdb_transaction_id_read_from_the_file(tmp_path: Path) -> None:
    meta = MetaStore.open(tmp_path / "meta")
    for i in range(3):
        meta.create_account(f"a{i}")
        assert meta_backend.last_txnid(tmp_path / "meta") == meta.stamp()
    meta.close()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / meta_backend.LMDB_FILE).write_bytes(b"\0" * 8192)
    assert meta_backend.last_txnid(tmp_path / "bad") is None


def test_a_partly_filled_store_gets_what_it_lacks(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    url = postgres.database()
    box = MetaStore.open(tmp_path / "meta")
    box.tables["odd kind"].put("k", ["not", "declared"])
    with box.tables.write() as txn:  # more than a batch
        for i in range(2500):
            box.tables["accounts"].put(f"a{i:04}", {"id": f"a{i:04}", "name": f"account {i}"}, txn)
        box.tables["goals"].put("g1", {"id": "g1", "name": "new"}, txn)
    box.close()
    target = MetaStore(PgEnv.open(url))
    target.tables["accounts"].put("a0000", {"stale": True})  # to be replaced
    target.tables["goals"].put("only-here", {"id": "only-here"})  # to be kept
    target.close()
    seen: list[tuple[int, int]] = []
    summary = migrate(tmp_path, url, lambda done, total: seen.append((done, total)))
    assert (summary.copied, summary.updated, summary.unchanged) == (2500 + 2 - 1, 1, 0)
    assert summary.tables["accounts"] == 2500 and summary.tables["odd kind"] == 1
    assert seen[-1][0] == seen[-1][1] == 2502 and len(seen) > 10
    stored = records(url)
    assert json.loads(stored[("accounts", "a0000")])["name"] == "account 0"
    assert ("goals", "only-here") in stored and ("odd kind", "k") in stored
    again = migrate(tmp_path, url)
    assert (again.copied, again.updated, again.unchanged) == (0, 0, 2502)


def test_errors_name_the_problem(tmp_path: Path, postgres: PostgresCluster) -> None:
    MetaStore.open(tmp_path / "box" / "meta").close()
    dead = f"postgresql://trail:s3cret@127.0.0.1:{free_port()}/trail"
    done = trail("migrate", "postgres", "--data-dir", str(tmp_path / "box"), "--url", dead)
    assert done.returncode == 2 and "s3cret" not in done.stderr
    assert "postgres_url: cannot use postgresql://trail:***@127.0.0.1" in done.stderr, done.stderr
    done = trail("migrate", "postgres", "--data-dir", str(tmp_path / "box"), "--url", "mysql://x")
    assert done.returncode == 2 and "--url or postgres_url:" in done.stderr, done.stderr
    done = trail("migrate", "postgres", "--data-dir", str(tmp_path / "box"))
    assert done.returncode == 2 and "required" in done.stderr, done.stderr
    (tmp_path / "empty").mkdir()
    done = trail("migrate", "postgres", "--data-dir", str(tmp_path / "empty"), "--url", dead)
    assert done.returncode == 2 and "holds no LMDB meta store" in done.stderr, done.stderr
    # A database of a newer trail.
    url = postgres.database()
    env = PgEnv.open(url)
    env.run(lambda c: c.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'x')"))
    env.close()
    done = trail("migrate", "postgres", "--data-dir", str(tmp_path / "box"), "--url", url)
    assert done.returncode == 2 and "newer than this trail" in done.stderr, done.stderr


def test_a_store_with_another_key_secret_is_refused(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    url = postgres.database()
    box = MetaStore.open(tmp_path / "meta")
    account = box.create_account("a")
    AccountStore(box, tmp_path).create_user("user", account.id, None)  # a seed and the file
    box.close()
    assert (tmp_path / SECRET_FILE).exists()
    target = MetaStore(PgEnv.open(url))
    target.tables["settings"].put(SECRET_SETTING, "ab" * 32)
    target.close()
    with pytest.raises(MigrateError, match="another user_key_secret"):
        migrate(tmp_path, url)
    assert set(records(url)) == {("settings", SECRET_SETTING)}  # nothing copied


# -- the user-key secret of a shared store ------------------------------------------------------


def test_nodes_racing_for_the_secret_agree(tmp_path: Path, postgres: PostgresCluster) -> None:
    url = postgres.database()
    stores = [MetaStore(PgEnv.open(url)) for _ in range(6)]
    got: list[bytes] = []
    start = threading.Barrier(len(stores))

    def need(i: int, meta: MetaStore) -> None:
        start.wait()
        got.append(shared_secret(meta, tmp_path / f"node{i}"))

    threads = [threading.Thread(target=need, args=pair) for pair in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 6 and len(set(got)) == 1 and len(got[0]) == 32
    for meta in stores:
        meta.close()
    assert not (tmp_path / "node0" / SECRET_FILE).exists()  # in the store, not in a file


def test_a_nodes_own_secret_file_becomes_the_shared_secret(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    """A node that served TinyTrail keys from its file before the secret moved into the store
    keeps them: the first node to need the secret brings its own."""
    url = postgres.database()
    (tmp_path / SECRET_FILE).parent.mkdir(parents=True)
    (tmp_path / SECRET_FILE).write_text("cd" * 32)
    meta = MetaStore(PgEnv.open(url))
    try:
        assert shared_secret(meta, tmp_path) == bytes.fromhex("cd" * 32)
        assert shared_secret(meta, tmp_path / "another node") == bytes.fromhex("cd" * 32)
    finally:
        meta.close()


def test_a_key_made_on_one_node_is_shown_on_another(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    url = postgres.database()
    a = TrailServer(tmp_path / "a", workers=1, env=postgres_env(url)).start()
    b = TrailServer(tmp_path / "b", workers=1, env=postgres_env(url)).start()
    try:
        admin = a.admin_key
        assert admin is not None and b.admin_key is None
        account = ok(b.call("POST", "/api/v1/accounts", {"name": "shared"}, key=admin), 201)
        body = {"account_id": account["id"], "role": "user", "email": "two@nodes.example"}
        user = ok(a.call("POST", "/api/v1/users", body, key=admin), 201)
        shown = ok(b.call("GET", f"/api/v1/users/{user['id']}/api-key", key=admin))
        assert shown == {"id": user["id"], "apiKey": user["apiKey"]}
        assert b.call("GET", "/api/v1/websites", key=user["apiKey"]).status == 200
        # And the other way round.
        user = ok(
            b.call("POST", "/api/v1/users", {**body, "email": "b@nodes.example"}, key=admin), 201
        )
        shown = ok(a.call("GET", f"/api/v1/users/{user['id']}/api-key", key=admin))
        assert shown["apiKey"] == user["apiKey"]
    finally:
        assert a.stop() == 0 and b.stop() == 0
    assert (
        not (tmp_path / "a" / SECRET_FILE).exists() and not (tmp_path / "b" / SECRET_FILE).exists()
    )

"""The meta store in PostgreSQL (trail.storage.pg) on a real server: schema migrations, the
record layer agreeing with LMDB, concurrent writers, the change counter, the settings and the
503 of /health when the server goes away.

The management and access suites run against it too: `pytest --meta-store=postgres
tests/test_management.py tests/test_authz_matrix.py tests/test_access.py` (.ci/run does)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.postgres import PostgresCluster
from tests.server import TrailServer, free_port, request
from trail.config import ConfigError, load
from trail.storage import meta_backend, pg_schema
from trail.storage.meta import MetaStore, Site
from trail.storage.pg import PgEnv
from trail.storage.tables import StorageError


@pytest.fixture
def pg_meta(postgres: PostgresCluster) -> Iterator[MetaStore]:
    meta = MetaStore(PgEnv.open(postgres.database()))
    yield meta
    meta.close()


@pytest.fixture
def lmdb_meta(tmp_path: Path) -> Iterator[MetaStore]:
    meta = MetaStore.open(tmp_path / "meta")
    yield meta
    meta.close()


# -- migrations ---------------------------------------------------------------------------------


def test_migrations_on_a_fresh_database_then_a_rerun_is_a_no_op(postgres: PostgresCluster) -> None:
    url = postgres.database()
    with psycopg.connect(url, autocommit=True) as conn:
        assert pg_schema.schema_version(conn) == 0
        assert pg_schema.migrate(conn) == [v for v, _, _ in pg_schema.MIGRATIONS]
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY 1").fetchall()
        assert rows == [(v, name) for v, name, _ in pg_schema.MIGRATIONS]
        assert conn.execute("SELECT counter FROM meta_version").fetchall() == [(0,)]
        assert pg_schema.migrate(conn) == []
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(rows),)
        assert pg_schema.schema_version(conn) == pg_schema.LATEST
    # Opening the store migrates too, and again changes nothing.
    PgEnv.open(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (len(rows),)


def test_a_database_from_a_newer_trail_is_refused(postgres: PostgresCluster) -> None:
    url = postgres.database()
    PgEnv.open(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    with pytest.raises(pg_schema.SchemaError, match="999"):
        PgEnv.open(url)


def test_nodes_starting_at_once_migrate_once(postgres: PostgresCluster) -> None:
    url = postgres.database()
    applied: list[list[int]] = []

    def start() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            applied.append(pg_schema.migrate(conn))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(applied) == [[], [], [], [1]]


# -- the record layer, the same on both stores --------------------------------------------------


def exercise(meta: MetaStore) -> list[object]:
    """One sequence of record-layer calls; everything they answer, in order."""
    t = meta.tables["settings"]
    out: list[object] = []
    for key in ("b", "a", "Z", "é", "a0", "ab"):
        t.put(key, {"key": key, "nul": "x\u0000y", "n": 1.5, "z": 1, "a": [None, True]})
    out.append([k for k, _ in t.scan()])  # bytewise key order
    out.append(t.get("é"))
    out.append([t.get(""), t.get("missing"), t.delete("missing"), t.delete("")])
    out.append(t.update("a", lambda v: {**v, "n": 2}))
    out.append(t.update("missing", lambda v: v))
    out.append(t.update("b", lambda v: None))
    out.append(t.get("b"))
    out.append([r["key"] for r in t.find(n=1.5)])
    out.append([r["key"] for r in t.find(missing=None)])
    with meta.tables.write() as txn:
        t.put("in-txn", 1, txn)
        t.delete("a0", txn)
        out.append(t.get("in-txn", txn))
    out.append([t.get("in-txn"), t.get("a0")])
    with pytest.raises(KeyError), meta.tables.write() as txn:
        t.put("rolled-back", 1, txn)
        t.delete("ab", txn)
        raise KeyError("abort")
    out.append([t.get("rolled-back"), t.get("ab") is not None])
    with meta.tables.read() as txn:
        out.append(len(t.scan(txn)))
        out.append("settings" in [x.name for x in meta.tables.every(txn)])
    meta.tables["a_new_kind"].put("k", "v")
    with meta.tables.read() as txn:
        out.append("a_new_kind" in [x.name for x in meta.tables.every(txn)])
    return out


def test_the_record_layer_answers_as_lmdb_does(pg_meta: MetaStore, lmdb_meta: MetaStore) -> None:
    assert (pg_meta.backend, lmdb_meta.backend) == ("postgres", "lmdb")
    on_lmdb = exercise(lmdb_meta)
    assert exercise(pg_meta) == on_lmdb
    assert on_lmdb[0] == ["Z", "a", "a0", "ab", "b", "é"]


def test_values_are_stored_as_the_orjson_text(
    pg_meta: MetaStore, postgres: PostgresCluster
) -> None:
    pg_meta.tables["prefs"].put("u1", {"z": 1, "a": "\u0000"})
    url = pg_meta.tables.env.url  # type: ignore[attr-defined]
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT value::text FROM records WHERE kind = 'prefs'").fetchone()
    assert row == ('{"z":1,"a":"\\u0000"}',)  # key order and the NUL escape kept


def test_a_key_with_nul_is_absent_and_cannot_be_written(pg_meta: MetaStore) -> None:
    t = pg_meta.tables["links"]
    assert t.get("a\0b") is None and t.delete("a\0b") is False
    with pytest.raises(ValueError, match="NUL"):
        t.put("a\0b", 1)


def test_meta_store_operations_on_postgres(pg_meta: MetaStore) -> None:
    created = pg_meta.ensure_admin()
    assert created is not None and pg_meta.ensure_admin() is None
    admin, key = created
    principal = pg_meta.resolve_secret(key)
    assert principal is not None and principal.user is not None
    assert principal.user.id == admin.id
    site = pg_meta.create_site(Site(id="", account_id=admin.account_id, hostname="a.test",
                                    subdomain="a", timezone="UTC"))  # fmt: skip
    with pytest.raises(KeyError):
        pg_meta.create_site(Site(id="", account_id=admin.account_id, hostname="b.test",
                                 subdomain="a", timezone="UTC"))  # fmt: skip
    client, secret = pg_meta.create_client("token", site.id, admin.id, "t", {})
    assert pg_meta.resolve_secret(secret) is not None
    removed = pg_meta.delete_site(site.id)
    assert removed is not None and [s.id for s in removed.sites] == [site.id]
    assert pg_meta.resolve_secret(secret) is None and pg_meta.get_client(client.id) is None


# -- concurrent writers ---------------------------------------------------------------------------


def test_concurrent_read_modify_writes_lose_nothing(postgres: PostgresCluster) -> None:
    """Two "nodes" (stores on the same database), four threads each, incrementing one counter
    by read-modify-write: every increment lands, as with LMDB's single writer."""
    url = postgres.database()
    nodes = [MetaStore(PgEnv.open(url)), MetaStore(PgEnv.open(url))]
    nodes[0].tables["settings"].put("n", {"value": 0})
    rounds, failures = 25, []

    def work(meta: MetaStore) -> None:
        try:
            for _ in range(rounds):
                with meta.tables.write() as txn:
                    rec = meta.tables["settings"].get("n", txn)
                    meta.tables["settings"].put("n", {"value": rec["value"] + 1}, txn)
        except (StorageError, psycopg.Error) as e:  # the assertion below reports it
            failures.append(e)

    threads = [threading.Thread(target=work, args=(nodes[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert failures == []
        assert nodes[1].tables["settings"].get("n") == {"value": 8 * rounds}
    finally:
        for meta in nodes:
            meta.close()


def test_racing_sites_with_one_subdomain_make_one_site(postgres: PostgresCluster) -> None:
    url = postgres.database()
    nodes = [MetaStore(PgEnv.open(url)) for _ in range(2)]
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def create(meta: MetaStore, i: int) -> None:
        barrier.wait()
        try:
            meta.create_site(Site(id="", account_id=None, hostname=f"h{i}.test",
                                  subdomain="same", timezone="UTC"))  # fmt: skip
            outcomes.append("created")
        except KeyError:
            outcomes.append("taken")

    threads = [threading.Thread(target=create, args=(nodes[i % 2], i)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(outcomes) == ["created"] + ["taken"] * 5
        assert len(nodes[0].all_sites()) == 1
    finally:
        for meta in nodes:
            meta.close()


# -- the change counter ---------------------------------------------------------------------------


def test_the_stamp_moves_with_each_committed_change_only(postgres: PostgresCluster) -> None:
    url = postgres.database()
    this, other = MetaStore(PgEnv.open(url, stamp_ttl=3600)), MetaStore(PgEnv.open(url))
    try:
        first = this.stamp()
        this.tables["settings"].put("k", 1)
        assert this.stamp() == first + 1  # its own commit, at once despite the long ttl
        with this.tables.write() as txn:
            this.tables["settings"].get("k", txn)  # a write transaction that changed nothing
        this.tables["settings"].delete("missing")
        with pytest.raises(KeyError), this.tables.write() as txn:
            this.tables["settings"].put("k", 2, txn)
            raise KeyError("rolled back")
        assert other.stamp() == first + 1
        other.tables["settings"].put("k", 3)
        assert other.stamp() == first + 2  # ttl 0: read every time
        assert this.stamp() == first + 1  # another node's change, not yet seen: within the ttl
    finally:
        this.close()
        other.close()


# -- settings and start-up checks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "setting", "words"),
    [
        ({"TRAIL_META_STORE": "mysql"}, "meta_store", "not one of lmdb, postgres"),
        ({"TRAIL_META_STORE": "postgres"}, "postgres_url", "required"),
        ({"TRAIL_META_STORE": "postgres", "TRAIL_POSTGRES_URL": "http://x/y"}, "postgres_url",
         "postgresql://"),
        ({"TRAIL_META_STORE": "postgres", "TRAIL_POSTGRES_URL": "postgresql://h:port/db"},
         "postgres_url", "not a PostgreSQL URL"),
        ({"TRAIL_META_STORE": "postgres", "TRAIL_POSTGRES_URL": "postgresql://h/db?colour=red"},
         "postgres_url", "colour"),
    ],
)  # fmt: skip
def test_bad_meta_store_settings_name_the_setting(
    tmp_path: Path, settings: dict[str, str], setting: str, words: str
) -> None:
    with pytest.raises(ConfigError) as e:
        load(env={**settings, "TRAIL_DATA_DIR": str(tmp_path)})
    assert e.value.setting == setting and words in e.value.message


def test_meta_store_settings_from_toml_and_flags(tmp_path: Path, postgres: PostgresCluster) -> None:
    toml = tmp_path / "trail.toml"
    toml.write_text(f'meta_store = "postgres"\npostgres_url = "{postgres.url("x")}"\n')
    config = load(str(toml), env={"TRAIL_DATA_DIR": str(tmp_path)})
    assert (config.meta_store, config.postgres_url) == ("postgres", postgres.url("x"))
    config = load(str(toml), env={"TRAIL_DATA_DIR": str(tmp_path)}, flags={"meta_store": "lmdb"})
    assert config.meta_store == "lmdb"


def serve(data_dir: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`trail serve` expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "trail", "serve", "--port", str(free_port()),
         "--data-dir", str(data_dir), "--workers", "1", *flags],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_an_unreachable_server_at_start_is_a_config_error(tmp_path: Path) -> None:
    url = f"postgresql://trail:s3cret@127.0.0.1:{free_port()}/trail"
    done = serve(tmp_path / "data", "--meta-store", "postgres", "--postgres-url", url)
    assert done.returncode == 2
    assert "trail: config: postgres_url: cannot use postgresql://trail:***@127.0.0.1" in done.stderr
    assert "s3cret" not in done.stderr
    assert not (tmp_path / "data" / "meta" / meta_backend.POINTER).exists()


def test_the_data_dir_keeps_to_its_meta_store(tmp_path: Path, postgres: PostgresCluster) -> None:
    lmdb_dir, pg_dir = tmp_path / "lmdb", tmp_path / "pg"
    MetaStore.open(lmdb_dir / "meta").close()
    done = serve(lmdb_dir, "--meta-store", "postgres", "--postgres-url", postgres.database())
    assert done.returncode == 2 and "config: meta_store:" in done.stderr, done.stderr
    assert "holds an LMDB meta store" in done.stderr
    # A data dir bound to PostgreSQL (as `trail serve` binds it) refuses to start on LMDB ...
    config = load(env={"TRAIL_DATA_DIR": str(pg_dir), "TRAIL_META_STORE": "postgres",
                       "TRAIL_POSTGRES_URL": postgres.database()})  # fmt: skip
    meta_backend.check(config)
    assert (pg_dir / "meta" / meta_backend.POINTER).stat().st_mode & 0o777 == 0o600
    done = serve(pg_dir)
    assert done.returncode == 2 and 'set meta_store = "postgres"' in done.stderr, done.stderr
    # ... and `trail admin` run next to it without the setting reaches the same store.
    made = subprocess.run(
        [sys.executable, "-m", "trail", "admin", "create-user", "--data-dir", str(pg_dir),
         "--role", "user", "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    user_id = json.loads(made.stdout)["id"]
    meta = MetaStore(PgEnv.open(config.postgres_url))
    try:
        assert meta.get_user(user_id) is not None
    finally:
        meta.close()
    assert not (pg_dir / "meta" / meta_backend.LMDB_FILE).exists()


# -- /health ----------------------------------------------------------------------------------------


def test_health_answers_503_while_postgres_is_down(tmp_path: Path) -> None:
    """Its own PostgreSQL server, since this test stops it."""
    cluster = PostgresCluster().start()
    env = {"TRAIL_META_STORE": "postgres", "TRAIL_POSTGRES_URL": cluster.database()}
    s = TrailServer(tmp_path / "data", workers=1, env=env).start()
    try:
        r = request("GET", s.url + "/health")
        assert r.status == 200
        assert (r.json()["status"], r.json()["db"], r.json()["meta_store"]) == (
            "ok", "connected", "postgres")  # fmt: skip
        cluster.stop()
        r = request("GET", s.url + "/health")
        assert r.status == 503 and r.json()["status"] == "degraded"
        assert r.json()["db"].startswith("meta store unusable: postgres:")
        # An API call needing the store is a 503 too, not a 500.
        r = s.call("GET", "/api/v1/domain", key=s.admin_key)
        assert r.status == 503, r.body
        cluster.restart()
        assert request("GET", s.url + "/health").status == 200  # reconnects by itself
        assert s.call("GET", "/api/v1/domain", key=s.admin_key).status == 200
    finally:
        assert s.stop() == 0
        cluster.remove()


def test_ping_raises_storage_error_when_closed(pg_meta: MetaStore) -> None:
    pg_meta.ping()
    pg_meta.close()
    with pytest.raises(StorageError):
        pg_meta.ping()


def test_admin_commands_with_the_setting_bind_a_fresh_data_dir(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    """A new node's first command may come before its first `trail serve`."""
    url = postgres.database()
    toml = tmp_path / "trail.toml"
    toml.write_text(f'meta_store = "postgres"\npostgres_url = "{url}"\n')
    data_dir = tmp_path / "data"
    made = subprocess.run(
        [sys.executable, "-m", "trail", "admin", "create-user", "--config", str(toml),
         "--data-dir", str(data_dir), "--role", "user", "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert meta_backend.postgres_url(data_dir / "meta") == url
    assert not (data_dir / "meta" / meta_backend.LMDB_FILE).exists()
    meta = MetaStore(PgEnv.open(url))
    try:
        assert meta.get_user(json.loads(made.stdout)["id"]) is not None
    finally:
        meta.close()

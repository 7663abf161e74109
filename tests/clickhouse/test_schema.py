"""The ClickHouse backend's setting, schema and migrations, on ClickHouse's own engine (chDB)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from trail.clickhouse.url import Target, UrlError, parse
from trail.config import ConfigError, load
from trail.storage.schema import TABLES

ROOT = Path(__file__).resolve().parents[2]


def chq(url: str, *args: str) -> dict[str, Any]:
    """tests.clickhouse.chq in a process of its own (chDB locks its directory per process)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.clickhouse.chq", url, *args],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    return dict(orjson.loads(done.stdout.splitlines()[-1]))


URLS = [
    ("http://ch.local/analytics", Target("http", "analytics", host="ch.local", port=8123)),
    (
        "https://u:p%40ss@ch.example.com/trail",
        Target("https", "trail", host="ch.example.com", port=8443, user="u", password="p@ss"),
    ),
    (
        "https://ch:9443?verify=false",
        Target("https", "trail", host="ch", port=9443, verify=False),
    ),
    (
        "https://ch/x?ca_cert=/etc/ca.pem",
        Target("https", "x", host="ch", port=8443, ca_cert="/etc/ca.pem"),
    ),
    ("chdb:///var/lib/ch", Target("chdb", "trail", path="/var/lib/ch")),
    ("chdb:///var/lib/ch?database=t2", Target("chdb", "t2", path="/var/lib/ch")),
]


@pytest.mark.parametrize(("url", "want"), URLS)
def test_urls(url: str, want: Target) -> None:
    assert parse(url) == want


BAD_URLS = [
    ("ftp://ch/trail", "expected http://, https:// or chdb://"),
    ("http:///trail", "no host"),
    ("http://ch/bad-name", "not a database name"),
    ("http://ch/t?database=x", "is its path"),
    ("http://ch/t?compress=1", "unknown option 'compress'"),
    ("https://ch/t?verify=maybe", "not true or false"),
    ("chdb://relative/dir", "absolute directory"),
    ("http://ch:99999/t", "not a URL"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_bad_urls_say_why(url: str, message: str) -> None:
    with pytest.raises(UrlError, match=message):
        parse(url)


def test_storage_settings_are_checked_at_start(tmp_path: Path) -> None:
    flags = {"data_dir": str(tmp_path)}
    assert load(env={}, flags=flags).storage == "embedded"
    env = {"TRAIL_STORAGE": "clickhouse", "TRAIL_CLICKHOUSE_URL": "https://ch:8443/trail"}
    config = load(env=env, flags=flags)
    assert (config.storage, config.clickhouse_url) == ("clickhouse", "https://ch:8443/trail")
    with pytest.raises(ConfigError) as e:
        load(env={"TRAIL_STORAGE": "duckdb"}, flags=flags)
    assert e.value.setting == "storage" and "embedded, clickhouse" in e.value.message
    with pytest.raises(ConfigError) as e:
        load(env={"TRAIL_STORAGE": "clickhouse"}, flags=flags)
    assert e.value.setting == "clickhouse_url" and "required" in e.value.message
    with pytest.raises(ConfigError) as e:
        load(env={**env, "TRAIL_CLICKHOUSE_URL": "ch:8443"}, flags=flags)
    assert e.value.setting == "clickhouse_url" and "expected http://" in e.value.message


# ClickHouse type of each Polars type of trail.storage.schema.
_TYPES = {
    "String": "String",
    "Boolean": "Bool",
    "UInt32": "UInt32",
    "UInt64": "UInt64",
    "Int8": "Int8",
    "Datetime(time_unit='ms', time_zone='UTC')": "DateTime64(3, 'UTC')",
    "List(String)": "Array(String)",
}


def test_migrations_create_trails_tables_once(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'ch'}"
    first = chq(
        url,
        "--migrate",
        "SELECT table, name, type FROM system.columns WHERE database = 'trail' "
        "ORDER BY table, position",
        "SELECT name, engine, partition_key FROM system.tables WHERE database = 'trail' "
        "ORDER BY name",
    )
    assert first["applied"] == [1, 2]
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, name, kind in first["results"][0]:
        columns.setdefault(table, []).append(
            (name, kind.replace("LowCardinality(String)", "String"))
        )
    for table, polars_schema in TABLES.items():
        want = [("site_id", "String")] + [(n, _TYPES[str(t)]) for n, t in polars_schema.items()]
        assert columns[table] == want, table
    assert columns["session_states"] == columns["sessions"]
    engines = {name: (engine, key) for name, engine, key in first["results"][1]}
    assert engines["sessions"] == ("VersionedCollapsingMergeTree", "toYYYYMM(time)")
    assert engines["session_states_view"][0] == "MaterializedView"
    for table in ("page_views", "events", "requests", "session_states"):
        assert engines[table] == ("MergeTree", "toYYYYMM(time)")

    again = chq(
        url, "--migrate", "SELECT version, name FROM trail.trail_migrations ORDER BY version"
    )
    assert again["applied"] == []
    assert again["results"][0] == [[1, "the row tables"], [2, "session states for visitor counts"]]


DEDUP = """
import sys
import pyarrow as pa
from trail.clickhouse.client import connect, migrate
client = connect(sys.argv[1])
migrate(client, "trail")
rows = pa.table({
    "site_id": ["s", "s"],
    "visitor_id": pa.array([1, 2], pa.uint64()),
    # one row in November, one in December: two partitions, two blocks
    "time": pa.array([1795000000000, 1796600000000], pa.timestamp("ms", "UTC")),
})
states = pa.table({
    "site_id": ["s", "s"],
    "sign": pa.array([1, -1], pa.int8()),
    "visitor_id": pa.array([1, 1], pa.uint64()),
    "time": pa.array([1795000000000, 1795000000000], pa.timestamp("ms", "UTC")),
})
settings = {"deduplicate_blocks_in_dependent_materialized_views": 1}
for token in ["a", "a", "b", "a"]:
    settings["insert_deduplication_token"] = token
    client.insert_arrow("trail.requests", rows, settings=settings)
    client.insert_arrow("trail.sessions", states, settings=settings)
client.command("OPTIMIZE TABLE trail.sessions FINAL")
print(client.command("SELECT count() FROM trail.requests"))
print(client.command("SELECT count() FROM trail.sessions"))
print(client.command("SELECT count() FROM trail.session_states"))
"""


def test_a_token_is_stored_once(tmp_path: Path) -> None:
    """non_replicated_deduplication_window works in chDB: the same token twice is one insert,
    also when the insert spans two partitions; another token is another insert. The states
    view copies the +1 rows of each insert once, and keeps them when `sessions` collapses."""
    done = subprocess.run(
        [sys.executable, "-c", DEDUP, f"chdb://{tmp_path / 'ch'}"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-3:] == ["4", "0", "2"]

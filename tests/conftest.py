"""Shared fixtures: one real `trail serve` for the platform tests that only read and manage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresCluster
from tests.server import ENV_FOR_DATA_DIR, TrailServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--meta-store",
        choices=("lmdb", "postgres"),
        default="lmdb",
        help="the meta store of every test server: postgres = a database each, on one "
        "throwaway PostgreSQL server",
    )


# The longest test files (about a minute each or more, measured with --durations) first:
# pytest-xdist hands the files to its workers in collection order, so the long ones start at
# once and the short ones fill in around them instead of one long file running alone at the end.
SLOW_FIRST = (
    "tests/oracle/test_differential.py",
    "tests/clickhouse/test_differential.py",
    "tests/test_export_roundtrip.py",
    "tests/stats/test_zone_pages.py",
    "tests/test_live_merge.py",
    "tests/clickhouse/test_differential_events.py",
    "tests/test_import_api.py",
    "tests/test_import_goatcounter.py",
    "tests/clickhouse/test_differential_sessions.py",
    "tests/stats/test_zone_rollups.py",
    "tests/stats/test_dim_rollups.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL server (initdb + pg_ctl in a temp dir), removed at the end."""
    cluster = PostgresCluster().start()
    yield cluster
    cluster.remove()


@pytest.fixture(scope="session", autouse=True)
def meta_store(request: pytest.FixtureRequest) -> Iterator[str]:
    """The --meta-store of this run; with postgres, every TrailServer gets a database of its own
    (the same one again for the same data dir)."""
    choice = request.config.getoption("meta_store")
    if choice == "postgres":
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        urls: dict[Path, str] = {}

        def env(data_dir: Path) -> dict[str, str]:
            url = urls.get(data_dir) or urls.setdefault(data_dir, cluster.database())
            return {"TRAIL_META_STORE": "postgres", "TRAIL_POSTGRES_URL": url}

        ENV_FOR_DATA_DIR.append(env)
        yield choice
        ENV_FOR_DATA_DIR.remove(env)
    else:
        yield choice


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    """A real server (2 workers) on a free loopback port; SIGTERMed at the end of the session."""
    data_dir: Path = tmp_path_factory.mktemp("shared") / "data"
    data_dir.mkdir()
    server = TrailServer(data_dir, workers=2).start()
    assert server.admin_key and server.admin_key.startswith("tt_")
    yield server
    assert server.stop() == 0


def create_user(data_dir: Path, role: str, *extra: str) -> dict[str, str]:
    """`trail admin create-user --json` as a real subprocess; returns its JSON."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "trail",
            "admin",
            "create-user",
            "--data-dir",
            str(data_dir),
            "--role",
            role,
            "--json",
            *extra,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)

"""Shared fixtures: one real `trail serve` for the platform tests that only read and manage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import TrailServer


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

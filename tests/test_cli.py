"""`trail admin create-user`, also while the server runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import create_user
from tests.server import TrailServer


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trail", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_create_user_prints_id_and_key(tmp_path: Path) -> None:
    done = run_cli(
        "admin",
        "create-user",
        "--data-dir",
        str(tmp_path),
        "--role",
        "admin",
        "--email",
        "a@example.com",
    )
    assert done.returncode == 0, done.stderr
    fields = dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
    assert (
        fields["role"] == "admin"
        and fields["api_key"].startswith("tt_")
        and len(fields["id"]) == 36
    )


def test_json_output_and_accounts(tmp_path: Path) -> None:
    admin = create_user(tmp_path, "admin")
    assert set(admin) >= {"id", "api_key"}
    second_admin = create_user(tmp_path, "admin")
    assert second_admin["account_id"] == admin["account_id"]  # admins share the default account
    user = create_user(tmp_path, "user")
    assert user["account_id"] != admin["account_id"]  # a plain user gets its own account
    teammate = create_user(tmp_path, "user", "--account", user["account_id"])
    assert teammate["account_id"] == user["account_id"]


def test_unknown_account_and_bad_role(tmp_path: Path) -> None:
    done = run_cli(
        "admin", "create-user", "--data-dir", str(tmp_path), "--role", "user", "--account", "nope"
    )
    assert done.returncode == 1 and "account nope does not exist" in done.stderr
    done = run_cli("admin", "create-user", "--data-dir", str(tmp_path), "--role", "root")
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_create_user_while_the_server_runs(shared_server: TrailServer) -> None:
    user = create_user(shared_server.data_dir, "admin")
    r = shared_server.call("GET", "/api/v1/domain", key=user["api_key"])
    assert r.status == 200 and isinstance(r.json(), list)

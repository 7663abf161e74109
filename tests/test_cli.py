"""`trail admin create-user` and `trail admin set-password`, also while the server runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import create_user
from tests.server import Reply, TrailServer


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


# -- trail admin set-password ---------------------------------------------------------------------


def set_password(
    data_dir: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "trail",
            "admin",
            "set-password",
            "--data-dir",
            str(data_dir),
            *args,
        ],
        input=stdin,
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def sign_in(server: TrailServer, email: str, password: str) -> Reply:
    return server.call("POST", "/api/v1/auth/session", {"email": email, "password": password})


def test_set_password_while_the_server_runs(shared_server: TrailServer) -> None:
    data_dir, email = shared_server.data_dir, "cli-password@example.com"
    user = create_user(data_dir, "user", "--email", email)
    done = set_password(
        data_dir, "--user", email, "--password-stdin", "--json", stdin="pass 1 ok\n"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"id": user["id"], "email": email, "revoked_sessions": 0}
    r = sign_in(shared_server, email, "pass 1 ok")
    assert r.status == 200, r.body
    cookie = r.headers["set-cookie"].split(";")[0]
    assert shared_server.call("GET", "/api/v1/user", Cookie=cookie).status == 200
    # Setting it again (the user named by id) signs every browser of the user out.
    done = set_password(data_dir, "--user", user["id"], "--password-stdin", stdin="pass 2 ok\n")
    assert done.returncode == 0 and "revoked_sessions: 1" in done.stdout, done.stderr
    assert shared_server.call("GET", "/api/v1/user", Cookie=cookie).status == 401
    assert sign_in(shared_server, email, "pass 1 ok").status == 401
    assert sign_in(shared_server, email, "pass 2 ok").status == 200


def test_set_password_link_works_once(shared_server: TrailServer) -> None:
    user = create_user(shared_server.data_dir, "user")  # no email yet: --email gives it one
    done = set_password(
        shared_server.data_dir,
        *("--user", user["id"], "--link", "--email", "CLI-Link@example.com", "--json"),
        env={"TRAIL_PORT": str(shared_server.port)},
    )
    assert done.returncode == 0, done.stderr
    link = json.loads(done.stdout)["link"]
    prefix = f"{shared_server.url}/set-password#token="
    assert link.startswith(prefix), link
    body = {"token": link.removeprefix(prefix), "password": "link pass 1"}
    r = shared_server.call("POST", "/api/v1/auth/password-link", body)
    assert r.status == 200 and r.json()["user"]["email"] == "cli-link@example.com", r.body
    r = shared_server.call("POST", "/api/v1/auth/password-link", body)
    assert r.status == 400 and "token" in r.json()["validation"], r.body
    assert sign_in(shared_server, "cli-link@example.com", "link pass 1").status == 200


def test_set_password_errors_name_the_problem(tmp_path: Path) -> None:
    create_user(tmp_path, "user", "--email", "taken@example.com")
    user = create_user(tmp_path, "user")["id"]
    cases = [
        (("--password-stdin",), "0 users match the first admin"),  # never started: no admin
        (("--user", "nobody@example.com", "--password-stdin"), "0 users match nobody@"),
        (("--user", user, "--password-stdin"), "password: must be at least 8 characters"),
        (("--user", user, "--email", "taken@example.com"), "--email: already in use"),
        (("--user", user, "--email", "not-an-email"), "--email: must be an email address"),
    ]
    for args, problem in cases:
        stdin = "short\n" if problem.startswith("password") else "long enough 1\n"
        extra = () if "--password-stdin" in args else ("--password-stdin",)
        done = set_password(tmp_path, *args, *extra, stdin=stdin)
        assert done.returncode == 1 and problem in done.stderr, (args, done.stderr)
    done = set_password(tmp_path, "--user", user)  # stdin is no terminal to ask on
    assert done.returncode == 1 and "use --password-stdin or --link" in done.stderr
    done = set_password(tmp_path, "--user", user, "--link", "--password-stdin")
    assert done.returncode == 2 and "not allowed with" in done.stderr

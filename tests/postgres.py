"""A throwaway PostgreSQL server for tests: `initdb` + `pg_ctl` in a temp dir, on a free port,
listening on a unix socket in that dir only (trust auth), one database per test server."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

from tests.server import free_port

SERVER_USER = "postgres"


def pg_bin(tool: str) -> str:
    """The path of a PostgreSQL server tool: on PATH, else Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which(tool)
    if found:
        return found
    folders = glob.glob("/usr/lib/postgresql/*/bin")
    for folder in sorted(folders, key=lambda f: _version(Path(f).parent.name), reverse=True):
        if os.access(Path(folder) / tool, os.X_OK):
            return str(Path(folder) / tool)
    raise FileNotFoundError(f"{tool} not found: install Debian's postgresql package")


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


class PostgresCluster:
    """One `postgres` server; `database()` makes a fresh database and returns its URL."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: that is private to the test user, and as root the server
        # runs as another user (initdb refuses root).
        self.root = Path(tempfile.mkdtemp(prefix="trail-pg-"))
        self.data = self.root / "pgdata"
        self.socket_dir = self.root / "socket"
        self.port = free_port()
        self._names = itertools.count(1)

    def start(self) -> PostgresCluster:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SERVER_USER)
            for path in (self.root, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._run(pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "trail",
                  "-E", "UTF8", "--no-sync", "--locale=C")  # fmt: skip
        self.restart()
        return self

    def _options(self) -> str:
        # No TCP at all: the socket lives in the temp dir, so parallel runs never meet.
        return (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses='' -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )

    def _run(self, *argv: str) -> None:
        # initdb and postgres refuse to run as root; CI runs as root, so there they run as the
        # user Debian's package made for them.
        prefix = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*prefix, *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "LC_ALL": "C"},
            cwd=self.root,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stdout}{done.stderr}")

    def _ctl(self, *args: str) -> None:
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), *args)

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast", "-w")

    def remove(self) -> None:
        """Stop the server (if it runs) and delete its files."""
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        """Start the (stopped) server: same data, same port."""
        self._ctl("start", "-w", "-l", str(self.root / "postgres.log"), "-o", self._options())

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://trail@/{database}?host={quote(str(self.socket_dir))}&port={self.port}"

    def database(self, prefix: str = "trail") -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

"""First-start bootstrap, run by the supervisor as a short-lived child (the supervisor opens no LMDB).

    python -m trail.bootstrap --config-json '{...}'

Creates the admin user on an empty data dir and prints one JSON line: {"admin_id", "api_key",
"password_link", "link_expires_at"} the first time, {} afterwards. The supervisor shows the key
and the one-time set-password link (for the dashboard) once.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from trail.config import Config
from trail.services import signin
from trail.storage.meta import MetaStore


def bootstrap(config: Config) -> dict[str, str]:
    meta = MetaStore.open(Path(config.data_dir) / "meta")
    try:
        created = meta.ensure_admin()
        if created is None:
            return {}
        user, key = created
        link, expires = signin.create_link(meta, config, user.id)
    finally:
        meta.close()
    expires_at = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return {
        "admin_id": user.id,
        "api_key": key,
        "password_link": link,
        "link_expires_at": expires_at,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="trail.bootstrap")
    parser.add_argument("--config-json", required=True)
    args = parser.parse_args(argv)
    report = bootstrap(Config.from_json(args.config_json))
    sys.stdout.write(orjson.dumps(report).decode() + "\n")


if __name__ == "__main__":
    main()

"""First-start bootstrap, run by the supervisor as a short-lived child (the supervisor opens no LMDB).

    python -m trail.bootstrap --config-json '{...}'

Creates the admin user on an empty data dir and prints one JSON line: {"admin_id", "api_key"} the
first time, {} afterwards. The supervisor shows the key once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from trail.config import Config
from trail.storage.meta import MetaStore


def bootstrap(config: Config) -> dict[str, str]:
    meta = MetaStore.open(Path(config.data_dir) / "meta")
    try:
        created = meta.ensure_admin()
    finally:
        meta.close()
    if created is None:
        return {}
    user, key = created
    return {"admin_id": user.id, "api_key": key}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="trail.bootstrap")
    parser.add_argument("--config-json", required=True)
    args = parser.parse_args(argv)
    report = bootstrap(Config.from_json(args.config_json))
    sys.stdout.write(orjson.dumps(report).decode() + "\n")


if __name__ == "__main__":
    main()

"""The `trail` command: `trail serve ...` and `trail admin create-user ...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from trail import __version__
from trail.config import LOG_LEVELS, ConfigError, load


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trail", description="Self-hosted, cookie-less web analytics."
    )
    parser.add_argument("--version", action="version", version=f"trail {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (supervisor + workers)")
    serve.add_argument("--config", help="TOML config file (also TRAIL_CONFIG)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--data-dir", dest="data_dir", help="data directory (default ./data)")
    serve.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    serve.add_argument(
        "--geoip-db", dest="geoip_db", help="MaxMind .mmdb file for countries/cities"
    )
    serve.add_argument(
        "--trusted-proxies",
        dest="trusted_proxies",
        type=lambda s: [p.strip() for p in s.split(",") if p.strip()],
        help="comma-separated CIDRs whose proxy headers are believed",
    )
    serve.add_argument(
        "--strict-fsync",
        dest="strict_fsync",
        action="store_true",
        default=None,
        help="fsync the WAL before acknowledging each hit",
    )
    serve.add_argument("--log-level", dest="log_level", choices=LOG_LEVELS)

    admin = commands.add_parser("admin", help="administration").add_subparsers(
        dest="admin_command", required=True
    )
    create = admin.add_parser("create-user", help="create a user and print its API key")
    create.add_argument("--config", help="TOML config file (for data_dir)")
    create.add_argument("--data-dir", dest="data_dir")
    create.add_argument("--role", choices=("admin", "user"), required=True)
    create.add_argument("--account", help="account id (default: the admins' account, or a new one)")
    create.add_argument("--email")
    create.add_argument("--json", action="store_true", help='print {"id", "api_key"} as JSON')
    return parser


def _flags(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in names}


def cmd_serve(args: argparse.Namespace) -> int:
    from trail.supervisor import serve

    flags = _flags(
        args,
        (
            "host",
            "port",
            "data_dir",
            "workers",
            "geoip_db",
            "trusted_proxies",
            "strict_fsync",
            "log_level",
        ),
    )
    config = load(args.config, flags=flags)
    return serve(config)


def cmd_create_user(args: argparse.Namespace) -> int:
    from trail.storage.meta import MetaStore

    config = load(args.config, flags={"data_dir": args.data_dir})
    meta = MetaStore.open(Path(config.data_dir) / "meta")
    try:
        user, key = meta.create_user(args.role, account_id=args.account, email=args.email)
    except KeyError:
        print(f"trail: admin: account {args.account} does not exist", file=sys.stderr)
        return 1
    finally:
        meta.close()
    if args.json:
        print(
            orjson.dumps(
                {"id": user.id, "api_key": key, "account_id": user.account_id, "role": user.role}
            ).decode()
        )
    else:
        print(f"id: {user.id}\naccount: {user.account_id}\nrole: {user.role}\napi_key: {key}")
    return 0


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            code = cmd_serve(args)
        else:
            code = cmd_create_user(args)
    except ConfigError as e:
        print(f"trail: config: {e.setting}: {e.message}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()

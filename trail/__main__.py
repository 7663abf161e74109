"""The `trail` command: `trail serve ...`, `trail admin create-user ...` and
`trail admin set-password ...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson

from trail import __version__
from trail.config import LOG_LEVELS, SESSION_STORES, ConfigError, load
from trail.data_commands import add_commands as add_data_commands
from trail.data_commands import run as run_data_command
from trail.geoip import add_commands as add_geoip_commands
from trail.geoip import run_command as run_geoip_command


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
    serve.add_argument(
        "--session-store",
        dest="session_store",
        choices=SESSION_STORES,
        help="where sessions, salts and rate limits live (default lmdb; redis needs --redis-url)",
    )
    serve.add_argument(
        "--redis-url", dest="redis_url", help="redis://host:port/db of the shared session store"
    )
    serve.add_argument(
        "--meta-store", dest="meta_store", help='"lmdb" (default) or "postgres" (postgres_url)'
    )
    serve.add_argument(
        "--postgres-url", dest="postgres_url", help="postgresql:// URL of the meta store"
    )

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

    password = admin.add_parser(
        "set-password",
        help="set a user's dashboard password (revokes its sessions), or make a one-time link",
    )
    password.add_argument("--config", help="TOML config file (for data_dir, public_url)")
    password.add_argument("--data-dir", dest="data_dir")
    password.add_argument("--user", help="the user's id or email (default: the first admin)")
    password.add_argument("--email", help="also make this the email the user signs in with")
    how = password.add_mutually_exclusive_group()
    how.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    how.add_argument(
        "--link", action="store_true", help="print a one-time set-password link instead"
    )
    password.add_argument("--json", action="store_true", help="print the outcome as JSON")
    add_geoip_commands(commands)
    add_data_commands(commands)
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
            "session_store",
            "redis_url",
            "meta_store",
            "postgres_url",
        ),
    )
    config = load(args.config, flags=flags)
    return serve(config)


def _open_meta(config: Any) -> Any:
    """The data dir's meta store; with meta_store = "postgres" set, bound first (a node's first
    command may come before its first start)."""
    from trail.storage import meta_backend
    from trail.storage.meta import MetaStore

    if config.meta_store == "postgres":
        meta_backend.check(config)
    return MetaStore.open(Path(config.data_dir) / "meta")


def cmd_create_user(args: argparse.Namespace) -> int:
    config = load(args.config, flags={"data_dir": args.data_dir})
    meta = _open_meta(config)
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


def _fail(message: str) -> int:
    print(f"trail: admin: {message}", file=sys.stderr)
    return 1


def _read_password(args: argparse.Namespace) -> str | None:
    """The new password from stdin's first line, or asked twice on the terminal."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass("New password: ")
    return first if getpass.getpass("Repeat it: ") == first else ""


def _users_named(meta: Any, ref: str | None) -> list[Any]:
    """The users `--user` names: an id, an email, or (None) the first admin."""
    from trail.services import signin
    from trail.validation import is_uuid

    if ref is None:
        user_id = signin.store(meta).first_admin_id() or ""
    elif is_uuid(ref):
        user_id = ref.lower()
    else:
        return list(meta.users_by_email(ref))
    user = meta.get_user(user_id)
    return [user] if user is not None else []


def _set_password(meta: Any, config: Any, args: argparse.Namespace) -> dict[str, Any] | str:
    """Do what `trail admin set-password` was asked; the outcome, or the problem as text."""
    from datetime import UTC, datetime

    from trail.services import signin

    users = _users_named(meta, args.user)
    if len(users) != 1:
        return f"{len(users)} users match {args.user or 'the first admin'}"
    user = users[0]
    if args.link:
        if args.email is not None:
            signin.set_email(meta, user.id, args.email)
        link, expires = signin.create_link(meta, config, user.id)
        stamp = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"id": user.id, "link": link, "expires_at": stamp}
    password = _read_password(args)
    if password is None:
        return "no terminal to ask on: use --password-stdin or --link"
    if password == "":
        return "no password given, or the two differ"
    revoked = signin.set_password(meta, user.id, password, args.email)
    email = args.email.lower() if args.email else user.email
    return {"id": user.id, "email": email, "revoked_sessions": revoked}


def cmd_set_password(args: argparse.Namespace) -> int:
    from trail.errors import FieldError

    config = load(args.config, flags={"data_dir": args.data_dir})
    meta = _open_meta(config)
    try:
        out = _set_password(meta, config, args)
    except FieldError as e:
        out = f"{'--email' if e.field == 'email' else e.field}: {e.problem}"
    except KeyError as e:
        out = "--email: already in use" if e.args == ("email",) else "the user is gone"
    finally:
        meta.close()
    if isinstance(out, str):
        return _fail(out)
    if args.json:
        print(orjson.dumps(out).decode())
    else:
        print("\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            code = cmd_serve(args)
        elif args.command == "geoip":
            code = run_geoip_command(args)
        elif args.command in ("export", "import", "migrate"):
            code = run_data_command(args) or 0
        elif args.admin_command == "set-password":
            code = cmd_set_password(args)
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

"""trail's settings: defaults < TOML file < TRAIL_* environment < command-line flags.

`load()` merges the sources and `validate()` checks every value once, at startup, so the rest of
the code can trust a `Config`. A `Config` travels to child processes as JSON (`to_json`/`from_json`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

LOG_LEVELS = ("debug", "info", "warning", "error")
SESSION_STORES = ("lmdb", "redis")
REDIS_SCHEMES = ("redis", "redis+unix", "unix")
META_STORES = ("lmdb", "postgres")
STORAGES = ("embedded", "clickhouse")
MMDB_MARKER = b"\xab\xcd\xefMaxMind.com"


class ConfigError(Exception):
    """A setting has a bad value; `setting` names it the way the user wrote it."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20
    max_batch: int = 1000
    page_view_cap: int = 200
    # A batch item's `time` may lie this far in the past or future (rust_core/src/validate.rs).
    max_hit_age_days: int = 365
    max_hit_future_seconds: int = 300


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: str = "./data"
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    fsync_interval_ms: int = 1000
    strict_fsync: bool = False
    seal_interval_ms: int = 1000
    seal_rows: int = 50_000
    geoip_db: str | None = None
    # Monthly refresh of the DB-IP database `trail geoip update` put in <data_dir>/geoip (the
    # maintenance process, trail/geoip.py). None = on when that file exists and geoip_db is unset.
    geoip_auto_update: bool | None = None
    trusted_proxies: tuple[str, ...] = ()
    # IPs and CIDR ranges whose hits are dropped on every site (reason "ip_blocked").
    blocked_ips: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    polars_threads: int = 1
    log_level: str = "info"
    # "<requests>/<seconds>" per key, "0" = off (raised for load tests, off for server-side ingestion).
    rate_limit_collect: str = "10/10"
    rate_limit_api: str = "60/60"
    # Outgoing mail (email reports, traffic alerts); smtp_host "" = mail is off.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "trail@localhost"
    smtp_starttls: bool = True
    # How long a worker may go on using a site's previous rules (hostnames, filters) and a deleted
    # access key: the price of not reading LMDB on every hit. 0 = read every time.
    rules_cache_ms: int = 2000
    access_key_cache_ms: int = 2000
    # Dashboard sign-in (trail/services/signin.py): how long a session lasts, how long a
    # set-password link works, sign-in attempts per client IP and per account (email).
    session_lifetime_s: int = 14 * 86400
    password_link_lifetime_s: int = 86400
    rate_limit_signin_ip: str = "30/600"
    rate_limit_signin_account: str = "10/600"
    # true: the session cookie is always Secure; false: only when the request came over https
    # (X-Forwarded-Proto from a trusted proxy).
    cookie_secure: bool = False
    # Where people reach trail (e.g. https://trail.example.com), for the set-password links it
    # prints and as an accepted Origin; "" = http://<host>:<port>.
    public_url: str = ""
    # Where the session state machine keeps sessions, daily salts and rate-limit windows: "lmdb"
    # (<data_dir>/state, one box) or "redis" (`redis_url`, shared by several nodes).
    session_store: str = "lmdb"
    redis_url: str = ""
    # Where accounts, users, sites, keys and settings live: "lmdb" (<data_dir>/meta) or
    # "postgres" (postgres_url, a postgresql:// URL; shared by every node of a cluster).
    meta_store: str = "lmdb"
    postgres_url: str = ""
    # Where analytics rows go besides the WAL and segments: "embedded" (segments only) or
    # "clickhouse" (the maintenance process also ships sealed rows to clickhouse_url,
    # trail/clickhouse/url.py says what it may be).
    storage: str = "embedded"
    clickhouse_url: str = ""

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Config:
        raw = orjson.loads(text)
        raw["limits"] = Limits(**raw.get("limits", {}))
        raw["trusted_proxies"] = tuple(raw.get("trusted_proxies", ()))
        raw["blocked_ips"] = tuple(raw.get("blocked_ips", ()))
        return cls(**raw)


# Setting name -> expected type, for the TOML file, the environment and the flags alike.
_TYPES: dict[str, type] = {
    "host": str,
    "port": int,
    "data_dir": str,
    "workers": int,
    "fsync_interval_ms": int,
    "strict_fsync": bool,
    "seal_interval_ms": int,
    "seal_rows": int,
    "geoip_db": str,
    "geoip_auto_update": bool,
    "trusted_proxies": list,
    "blocked_ips": list,
    "polars_threads": int,
    "log_level": str,
    "rate_limit_collect": str,
    "rate_limit_api": str,
    "smtp_host": str,
    "smtp_port": int,
    "smtp_user": str,
    "smtp_password": str,
    "smtp_from": str,
    "smtp_starttls": bool,
    "rules_cache_ms": int,
    "access_key_cache_ms": int,
    "session_lifetime_s": int,
    "password_link_lifetime_s": int,
    "rate_limit_signin_ip": str,
    "rate_limit_signin_account": str,
    "cookie_secure": bool,
    "public_url": str,
    "session_store": str,
    "redis_url": str,
    "meta_store": str,
    "postgres_url": str,
    "storage": str,
    "clickhouse_url": str,
}
_LIMIT_TYPES: dict[str, type] = {
    "max_body_bytes": int,
    "max_batch": int,
    "page_view_cap": int,
    "max_hit_age_days": int,
    "max_hit_future_seconds": int,
}


def load(
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    create_data_dir: bool = True,
) -> Config:
    """Merge defaults, the TOML file, TRAIL_* variables and flags (None = not given), then validate."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    config_file = config_file or env.get("TRAIL_CONFIG") or None
    if config_file:
        _merge_toml(config_file, values, limits)
    _merge_env(env, values, limits)
    for name, value in (flags or {}).items():
        if value is None:
            continue
        if name in _LIMIT_TYPES:
            limits[name] = _check_type(name, value, _LIMIT_TYPES[name])
        else:
            values[name] = _check_type(name, value, _TYPES[name])
    values["limits"] = Limits(**limits)
    for name in ("trusted_proxies", "blocked_ips"):
        if name in values:
            values[name] = tuple(values[name])
    config = Config(**values)
    return validate(config, create_data_dir=create_data_dir)


def _merge_toml(path: str, values: dict[str, Any], limits: dict[str, Any]) -> None:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ConfigError("config", f"cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("config", f"{path} is not valid TOML: {e}") from None
    for key, value in doc.items():
        if key == "limits" and isinstance(value, dict):
            for lkey, lvalue in value.items():
                if lkey not in _LIMIT_TYPES:
                    raise ConfigError(f"limits.{lkey}", f"unknown setting in {path}")
                limits[lkey] = _check_type(f"limits.{lkey}", lvalue, _LIMIT_TYPES[lkey])
        elif key in _TYPES:
            values[key] = _check_type(key, value, _TYPES[key])
        else:
            raise ConfigError(key, f"unknown setting in {path}")


def _check_type(name: str, value: Any, expected: type) -> Any:
    # bool is an int subclass in Python; a TOML `port = true` is still a mistake.
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if expected is list and ok:
        ok = all(isinstance(v, str) for v in value)
    if not ok:
        want = {
            int: "an integer",
            str: "a string",
            bool: "true or false",
            list: "a list of strings",
        }
        raise ConfigError(name, f"expected {want[expected]}, got {value!r}")
    return value


def _merge_env(env: Mapping[str, str], values: dict[str, Any], limits: dict[str, Any]) -> None:
    for name, kind in list(_TYPES.items()) + list(_LIMIT_TYPES.items()):
        var = "TRAIL_" + name.upper()
        if var not in env:
            continue
        value = _parse_env(f"{name} ({var})", env[var], kind)
        (limits if name in _LIMIT_TYPES else values)[name] = value


def _parse_env(label: str, raw: str, kind: type) -> Any:
    raw = raw.strip()
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(label, f"{raw!r} is not an integer") from None
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(label, f"{raw!r} is not true or false")
    if kind is list:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def validate(config: Config, create_data_dir: bool = True) -> Config:
    """Check every setting; returns the config with host and data_dir normalised."""
    host = _check_host(config.host)
    _check_range("port", config.port, 1, 65535)
    _check_range("workers", config.workers, 1, 1024)
    _check_range("fsync_interval_ms", config.fsync_interval_ms, 1, 3_600_000)
    _check_range("seal_interval_ms", config.seal_interval_ms, 1, 3_600_000)
    _check_range("seal_rows", config.seal_rows, 1, 100_000_000)
    _check_range("polars_threads", config.polars_threads, 1, 1024)
    _check_range("smtp_port", config.smtp_port, 1, 65535)
    _check_range("rules_cache_ms", config.rules_cache_ms, 0, 3_600_000)
    _check_range("access_key_cache_ms", config.access_key_cache_ms, 0, 3_600_000)
    _check_range("session_lifetime_s", config.session_lifetime_s, 1, 366 * 86400)
    _check_range("password_link_lifetime_s", config.password_link_lifetime_s, 1, 30 * 86400)
    if config.smtp_host and "@" not in config.smtp_from:
        raise ConfigError("smtp_from", f"{config.smtp_from!r} is not an email address")
    _check_range("limits.max_body_bytes", config.limits.max_body_bytes, 1024, 1 << 30)
    _check_range("limits.max_batch", config.limits.max_batch, 1, 1_000_000)
    _check_range("limits.page_view_cap", config.limits.page_view_cap, 1, 1_000_000)
    _check_range("limits.max_hit_age_days", config.limits.max_hit_age_days, 1, 36_500)
    _check_range("limits.max_hit_future_seconds", config.limits.max_hit_future_seconds, 0, 86_400)
    for name in (
        "rate_limit_collect",
        "rate_limit_api",
        "rate_limit_signin_ip",
        "rate_limit_signin_account",
    ):
        parse_rate(name, getattr(config, name))
    if config.log_level.lower() not in LOG_LEVELS:
        raise ConfigError(
            "log_level", f"{config.log_level!r} is not one of {', '.join(LOG_LEVELS)}"
        )
    for name in ("trusted_proxies", "blocked_ips"):
        for entry in getattr(config, name):
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ConfigError(name, f"{entry!r} is not an IP address or CIDR") from None
    _check_meta_store(config)
    _check_storage(config)
    geoip = _check_geoip(config.geoip_db) if config.geoip_db else None
    session_store = _check_session_store(config.session_store, config.redis_url)
    data_dir = _check_data_dir(config.data_dir, create_data_dir)
    return dataclasses.replace(
        config,
        host=host,
        data_dir=data_dir,
        geoip_db=geoip,
        log_level=config.log_level.lower(),
        public_url=_check_public_url(config.public_url),
        session_store=session_store,
        redis_url=config.redis_url.strip(),
        trusted_proxies=tuple(p.strip() for p in config.trusted_proxies),
        blocked_ips=tuple(p.strip() for p in config.blocked_ips),
    )


def parse_rate(name: str, value: str) -> tuple[int, int] | None:
    """A rate-limit setting "<requests>/<seconds>" -> (requests, window ms); "0" or "off" -> None."""
    raw = value.strip().lower()
    if raw in ("0", "off", ""):
        return None
    count, sep, seconds = raw.partition("/")
    if not (sep and count.isdigit() and seconds.isdigit()) or int(count) < 1 or int(seconds) < 1:
        raise ConfigError(name, f"{value!r} is not <requests>/<seconds> (e.g. 60/60) or 0 for off")
    if int(count) > 4_000_000_000 or int(seconds) > 86_400:
        raise ConfigError(name, f"{value!r} is out of range (at most 4e9 requests per 86400 s)")
    return int(count), int(seconds) * 1000


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(name, f"{value} is out of range ({low}..{high})")


def _check_host(host: str) -> str:
    # Robyn binds a socket address, not a name; "localhost" is the one name worth accepting.
    if host.strip().lower() == "localhost":
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host.strip().strip("[]")))
    except ValueError:
        raise ConfigError(
            "host", f"{host!r} is not an IP address to bind (e.g. 127.0.0.1, 0.0.0.0, ::)"
        ) from None


def _check_public_url(url: str) -> str:
    """The URL without its trailing slash: empty, or http(s) without query or fragment."""
    if not url.strip():
        return ""
    try:
        parts = urlsplit(url.strip())
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        ok = False
    if not ok or parts.query or parts.fragment:
        raise ConfigError(
            "public_url", f"{url!r} is not an http(s) URL like https://trail.example.com"
        )
    return url.strip().rstrip("/")


def _check_session_store(store: str, redis_url: str) -> str:
    """The store's name; with "redis", the URL must parse and its server answer (PING)."""
    name = store.strip().lower()
    if name not in SESSION_STORES:
        raise ConfigError("session_store", f"{store!r} is not one of {', '.join(SESSION_STORES)}")
    if name == "lmdb":
        return name
    url = redis_url.strip()
    if not url:
        raise ConfigError("redis_url", 'is required with session_store = "redis"')
    scheme = url.partition("://")[0].lower()
    if scheme not in REDIS_SCHEMES or not url.partition("://")[2]:
        raise ConfigError(
            "redis_url",
            "expected redis://[user:password@]host[:port][/db] or unix:///path/to/redis.sock",
        )
    from trail.core import ConfigError as EngineConfigError
    from trail.core import redis_check

    try:
        redis_check(url)
    except EngineConfigError as e:
        # The engine's message names the setting and never repeats the URL (it may hold a
        # password).
        setting, _, message = str(e).partition(": ")
        raise ConfigError(setting, message) from None
    return name


def _check_meta_store(config: Config) -> None:
    """meta_store is known; with "postgres", postgres_url is a postgresql:// URL libpq reads.
    (Whether the server answers is checked when `trail serve` starts.)"""
    if config.meta_store not in META_STORES:
        raise ConfigError(
            "meta_store", f"{config.meta_store!r} is not one of {', '.join(META_STORES)}"
        )
    if config.meta_store != "postgres":
        return
    url = config.postgres_url.strip()
    if not url:
        raise ConfigError("postgres_url", 'required when meta_store = "postgres"')
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "postgres_url", "expected a URL like postgresql://user:password@host:5432/trail"
        )
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        _ = urlsplit(url).port  # libpq checks the port only when it connects
        conninfo_to_dict(url)
    except (ValueError, ProgrammingError) as e:  # both name the part they did not understand
        reason = str(e).strip().splitlines()[0]
        raise ConfigError("postgres_url", f"not a PostgreSQL URL ({reason})") from None


def _check_storage(config: Config) -> None:
    """storage is known; with "clickhouse", clickhouse_url names a database. (An unreachable
    server does not stop trail: rows wait on disk until it answers.)"""
    if config.storage not in STORAGES:
        raise ConfigError("storage", f"{config.storage!r} is not one of {', '.join(STORAGES)}")
    if config.storage != "clickhouse":
        return
    from trail.clickhouse.url import UrlError, parse

    if not config.clickhouse_url.strip():
        raise ConfigError("clickhouse_url", 'required when storage = "clickhouse"')
    try:
        parse(config.clickhouse_url)
    except UrlError as e:
        raise ConfigError("clickhouse_url", str(e)) from None


def _check_geoip(path: str) -> str:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError("geoip_db", f"{path} does not exist or is not a file")
    try:
        with open(p, "rb") as f:
            f.seek(max(0, p.stat().st_size - 128 * 1024))
            tail = f.read()
    except OSError as e:
        raise ConfigError("geoip_db", f"cannot read {path}: {e.strerror}") from None
    if MMDB_MARKER not in tail:
        raise ConfigError("geoip_db", f"{path} is not a MaxMind .mmdb database")
    return str(p.resolve())


def _check_data_dir(path: str, create: bool) -> str:
    p = Path(path).expanduser().resolve()
    try:
        if create:
            p.mkdir(parents=True, exist_ok=True)
        elif not p.is_dir():
            raise ConfigError("data_dir", f"{p} does not exist")
        with tempfile.NamedTemporaryFile(dir=p, prefix=".write-test-"):
            pass
    except ConfigError:
        raise
    except OSError as e:
        reason = e.strerror or str(e)
        raise ConfigError("data_dir", f"{p} is not a writable directory ({reason})") from None
    return str(p)

"""The `clickhouse_url` setting: where the ClickHouse backend writes and reads.

    http://user:password@host:8123/trail            a server over HTTP
    https://user:password@host:8443/trail           the same over TLS (certificates checked)
    https://...?verify=false                        TLS without checking the certificate
    https://...?ca_cert=/etc/ssl/ca.pem             TLS checked against this CA bundle
    chdb:///var/lib/trail/clickhouse?database=trail ClickHouse's engine in this process (chDB)

The path of an http(s) URL names the database ("trail" when empty). Parsing imports nothing
heavy, so the configuration can check the setting before any worker starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_DATABASE = "trail"
_DATABASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_OPTIONS = {"verify", "ca_cert", "database"}


class UrlError(ValueError):
    """A `clickhouse_url` that cannot name a ClickHouse database; the message says why."""


@dataclass(frozen=True)
class Target:
    """A parsed `clickhouse_url`."""

    interface: str  # "http", "https" or "chdb"
    database: str
    host: str = ""
    port: int = 0
    user: str = "default"
    password: str = ""
    verify: bool = True
    ca_cert: str = ""
    path: str = ""  # the chDB directory

    def describe(self) -> str:
        """The target without its password, for logs and /health."""
        if self.interface == "chdb":
            return f"chdb://{self.path} (database {self.database})"
        return f"{self.interface}://{self.user}@{self.host}:{self.port}/{self.database}"


def parse(url: str) -> Target:
    """A Target from a `clickhouse_url`; UrlError names what is wrong."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise UrlError(f"not a URL ({e})") from None
    options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise UrlError(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(_OPTIONS))})")
    verify = _flag(options.get("verify", "true"))
    if parts.scheme == "chdb":
        if parts.netloc or not parts.path.startswith("/"):
            raise UrlError("a chdb URL names an absolute directory: chdb:///path/to/dir")
        database = _database(options.get("database", DEFAULT_DATABASE))
        return Target("chdb", database, path=parts.path)
    if parts.scheme not in ("http", "https"):
        raise UrlError(
            "expected http://, https:// or chdb:// (e.g. https://user:pw@host:8443/trail)"
        )
    if not parts.hostname:
        raise UrlError("the URL has no host")
    if "database" in options:
        raise UrlError("the database of an http(s) URL is its path, e.g. https://host:8443/trail")
    database = _database(unquote(parts.path.strip("/")) or DEFAULT_DATABASE)
    return Target(
        parts.scheme,
        database,
        host=parts.hostname,
        port=port or (8443 if parts.scheme == "https" else 8123),
        user=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
        verify=verify,
        ca_cert=options.get("ca_cert", ""),
    )


def _database(name: str) -> str:
    if not _DATABASE.fullmatch(name):
        raise UrlError(f"{name!r} is not a database name (letters, digits and '_')")
    return name


def _flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise UrlError(f"verify={raw!r} is not true or false")

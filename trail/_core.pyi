"""Type stubs for the native module built from rust_core/ (keep in step with glue.rs)."""

from os import PathLike
from typing import Any

__version__: str

class InvalidInput(ValueError):
    """args == (field, message)."""

class StorageError(OSError): ...
class ConfigError(ValueError): ...

class Engine:
    def __init__(
        self,
        data_dir: str | PathLike[str],
        worker_id: int,
        options: dict[str, Any],
        ua_rules: dict[str, list[tuple[str, str | None, str | None, str | None, str | None]]],
        bot_lists: dict[str, list[str]],
    ) -> None: ...
    def ingest_api(
        self,
        site_id: str,
        site_hostname: str,
        kind: str,
        body: bytes,
        batch: bool = False,
        now: int | None = None,
    ) -> dict[str, Any]: ...
    def ingest_browser(
        self,
        site_id: str,
        site_hostname: str,
        kind: str,
        body: bytes,
        peer: str,
        headers: list[tuple[str, str]],
        now: int | None = None,
    ) -> dict[str, Any]: ...
    def rules_version(self, site_id: str) -> int | None: ...
    def set_rules(
        self, site_id: str, version: int, hostnames: list[str], filters: list[tuple[str, str]]
    ) -> None: ...
    def seal(self) -> int: ...
    def close(self) -> None: ...
    def drop_counts(self) -> dict[str, int]: ...
    def rate_limit(self, key: str, limit: int, window_ms: int) -> int: ...

class SessionState:
    def __init__(self, data_dir: str | PathLike[str]) -> None: ...
    def sweep(self, max_age_ms: int | None = None) -> int: ...
    def sweep_rate_limits(self, window_ms: int) -> int: ...
    def sync(self) -> None: ...

def recover_wal(data_dir: str | PathLike[str], worker_id: int) -> None: ...
def client_ip(peer: str, headers: list[tuple[str, str]], trusted_proxies: list[str]) -> str: ...

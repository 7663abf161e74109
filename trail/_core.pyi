"""Type stubs for the native module built from rust_core/ (keep in step with glue.rs)."""

from os import PathLike
from typing import Any, Self, final

__all__ = [
    "LIMITS",
    "ConfigError",
    "Engine",
    "InvalidInput",
    "SessionState",
    "StorageError",
    "Unavailable",
    "__version__",
    "client_ip",
    "coarse_channel",
    "distinct_u64",
    "group_counts",
    "group_stats",
    "imported_dims",
    "mmdb_check",
    "recover_wal",
    "redis_check",
    "release_memory",
    "run_group_counts",
    "runs_have",
    "session_metrics",
    "sorted_positions",
    "time_on_page_by_bucket",
    "time_on_page_by_bucket_chunks",
    "time_part_counts",
    "times_on_page",
    "union_visitors",
]
__version__: str

# Validation limits shared with Python (rust_core/src/validate.rs): "url", "hostname" and
# "title" in characters, "screen" in pixels, "event_duration" in seconds, "event_name"
# characters, "tags" pairs per hit.
LIMITS: dict[str, int]

class InvalidInput(ValueError):
    """args == (field, message)."""

class StorageError(OSError): ...
class ConfigError(ValueError): ...

class Unavailable(StorageError):
    """The Redis session store cannot serve now; the request stored nothing."""

@final
class Engine:
    def __new__(
        cls,
        data_dir: str | PathLike[str],
        worker_id: int,
        options: dict[str, Any],
        ua_rules: dict[str, list[tuple[str, str | None, str | None, str | None, str | None]]],
        bot_lists: dict[str, list[str]],
    ) -> Self: ...
    def ingest_api(
        self,
        site_id: str,
        site_hostname: str,
        kind: str,
        body: bytes | str,
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
    def browser(
        self,
        route: str,
        body: bytes | str,
        query: dict[str, list[str]] | list[tuple[str, list[str]]],
        peer: str,
        headers: dict[str, str] | list[tuple[str, str]],
        origin: str,
        stamp: int,
        now: int | None = None,
    ) -> tuple[str, str, str, str, int]:
        """A browser route's request (collect, pirsch_hit, pirsch_event) from rate limit to
        stored rows: (outcome, cors, field or site key, message, retry-after seconds); outcome
        "lookup_id" / "lookup_code" asks for `put_browser_site` first. `query` (read for
        pirsch_hit only) and `headers` as dicts (Robyn's `to_dict()`) or as pairs."""
    def put_browser_site(
        self,
        kind: str,
        key: str,
        site: tuple[str, str, bool, list[str]] | None,
        stamp: int,
    ) -> None:
        """Remember (id, hostname, scripts_disabled, CORS hostnames) for a website id or
        identification code (`kind` "id" / "code") as of the meta store's `stamp`."""
    def reload_geoip(self, path: str) -> None:
        """Swap in the GeoIP database at `path`; hits in flight finish on the old one.
        Raises ConfigError (the old database stays) when it is not a readable MaxMind DB."""
    def rules_version(self, site_id: str) -> int | None: ...
    def set_rules(
        self, site_id: str, version: int, hostnames: list[str], filters: list[tuple[str, str]]
    ) -> None: ...
    def seal(self) -> int: ...
    def close(self) -> None: ...
    def drop_counts(self) -> dict[str, int]: ...
    def background_status(self) -> dict[str, Any]:
        """Whether the background WAL fsyncs and segment seals work.

        {"ok": bool, "error": str | None (the failure going on now), "last_error": str | None
        (the latest failure, even if since recovered), "last_error_at_ms": int | None (UTC),
        "errors": int (failures since the engine opened)}. Failures are also written to stderr
        when they start and when they end.
        """
    def rate_limit(self, key: str, limit: int, window_ms: int) -> int: ...
    def session_store_status(self) -> dict[str, Any]:
        """{"backend": "lmdb" | "redis", "ok": bool, "error": str | None}; Redis answers a PING."""

@final
class SessionState:
    def __new__(cls, data_dir: str | PathLike[str]) -> Self: ...
    def sweep(self, max_age_ms: int | None = None) -> int: ...
    def sweep_rate_limits(self, window_ms: int) -> int: ...
    def sync(self) -> None: ...

def recover_wal(data_dir: str | PathLike[str], worker_id: int) -> None: ...
def release_memory() -> None:
    """Return the free pages of this thread's allocator heap (mimalloc) to the system."""

def redis_check(url: str) -> None:
    """ConfigError ("redis_url: ...") unless `url` parses and its server answers a PING."""

def client_ip(peer: str, headers: list[tuple[str, str]], trusted_proxies: list[str]) -> str: ...
def mmdb_check(path: str, probes: list[str]) -> dict[str, Any]:
    """Open, verify and probe a MaxMind DB: {"database_type", "build_epoch", "ip_version",
    "node_count", "locations": [(country_code, region, city) per probe]}; ConfigError if bad."""

# Statistics kernels (rust_core/src/kernels.rs); trail.core sets them to None on older builds.
def distinct_u64(values: Any) -> int: ...
def sorted_positions(sorted: Any, values: Any) -> bytes: ...
def run_group_counts(visitors: Any, combos: Any, combo_group: Any, n_groups: int) -> list[int]: ...
def runs_have(
    visitors: Any, combos: Any, combo_group: Any, query_visitors: Any, query_groups: Any
) -> bytes: ...
def group_stats(
    keys: Any, visitors: Any, sessions: Any, times: Any
) -> tuple[
    list[int], list[int], list[int], list[int], list[int], list[int], list[int], list[int]
]: ...
def group_counts(
    keys: Any, visitors: Any, sessions: Any, flag_visitors: Any, flag_sessions: Any
) -> tuple[list[int], list[int], list[int], list[int], list[int], list[int]]: ...
def time_part_counts(
    times: Any,
    visitors: Any,
    sessions: Any,
    flag_visitors: Any,
    flag_sessions: Any,
    shift: int,
    unit: int,
    add: int,
    modulus: int,
) -> tuple[list[int], list[int], list[int], list[int], list[int], list[int]]: ...
def time_on_page_by_bucket(
    visitors: Any, sessions: Any, times: Any, durations: Any, breaks: list[int]
) -> tuple[list[int], list[int], list[tuple[int, int]]]: ...
def time_on_page_by_bucket_chunks(
    visitors: list[Any],
    sessions: list[Any],
    times: list[Any],
    durations: list[Any],
    breaks: list[int],
) -> tuple[list[int], list[int], list[tuple[int, int]]]: ...
def times_on_page(
    visitors: Any, sessions: Any, times: Any, durations: Any
) -> tuple[bytes, list[tuple[int, int]]]: ...
def session_metrics(
    keys: Any, visitors: Any, sessions: Any, signs: Any, page_views: Any, bounces: Any
) -> tuple[list[int], list[int], list[int], list[int], list[int], list[int]]: ...
def union_visitors(
    ids: Any, id_offsets: Any, deltas: Any, lens: Any, days: Any, groups: Any, n_groups: int
) -> list[int]: ...
def coarse_channel(channel: str) -> str: ...
def imported_dims(
    site_hostname: str,
    rows: list[tuple[str, str, str, str, str, str, str, int]],
    ua_rules: dict[str, list[tuple[str, str | None, str | None, str | None, str | None]]]
    | None = None,
) -> dict[str, list[Any]]:
    """Session dimensions of imported rows, one per (referrer, utm_source, user_agent, browser,
    browser_version, os, os_version, screen_width): a dict of columns (referrer, referrer_name,
    channel, utm_source, browser, browser_version, os, os_version, screen_class, desktop,
    mobile, screen_width). Without `ua_rules` no User-Agent is parsed."""

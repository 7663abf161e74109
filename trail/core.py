"""The one place that imports the native module; everything else imports from here."""

from trail._core import (
    LIMITS,
    ConfigError,
    Engine,
    InvalidInput,
    SessionState,
    StorageError,
    client_ip,
    coarse_channel,
    distinct_u64,
    group_stats,
    mmdb_check,
    recover_wal,
    session_metrics,
    time_on_page_by_bucket,
    times_on_page,
    union_visitors,
)

__all__ = [
    "LIMITS",
    "ConfigError",
    "Engine",
    "InvalidInput",
    "SessionState",
    "StorageError",
    "client_ip",
    "coarse_channel",
    "distinct_u64",
    "group_stats",
    "mmdb_check",
    "recover_wal",
    "session_metrics",
    "time_on_page_by_bucket",
    "times_on_page",
    "union_visitors",
]

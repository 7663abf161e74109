"""The one place that imports the native module; everything else imports from here."""

from trail._core import (
    ConfigError,
    Engine,
    InvalidInput,
    SessionState,
    StorageError,
    client_ip,
    coarse_channel,
    recover_wal,
)

try:  # statistics kernels (trail.stats.kernels); an older build lacks them: numpy/Polars stand in
    from trail._core import distinct_u64, group_stats, session_metrics, union_visitors
except ImportError:  # pragma: no cover - depends on the build
    distinct_u64 = group_stats = session_metrics = union_visitors = None  # type: ignore[assignment]

__all__ = [
    "ConfigError",
    "Engine",
    "InvalidInput",
    "SessionState",
    "StorageError",
    "client_ip",
    "coarse_channel",
    "distinct_u64",
    "group_stats",
    "recover_wal",
    "session_metrics",
    "union_visitors",
]

"""The one place that imports the native module; everything else imports from here."""

from trail._core import (
    ConfigError,
    Engine,
    InvalidInput,
    SessionState,
    StorageError,
    client_ip,
    recover_wal,
)

try:  # statistics kernels (trail.stats.kernels); an older build lacks them: numpy stands in
    from trail._core import distinct_u64
except ImportError:  # pragma: no cover - depends on the build
    distinct_u64 = None

__all__ = [
    "ConfigError",
    "Engine",
    "InvalidInput",
    "SessionState",
    "StorageError",
    "client_ip",
    "distinct_u64",
    "recover_wal",
]

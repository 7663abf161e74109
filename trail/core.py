"""The one place that imports the native module; everything else imports from here."""

from trail._core import ConfigError, Engine, InvalidInput, SessionState, StorageError, client_ip, recover_wal

__all__ = ["ConfigError", "Engine", "InvalidInput", "SessionState", "StorageError", "client_ip", "recover_wal"]

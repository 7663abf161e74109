"""What every request handler of a worker can reach: settings, the meta store, the engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trail.config import Config
from trail.core import Engine
from trail.storage.meta import MetaStore


@dataclass
class Context:
    config: Config
    meta: MetaStore
    engine: Engine  # the worker's hot path: sessions, WAL, segments (trail._core)
    data_dir: Path
    worker_id: int = 0

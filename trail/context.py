"""What every request handler of a worker can reach: settings, the meta store, the engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trail.config import Config
from trail.storage.meta import MetaStore


@dataclass
class Context:
    config: Config
    meta: MetaStore
    engine: Any | None  # trail._core.Engine once the ingest service opened it
    data_dir: Path
    worker_id: int = 0

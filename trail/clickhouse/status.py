"""The shipper's counters, published in `<data_dir>/clickhouse/status.json` for other processes
(`/health`, `/metrics`, the workers' choice of backend, the tests)."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from trail.clickhouse.spool import root


@dataclass
class Counters:
    """What the shipper did since it started, and how far behind it is."""

    target: str = ""
    connected: bool = False
    rows_shipped: int = 0  # since the data directory's first batch
    batches: int = 0
    retries: int = 0
    pending_rows: int = 0  # committed rows in the spool not yet acknowledged
    pending_files: int = 0
    lag_seconds: float = 0.0  # age of the oldest row waiting (its generation's start)
    deletions_applied: int = 0  # tombstones applied to ClickHouse since the shipper started
    deletions_pending: int = 0  # tombstones not applied yet
    last_error: str = ""
    last_batch_at: float = 0.0


def publish(data_dir: Path, counters: Counters) -> None:
    """Write the counters where other processes read them (`read_status`)."""
    path = root(data_dir) / "status.json"
    tmp = path.with_name(".status.json.tmp")
    tmp.write_bytes(orjson.dumps({**asdict(counters), "updated_at": time.time()}))
    os.replace(tmp, path)


def read_status(data_dir: Path | str) -> dict[str, Any] | None:
    """The shipper's counters as it last wrote them (None before its first round)."""
    try:
        return dict(orjson.loads((root(data_dir) / "status.json").read_bytes()))
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None

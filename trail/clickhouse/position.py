"""The shipper's durable state: where it is, who it is, that it runs.

<data_dir>/clickhouse/:

    shipper.json   the position: rows shipped per spooled file, and the batch in flight
                   ({"pending": [[file, start, end], ...]}), written before the batch is sent
    node-id        this data directory's id, part of every deduplication token (several nodes
                   ship to one ClickHouse, and their spooled files can have the same names)
    shipper.lock   flocked by the one shipper of the data directory
"""

from __future__ import annotations

import fcntl
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from trail.clickhouse.spool import root
from trail.storage.daydir import write_atomic

Slice = tuple[str, int, int]  # spooled file, first row, end row (exclusive)


@dataclass
class Position:
    offsets: dict[str, int] = field(default_factory=dict)
    pending: list[Slice] | None = None
    rows_shipped: int = 0
    batches: int = 0


class ShipperBusy(RuntimeError):
    """Another process ships this data directory already."""


def read_position(data_dir: Path) -> Position:
    try:
        raw = orjson.loads((root(data_dir) / "shipper.json").read_bytes())
    except FileNotFoundError:
        return Position()
    pending = raw.get("pending")
    return Position(
        offsets={str(k): int(v) for k, v in raw.get("offsets", {}).items()},
        pending=[(str(n), int(a), int(b)) for n, a, b in pending] if pending else None,
        rows_shipped=int(raw.get("rows_shipped", 0)),
        batches=int(raw.get("batches", 0)),
    )


def save_position(data_dir: Path, node: str, p: Position) -> None:
    body = {
        "node": node,
        "offsets": p.offsets,
        "pending": p.pending,
        "rows_shipped": p.rows_shipped,
        "batches": p.batches,
    }
    write_atomic(root(data_dir) / "shipper.json", orjson.dumps(body))


def node_id(data_dir: Path | str) -> str:
    """This data directory's id, made on first use."""
    path = root(data_dir) / "node-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, uuid.uuid4().hex.encode())
        return path.read_text().strip()


def lock(data_dir: Path) -> Any:
    """The open lock file, flocked: two shippers of one spool would send its rows twice."""
    root(data_dir).mkdir(parents=True, exist_ok=True)
    f = open(root(data_dir) / "shipper.lock", "a+b")  # noqa: SIM115  held while shipping
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise ShipperBusy(f"another process ships {data_dir} to ClickHouse") from None
    return f

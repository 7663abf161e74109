"""The shipper: sealed rows from the spool (trail.clickhouse.spool) into ClickHouse, in batches,
and deletions after them (trail.clickhouse.deletions).

A batch is up to `MAX_BATCH_ROWS` rows taken from the queue in order, sent once `BATCH_ROWS`
rows wait or `FLUSH_INTERVAL` seconds passed. Every insert (one per table in the batch) carries
an `insert_deduplication_token` derived from its position, the (file, first row, end row) slices
it holds (trail.clickhouse.batches). The batch is written to `shipper.json` before it is sent
(trail.clickhouse.position) and the position advances only after ClickHouse acknowledged every
insert, so after a crash the same batch is sent again with the same tokens and ClickHouse drops
what it already has (schema.DEDUP_WINDOW): no row is lost, none counted twice. Files fully
shipped leave the spool. Between batches it reads the deletions of the meta store (deleted
sites, deleted ranges of statistics: every node's) and applies those it has not applied yet.

When ClickHouse cannot be reached the rows stay in the spool; the shipper retries with
exponential backoff (up to `BACKOFF_MAX` seconds) and resumes in order.

    python -m trail.clickhouse.shipper --data-dir DIR --url URL [--drain]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from trail.clickhouse import batches, deletions
from trail.clickhouse.client import connect, migrate
from trail.clickhouse.position import (
    Position,
    ShipperBusy,
    Slice,
    lock,
    node_id,
    read_position,
    save_position,
)
from trail.clickhouse.spool import Discovery, Spooled, root, spool_dir, spooled
from trail.clickhouse.status import Counters, publish, read_status
from trail.clickhouse.url import Target, parse
from trail.storage.tables import StorageError

__all__ = ["Shipper", "ShipperBusy", "main", "read_status", "start"]

log = logging.getLogger("trail.clickhouse.shipper")

BATCH_ROWS = 10_000
MAX_BATCH_ROWS = 250_000
FLUSH_INTERVAL = 1.0
BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0
# Fault injection for the crash tests: SIGKILL this process right after the n-th acknowledged
# insert, before the position is written (the moment a lost acknowledgement matters most).
_KILL_AFTER_INSERTS = int(os.environ.get("TRAIL_CLICKHOUSE_KILL_AFTER_INSERTS", "0"))


class Shipper:
    """Ships the spool of one data directory to one ClickHouse database."""

    def __init__(
        self,
        data_dir: Path | str,
        target: Target,
        discovery: Discovery,
        batch_rows: int = BATCH_ROWS,
        max_batch_rows: int = MAX_BATCH_ROWS,
        meta: Any = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.meta = meta  # the meta store, where the deletions of every node are (None: none)
        self._lock = lock(self.data_dir)
        self.target = target
        self.discovery = discovery
        self.batch_rows = batch_rows
        self.max_batch_rows = max(batch_rows, max_batch_rows)
        self.node = node_id(self.data_dir)
        self.position = read_position(self.data_dir)
        self.counters = Counters(
            target=target.describe(),
            rows_shipped=self.position.rows_shipped,
            batches=self.position.batches,
        )
        self._client: Any = None
        self._rows: dict[str, int] = {}  # spooled file -> its row count
        self._last_flush = time.monotonic()
        self._failures = 0
        self._inserts = 0
        self._deletions_at = -FLUSH_INTERVAL  # when the deletions were last looked at
        self._meta_stamp: int | None = None  # the meta store's stamp at the last sync
        self._drop_shipped()

    # -- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event, discover: bool = False, drain: bool = False) -> None:
        """Ship until `stop` is set (or, with `drain`, until nothing is left to ship)."""
        while not stop.is_set():
            if discover:
                self.discovery.scan()
            try:
                deleted = self.delete()  # first: a batch planned next leaves their rows out
                shipped = self.step(flush=drain)
            except Exception as e:  # noqa: BLE001  the server, the network, a full disk: retried
                self._failed(e)
                stop.wait(self._backoff())
                continue
            self._failures = 0
            if drain and not shipped and not deleted and self._drained():
                return
            if not shipped:
                stop.wait(0.2 if drain else FLUSH_INTERVAL / 4)

    def step(self, flush: bool = False) -> bool:
        """Send the batch in flight, or the next one when it is due; True if one was shipped."""
        if self.position.pending is None:
            plan, waiting = self._plan()
            due = waiting >= self.batch_rows or (
                waiting > 0 and time.monotonic() - self._last_flush >= FLUSH_INTERVAL
            )
            if not plan or not (due or flush):
                publish(self.data_dir, self.counters)
                return False
            self.position.pending = plan
            save_position(self.data_dir, self.node, self.position)
        self._send(self.position.pending)
        self._acknowledged(self.position.pending)
        return True

    def delete(self) -> bool:
        """Apply the deletions ClickHouse lacks (none with a batch in flight); True if any."""
        now = time.monotonic()
        if self.position.pending is not None or now - self._deletions_at < FLUSH_INTERVAL:
            return False
        self._deletions_at = now
        self._sync()
        todo = deletions.waiting(self.data_dir)
        self.counters.deletions_pending = len(todo)
        # Nothing sent from this data directory yet (no batch, no history): none of their rows
        # can be in ClickHouse on its account, so a new node runs no DELETE of old deletions.
        fresh = self.position.batches == 0 and not (root(self.data_dir) / "history.json").exists()
        for site, stone in todo:
            if not fresh:
                deletions.apply(self._connected(), self.target.database, site, stone)
            deletions.record(self.data_dir, site, stone)
            self.counters.deletions_applied += 1
            self.counters.deletions_pending -= 1
            what = "the whole site" if stone is None else stone.to_json()
            done = "recorded (nothing shipped before it)" if fresh else "applied to clickhouse"
            log.info("deletion %s: site %s %s", done, site, what)
        if todo:
            publish(self.data_dir, self.counters)
        return bool(todo)

    def _sync(self) -> None:
        """Bring the meta store's deletions into the data directory (trail.clickhouse
        .deletions.sync). When the store does not answer, shipping goes on: a deletion learned
        later is applied after every batch sent before."""
        if self.meta is None:
            return
        try:
            stamp = self.meta.stamp()  # moves with every write: nothing new while it stays
            if stamp != self._meta_stamp:
                deletions.sync(self.meta, self.data_dir)
                self._meta_stamp = stamp
        except StorageError as e:
            log.warning("clickhouse deletions: the meta store does not answer: %s", e)

    # -- one batch --------------------------------------------------------------------------

    def _plan(self) -> tuple[list[Slice], int]:
        """The next batch's slices, and how many committed rows wait in all."""
        plan: list[Slice] = []
        planned = waiting = files = 0
        oldest: float | None = None
        for item in self._queue():
            done = self.position.offsets.get(item.name, 0)
            total = self._row_count(item.name)
            if total is None or done >= total:
                continue
            waiting += total - done
            files += 1
            if oldest is None:
                oldest = item.gen / 1e9
            if planned < self.max_batch_rows:
                end = min(total, done + self.max_batch_rows - planned)
                plan.append((item.name, done, end))
                planned += end - done
        self.counters.pending_rows = waiting
        self.counters.pending_files = files
        self.counters.lag_seconds = max(0.0, time.time() - oldest) if oldest else 0.0
        return plan, waiting

    def _connected(self) -> Any:
        if self._client is None:
            self._client = connect(self.target)
            migrate(self._client, self.target.database)
            self.counters.connected = True
        return self._client

    def _send(self, plan: list[Slice]) -> None:
        client = self._connected()
        spool = spool_dir(self.data_dir)
        for table, slices in batches.by_table(plan):
            rows = batches.read_slices(self.data_dir, spool, table, slices)
            if rows.num_rows:  # all deleted: nothing to send
                token = batches.slices_token(self.node, table, slices)
                batches.insert(client, self.target.database, table, rows, token)
            self._inserts += 1
            if self._inserts == _KILL_AFTER_INSERTS:
                os.kill(os.getpid(), signal.SIGKILL)

    def token(self, table: str, slices: list[Slice]) -> str:
        """The insert's deduplication token: its position, the same after any restart."""
        return batches.slices_token(self.node, table, slices)

    def _acknowledged(self, plan: list[Slice]) -> None:
        rows = sum(end - start for _, start, end in plan)
        offsets = dict(self.position.offsets)
        for name, _, end in plan:
            offsets[name] = end
        finished = [n for n, done in offsets.items() if done >= (self._row_count(n) or 0)]
        self.position = Position(
            offsets, None, self.position.rows_shipped + rows, self.position.batches + 1
        )
        save_position(self.data_dir, self.node, self.position)
        for name in finished:
            try:
                (spool_dir(self.data_dir) / name).unlink()
            except FileNotFoundError:
                pass
            self.position.offsets.pop(name, None)
            self._rows.pop(name, None)
        self._last_flush = time.monotonic()
        self.counters.rows_shipped = self.position.rows_shipped
        self.counters.batches = self.position.batches
        self.counters.last_batch_at = time.time()
        self.counters.last_error = ""
        publish(self.data_dir, self.counters)

    # -- state ------------------------------------------------------------------------------

    def _drop_shipped(self) -> None:
        """Unlink spooled files the position says are shipped (a crash can leave them)."""
        for name, done in list(self.position.offsets.items()):
            total = self._row_count(name)
            if total is None or done >= total:
                (spool_dir(self.data_dir) / name).unlink(missing_ok=True)
                self.position.offsets.pop(name)
                self._rows.pop(name, None)

    def _queue(self) -> Iterator[Spooled]:
        try:
            names = sorted(os.listdir(spool_dir(self.data_dir)))
        except FileNotFoundError:
            return
        for name in names:
            item = spooled(name)
            if item is not None and self.discovery.committed(item):
                yield item

    def _row_count(self, name: str) -> int | None:
        if name not in self._rows:
            try:
                import pyarrow as pa

                with pa.memory_map(str(spool_dir(self.data_dir) / name)) as source:
                    reader = pa.ipc.open_file(source)
                    count = sum(
                        reader.get_batch(i).num_rows for i in range(reader.num_record_batches)
                    )
            except FileNotFoundError:
                return None
            self._rows[name] = count
        return self._rows[name]

    def _drained(self) -> bool:
        return (
            self.counters.pending_rows == 0
            and self.counters.deletions_pending == 0
            and self.discovery.deferred == 0
            and not _wal_files(self.data_dir)
        )

    def _failed(self, error: Exception) -> None:
        self._failures += 1
        self.counters.retries += 1
        self.counters.last_error = f"{type(error).__name__}: {error}"[:500]
        if self.target.interface != "chdb":
            # chDB keeps one engine per process: keep the client that opened it.
            self._client = None
            self.counters.connected = False
        log.warning("clickhouse shipping failed (retry %d): %s", self._failures, error)
        publish(self.data_dir, self.counters)

    def _backoff(self) -> float:
        return float(min(BACKOFF_MAX, BACKOFF_MIN * 2 ** min(self._failures - 1, 16)))


def _wal_files(data_dir: Path) -> list[str]:
    try:
        return [n for n in os.listdir(data_dir / "wal") if n.endswith(".wal")]
    except FileNotFoundError:
        return []


# -- in the maintenance process ---------------------------------------------------------------


def start(
    data_dir: Path | str, url: str, stop: threading.Event, meta: Any = None
) -> tuple[Discovery, Shipper]:
    """The discovery (a maintenance task: it must run in the loop that runs compaction, see
    trail.clickhouse.spool) and a started shipping thread, which ends when `stop` is set;
    `meta` is the meta store, where the deletions are."""
    discovery = Discovery.open(data_dir)
    discovery.scan()
    shipper = Shipper(data_dir, parse(url), discovery, meta=meta)
    thread = threading.Thread(target=shipper.run, args=(stop,), name="clickhouse-shipper")
    thread.daemon = True
    thread.start()
    return discovery, shipper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trail.clickhouse.shipper")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--url", required=True, help="the clickhouse_url")
    parser.add_argument("--drain", action="store_true", help="exit once everything is shipped")
    parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    parser.add_argument("--max-batch-rows", type=int, default=MAX_BATCH_ROWS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    discovery = Discovery.open(args.data_dir)
    meta = deletions.open_meta(args.data_dir)
    try:
        shipper = Shipper(
            args.data_dir, parse(args.url), discovery, args.batch_rows, args.max_batch_rows, meta
        )
        shipper.run(stop, discover=True, drain=args.drain)
    finally:
        if meta is not None:
            meta.close()
    print(orjson.dumps(asdict(shipper.counters)).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())

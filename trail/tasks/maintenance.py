"""The maintenance process: periodic jobs outside the request path, one process per server.

    python -m trail.tasks.maintenance --config-json '{...}'

Each task runs every `interval` seconds; a failing task is logged and retried next round.
SIGTERM/SIGINT finish the current task and exit 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("trail.maintenance")


@dataclass
class Task:
    name: str
    interval: float  # seconds
    run: Callable[[Any], None]
    next_at: float = 0.0


def purge_tokens(state: Any) -> None:
    removed = state.meta.purge_expired_tokens()
    if removed:
        log.info("purged %d expired oauth tokens", removed)


def compact_segments(state: Any) -> None:
    from trail.tasks import compaction

    compaction.maintenance_task(state)


def default_tasks() -> list[Task]:
    from trail.tasks.compaction import DEFAULT_INTERVAL

    return [
        Task("purge_tokens", 600.0, purge_tokens),
        Task("compaction", DEFAULT_INTERVAL, compact_segments),
    ]


@dataclass
class State:
    config: Any
    meta: Any


def run(state: State, tasks: list[Task], stop: threading.Event, tick: float = 1.0) -> None:
    while not stop.is_set():
        now = time.monotonic()
        for task in tasks:
            if stop.is_set() or now < task.next_at:
                continue
            try:
                task.run(state)
            except Exception:
                log.exception("maintenance task %s failed", task.name)
            task.next_at = time.monotonic() + task.interval
        stop.wait(tick)


def _stop_when_orphaned(stop: threading.Event) -> None:
    """The supervisor keeps children in their own session: leave when it is gone."""
    parent = os.getppid()

    def loop() -> None:
        while not stop.is_set() and os.getppid() == parent:
            time.sleep(1.0)
        stop.set()

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="trail.tasks.maintenance")
    parser.add_argument("--config-json", default=os.environ.get("TRAIL_CONFIG_JSON"), required=False)
    args = parser.parse_args(argv)
    from trail.config import Config
    from trail.storage.meta import MetaStore
    from trail.worker import setup_logging

    config = Config.from_json(args.config_json)
    os.environ["POLARS_MAX_THREADS"] = str(config.polars_threads)
    setup_logging(config.log_level, "maintenance")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    _stop_when_orphaned(stop)
    meta = MetaStore.open(Path(config.data_dir) / "meta")
    try:
        run(State(config, meta), default_tasks(), stop)
    finally:
        meta.close()
    log.info("maintenance stopped")


if __name__ == "__main__":
    main()

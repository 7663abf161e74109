"""The maintenance process: periodic jobs outside the request path, one process per server.

    python -m trail.tasks.maintenance --config-json '{...}'

Each task runs every `interval` seconds; a failing task is logged and retried next round.
SIGTERM/SIGINT finish the current task and exit 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("trail.maintenance")
# How often the rows of deleted sites that reached the disk after their deletion are removed.
DELETED_SITES_INTERVAL = float(os.environ.get("TRAIL_DELETED_SITES_INTERVAL_S", "30"))
# How often queued import jobs are looked for (they run in a thread of their own).
IMPORT_JOBS_INTERVAL = float(os.environ.get("TRAIL_IMPORT_JOBS_INTERVAL_S", "2"))


@dataclass
class Task:
    name: str
    interval: float  # seconds
    run: Callable[[Any], None]
    next_at: float = 0.0


def purge_tokens(state: Any) -> None:
    from trail.storage.signins import SignInStore

    removed = state.meta.purge_expired_tokens()
    if removed:
        log.info("purged %d expired oauth tokens", removed)
    removed = SignInStore(state.meta).purge_expired()
    if removed:
        log.info("purged %d expired dashboard sessions and set-password links", removed)


def sweep_deleted_sites(state: Any) -> None:
    from trail.services.sites import sweep_deleted_sites

    sweep_deleted_sites(state.meta, Path(state.config.data_dir))


def compact_segments(state: Any) -> None:
    from trail.tasks import compaction

    compaction.maintenance_task(state)


def merge_live_days(state: Any) -> None:
    from trail.tasks import live_merge

    live_merge.maintenance_task(state)


def refresh_geoip(state: Any) -> None:
    """The monthly DB-IP download when geoip_auto_update is on, in a thread of its own (a slow
    download holds up no other task); failures are logged there and retried a day later."""
    from trail import geoip

    geoip.refresh_in_background(state.config)


def warm_dashboard_windows(state: Any) -> None:
    from trail.tasks import prewarm

    prewarm.task(state)


def run_import_jobs(state: Any) -> None:
    """Start the import jobs' thread when jobs wait (trail.services.imports)."""
    from trail.services.imports import Runner

    if state.imports is None:
        state.imports = Runner()
    state.imports.poke(state.meta, Path(state.config.data_dir))


def default_tasks() -> list[Task]:
    from trail.geoip import REFRESH_INTERVAL
    from trail.tasks import notifications
    from trail.tasks.compaction import DEFAULT_INTERVAL
    from trail.tasks.live_merge import INTERVAL as LIVE_MERGE_INTERVAL
    from trail.tasks.prewarm import INTERVAL as PREWARM_INTERVAL

    return [
        Task("purge_tokens", 600.0, purge_tokens),
        Task("sweep_deleted_sites", DELETED_SITES_INTERVAL, sweep_deleted_sites),
        Task("compaction", DEFAULT_INTERVAL, compact_segments),
        # One interval after start: the workers replay their WAL files then, and a setting of a
        # very long interval (the tests that ship sealed segments) means no live merge at all.
        Task(
            "live_merge",
            LIVE_MERGE_INTERVAL,
            merge_live_days,
            next_at=time.monotonic() + LIVE_MERGE_INTERVAL,
        ),
        Task("prewarm", PREWARM_INTERVAL, warm_dashboard_windows),
        Task("recover_retired_wals", 3600.0, recover_retired_wals),
        Task("refresh_geoip", REFRESH_INTERVAL, refresh_geoip),
        Task("import_jobs", IMPORT_JOBS_INTERVAL, run_import_jobs),
        # Not at start: a restart must not cut sessions that a batch import is still writing.
        Task("sweep_sessions", 300.0, sweep_sessions, next_at=time.monotonic() + 300.0),
        *notifications.tasks(Task),
    ]


def sweep_sessions(state: State) -> None:
    """Forget sessions idle for two hours (4x the timeout): the state env stays small.

    Idle is measured against the wall clock, so a batch import of old hits that pauses for
    longer than this between requests starts new sessions when it resumes. With
    session_store = "redis" the LMDB state is unused (Redis' keys expire): nothing to sweep,
    and the env is not opened.
    """
    if state.config.session_store == "redis":
        return
    removed = state.session_state().sweep(SESSION_MAX_IDLE_MS)
    state.session_state().sweep_rate_limits(RATE_WINDOW_MAX_MS)
    state.session_state().sync()
    if removed:
        log.info("swept %d idle sessions", removed)


def recover_retired_wals(state: State) -> None:
    """Replay WAL files of worker ids no longer running (e.g. after --workers was lowered)."""
    from trail.core import StorageError, recover_wal
    from trail.storage import layout

    try:
        names = os.listdir(layout.wal_dir(state.config.data_dir))
    except FileNotFoundError:
        names = []
    ids = {w[0] for n in names if (w := layout.wal_file(n)) is not None}
    for worker_id in sorted(i for i in ids if i >= state.config.workers):
        try:
            recover_wal(state.config.data_dir, worker_id)
            log.info("replayed the WAL left by retired worker %d", worker_id)
        except StorageError as e:
            log.warning("could not replay the WAL of worker %d: %s", worker_id, e)


SESSION_MAX_IDLE_MS = 2 * 3600 * 1000
RATE_WINDOW_MAX_MS = 3600 * 1000


@dataclass
class State:
    config: Any
    meta: Any
    _sessions: Any = None
    imports: Any = None  # the import jobs' runner, made on first use

    def session_state(self) -> Any:
        """The shared session/rate-limit state env, opened on first use (heed, via _core)."""
        if self._sessions is None:
            from trail.core import SessionState

            self._sessions = SessionState(self.config.data_dir)
        return self._sessions


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
    parser.add_argument(
        "--config-json", default=os.environ.get("TRAIL_CONFIG_JSON"), required=False
    )
    args = parser.parse_args(argv)
    from trail.config import Config
    from trail.storage.meta import MetaStore
    from trail.worker import fix_malloc_thresholds, setup_logging

    config = Config.from_json(args.config_json)
    fix_malloc_thresholds()  # compaction and the index builds free big blocks too
    os.environ["POLARS_MAX_THREADS"] = str(config.polars_threads)
    setup_logging(config.log_level, "maintenance")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    _stop_when_orphaned(stop)
    meta = MetaStore.open(Path(config.data_dir) / "meta")
    tasks = default_tasks()
    if config.storage == "clickhouse":
        from trail.clickhouse import shipper

        discovery, _ = shipper.start(config.data_dir, config.clickhouse_url, stop, meta)
        # First in every round, so compaction never deletes a segment before it is spooled.
        tasks.insert(0, Task("clickhouse_discovery", 1.0, discovery.task))
    try:
        run(State(config, meta), tasks, stop)
    finally:
        meta.close()
    log.info("maintenance stopped")


if __name__ == "__main__":
    main()

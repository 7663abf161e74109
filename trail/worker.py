"""One worker: a single-process Robyn app on the shared port (SO_REUSEPORT), started by the supervisor.

    python -m trail.worker --id N --config-json '{...}' [--ready-fd FD]

Everything holding OS resources (LMDB, the engine, Polars threads) is opened here, after start.
Stopping (SIGTERM/SIGINT, or the supervisor vanishing): actix stops accepting on its own signal
handler; ours waits for requests inside handlers to finish, closes the engine (which seals
segments and fsyncs the WAL) and the meta store, then exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

DRAIN_SECONDS = 10.0
log = logging.getLogger("trail.worker")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="trail.worker")
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--config-json", default=os.environ.get("TRAIL_CONFIG_JSON"))
    parser.add_argument("--ready-fd", type=int, default=None)
    args = parser.parse_args(argv)
    if not args.config_json:
        parser.error("--config-json (or TRAIL_CONFIG_JSON) is required")
    return args


def setup_logging(level: str, role: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s trail[{role}:%(process)d] %(levelname)s %(name)s: %(message)s",
    )


# mallopt(3) parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 4 * 1024 * 1024
TRIM_THRESHOLD = 8 * 1024 * 1024


def fix_malloc_thresholds() -> None:
    """Keep glibc from holding on to what queries freed. By default each freed block that had
    its own mapping raises the size above which blocks get one (up to 32 MiB) and the free top
    a heap keeps to twice that; after a burst of statistics requests a query thread's arena
    then kept tens of MB that `malloc_trim` does not give back (the top of a thread's heap is
    not trimmed by it). Fixed thresholds end that: blocks of 4 MiB and more (numpy's arrays)
    are mapped on their own and unmapped when freed, and a heap keeps at most 8 MiB free at its
    top. A no-op without glibc."""
    import ctypes

    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def quiet_framework_logs(level: str) -> None:
    """Robyn and actix log every route and start-up step at INFO; keep that for debug."""
    if level != "debug":
        for name in ("robyn", "robyn.logger", "actix_server", "actix_server.server"):
            logging.getLogger(name).setLevel(logging.WARNING)


class Stopper:
    """Runs the clean shutdown once, from a signal handler or the parent watchdog."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._once = threading.Lock()

    def __call__(self, signum: int = signal.SIGTERM, _frame: Any = None) -> None:
        if not self._once.acquire(blocking=False):
            return
        log.info("worker %d stopping (signal %d)", self.ctx.worker_id, signum)
        code = 0
        try:
            self._drain()
            self.ctx.engine.close()
            self.ctx.meta.close()
        except Exception:
            log.exception("worker %d: error while stopping", self.ctx.worker_id)
            code = 1
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        # Robyn's event loop and actix threads have no clean exit path from here.
        os._exit(code)

    def _drain(self) -> None:
        from trail.api.routing import IN_FLIGHT

        deadline = time.monotonic() + DRAIN_SECONDS
        idle_since = None
        while time.monotonic() < deadline:
            if IN_FLIGHT.count == 0:
                idle_since = idle_since or time.monotonic()
                # A request accepted just before actix stopped may still be on its way in.
                if time.monotonic() - idle_since >= 0.05:
                    return
            else:
                idle_since = None
            time.sleep(0.005)
        log.warning(
            "worker %d: %d requests still running after %.0f s",
            self.ctx.worker_id,
            IN_FLIGHT.count,
            DRAIN_SECONDS,
        )


def watch_parent(parent: int) -> None:
    """Stop cleanly if the supervisor `parent` disappears (its children live in their own
    session). Started first thing, so a supervisor that dies while the worker is still opening
    its stores is noticed too: the SIGTERM then finds the Stopper, or ends a worker that has
    nothing open yet (its WAL, if any, replays on the next start)."""

    def loop() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("supervisor is gone; worker stopping")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    watch_parent(os.getppid())
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from trail.config import Config

    config = Config.from_json(args.config_json)
    fix_malloc_thresholds()
    # Must precede any Polars import: Polars sizes its thread pool once, on import.
    os.environ["POLARS_MAX_THREADS"] = str(config.polars_threads)
    setup_logging(config.log_level, f"worker{args.id}")
    # Robyn parses sys.argv when imported; give it its own flags, not ours.
    robyn_level = "DEBUG" if config.log_level == "debug" else "WARN"
    sys.argv = [
        sys.argv[0],
        "--processes",
        "1",
        "--workers",
        "1",
        "--disable-openapi",
        "--log-level",
        robyn_level,
    ]
    from robyn.argument_parser import Config as RobynConfig

    from trail.api.dashboard import pages
    from trail.app import build_app
    from trail.context import Context
    from trail.geoip import Reloader
    from trail.services.ingest import open_engine
    from trail.storage.meta import MetaStore

    data_dir = Path(config.data_dir)
    # On PostgreSQL, another node's change reaches the site directory within rules_cache_ms.
    meta = MetaStore.open(data_dir / "meta", stamp_ttl_ms=config.rules_cache_ms)
    # A stop signal before the engine is open kills the worker: its WAL replays on the next start.
    geoip = Reloader(config)  # before the engine opens geoip_db: a change after it is seen
    engine = open_engine(config, data_dir, args.id)
    geoip.start(engine)  # the downloaded database (without geoip_db), and any newer file later
    ctx = Context(config=config, meta=meta, engine=engine, data_dir=data_dir, worker_id=args.id)
    stop = Stopper(ctx)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    quiet_framework_logs(config.log_level)
    app = build_app(ctx, RobynConfig())
    pages.prepare()
    _signal_ready_on_start(app, args.ready_fd, args.id)
    log.info("worker %d serving on %s:%d", args.id, config.host, config.port)
    app.start(host=config.host, port=config.port, _check_port=False)
    stop(signal.SIGTERM)  # Robyn returned on its own (e.g. KeyboardInterrupt): still close cleanly


def _signal_ready_on_start(app: Any, fd: int | None, worker_id: int) -> None:
    """Tell the supervisor we serve: from Robyn's startup event unless a route module owns it."""
    from robyn.events import Events

    if Events.STARTUP in app.event_handlers:
        _ready(fd, worker_id)  # Robyn keeps one startup handler; don't replace theirs
    else:
        app.startup_handler(lambda: _ready(fd, worker_id))


def _ready(fd: int | None, worker_id: int) -> None:
    if fd is None:
        return
    try:
        os.write(fd, f"ready {worker_id} {os.getpid()}\n".encode())
        os.close(fd)
    except OSError:
        pass  # the supervisor only uses this to print "listening"; never fatal


if __name__ == "__main__":
    main()

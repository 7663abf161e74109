"""The ceiling: a bare Robyn app whose `POST /api/v1/hit` returns "" and does nothing else.

Started exactly like trail's workers (trail/worker.py): N separate single-process Robyn apps
(`--processes 1 --workers 1`) binding the same port with `_check_port=False`, the port shared via
Robyn's SocketHeld (SO_REUSEPORT); same Robyn version, same Robyn log level, a sync handler.

    python bench/bare_app.py --host 127.0.0.1 --port 8001 --processes 2

`--keep-thread-state` does what trail's routes do (trail/api/routing.py, `ThreadStates`): keep the
Python thread state of Robyn's request thread between requests, so that part of Robyn's own
per-request cost can be told apart from the rest. `--busy-us N` has the handler spin for N µs
(reading the clock, touching no memory) before it answers: what a handler's own time costs the
whole server per request (`bench/busy_handler.py`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time


def spin(busy_ns: int) -> None:
    end = time.perf_counter_ns() + busy_ns
    while time.perf_counter_ns() < end:
        pass


def serve_one(
    host: str, port: int, log_level: str, keep_thread_state: bool, busy_us: float = 0
) -> None:
    # Robyn parses sys.argv when imported: give it the flags trail's worker gives it.
    sys.argv = [
        sys.argv[0],
        "--processes",
        "1",
        "--workers",
        "1",
        "--disable-openapi",
        "--log-level",
        log_level,
    ]
    from robyn import Robyn
    from robyn.argument_parser import Config as RobynConfig

    app = Robyn(__file__, config=RobynConfig())
    busy_ns = int(busy_us * 1000)

    if keep_thread_state:
        import ctypes

        kept = set()

        @app.post("/api/v1/hit")
        def hit(request):
            if threading.get_ident() not in kept:
                kept.add(threading.get_ident())
                ctypes.pythonapi.PyGILState_Ensure()  # never released: the state stays
            if busy_ns:
                spin(busy_ns)
            return ""

    else:

        @app.post("/api/v1/hit")
        def hit(request):
            if busy_ns:
                spin(busy_ns)
            return ""

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    app.start(host=host, port=port, _check_port=False)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--processes", type=int, default=2)
    # trail's default log_level "info" becomes Robyn's INFO (trail/worker.py)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--keep-thread-state", action="store_true")
    parser.add_argument("--busy-us", type=float, default=0.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve_one(args.host, args.port, args.log_level, args.keep_thread_state, args.busy_us)
        return
    argv = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--log-level",
        args.log_level,
        *(["--keep-thread-state"] if args.keep_thread_state else []),
        *(["--busy-us", str(args.busy_us)] if args.busy_us else []),
    ]
    children = [subprocess.Popen(argv, start_new_session=True) for _ in range(args.processes)]

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 5
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    stop()


if __name__ == "__main__":
    main()

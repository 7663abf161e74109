"""Ingest throughput with `session_store = "redis"` against `"lmdb"`, side by side in one run.

Two trail servers (2 workers each, fresh data dirs) and one redis-server (no persistence, loopback)
run at once; wrk drives `POST /api/v1/hit` with run.py's payloads against each in alternating
rounds (order swapped every round), one server idle while the other is measured. Reports the
median rate, latency and server CPU per request (for Redis: trail workers + redis-server).

    .venv/bin/python bench/sessions_ab.py [--rounds 3] [--seconds 5] [--conns 16]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # bench/run.py: the wrk harness


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = bench.free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(tmp)]  # fmt: skip
    bench.COMMANDS.append(" ".join(argv))
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, port


def start_trail(tmp: Path, name: str, env: dict[str, str]) -> bench.Trail:
    saved = bench.SERVER_ENV
    bench.SERVER_ENV = {**saved, **env}
    try:
        (tmp / name).mkdir()
        trail = bench.Trail(tmp / name / "data", bench.free_port())
        trail.start()
    finally:
        bench.SERVER_ENV = saved
    return trail


def measure(
    wrk: bench.Wrk, trails: dict[str, bench.Trail], keys: dict[str, str], redis_pid: int,
    conns: int, rounds: int, seconds: float,
) -> dict[str, Any]:  # fmt: skip
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trails}
    for name, trail in trails.items():  # warm-up: first sessions, caches
        wrk.run(f"{trail.base}/api/v1/hit", conns, 2, keys[name], record=False)
    names = list(trails)
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            trail = trails[name]
            pids = trail.worker_pids() + ([redis_pid] if name == "redis" else [])
            cpu0 = bench.cpu_seconds(pids)
            r = wrk.run(f"{trail.base}/api/v1/hit", conns, seconds, keys[name])
            used = bench.cpu_seconds(pids) - cpu0
            r["cpu_us"] = used / max(1, r["requests"]) * 1e6
            runs[name].append(r)
            bench.log(f"{name}: {r['rps']:.0f}/s, p99 {r['p99_us'] / 1000:.1f} ms")
    return {
        name: {
            "rps": statistics.median(r["rps"] for r in rs),
            "all_rps": [round(r["rps"]) for r in rs],
            "p50_ms": statistics.median(r["p50_us"] for r in rs) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in rs) / 1000,
            "cpu_us": statistics.median(r["cpu_us"] for r in rs),
            "errors": sum(r["status"] + r["timeout"] for r in rs),
        }
        for name, rs in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/sessions_ab.py")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--conns", type=int, default=16)
    args = parser.parse_args()
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="trail-sessions-ab-"))
    lists = bench.traffic_lists(tmp)
    redis, port = start_redis(tmp)
    trails: dict[str, bench.Trail] = {}
    try:
        trails["lmdb"] = start_trail(tmp, "lmdb", {})
        trails["redis"] = start_trail(
            tmp,
            "redis",
            {"TRAIL_SESSION_STORE": "redis", "TRAIL_REDIS_URL": f"redis://127.0.0.1:{port}/0"},
        )
        keys = {name: t.site("bench-hit")[1] for name, t in trails.items()}
        wrk = bench.Wrk(lists)
        result = measure(wrk, trails, keys, redis.pid, args.conns, args.rounds, args.seconds)
        result["ratio"] = result["redis"]["rps"] / result["lmdb"]["rps"]
        result["commands"] = bench.COMMANDS
        result["machine"] = bench.machine_info()
        print(json.dumps(result, indent=2))
    finally:
        for t in trails.values():
            t.stop()
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

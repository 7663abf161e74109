"""Worker memory of two trail trees side by side in one run, and what ingestion costs in each.

Each tree (a directory holding a `trail/` package with its built `_core`) serves from its own
directory (2 workers, fresh data dir, its code first on the path). Both take the same load at
once, one route at a time in rotating order: rounds of `POST /api/v1/hit` and `/api/v1/collect`
(wrk, bench/wrk.lua), then statistics reads (total, visitor, page, referrer, browser, country),
then a few seconds more of each route. Reports per worker RSS, PSS, RssAnon, RssFile and the peak
after each phase, and the workers' CPU per request of each route per round.

    .venv/bin/python bench/memory_ab.py --old <dir> --new <dir> [--rounds 3] [--seconds 5]
        [--env-old K=V ...] [--env-new K=V ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # bench/run.py: the wrk harness

REPORTS = ("total", "visitor", "page", "referrer", "browser", "country")


def start_trail(tmp: Path, name: str, code: Path, env: dict[str, str]) -> bench.Trail:
    """`trail serve` running the `trail/` under `code`: its workers (`python -m trail.worker`)
    import from their working directory first."""
    saved_env, saved_root = bench.SERVER_ENV, bench.ROOT
    bench.SERVER_ENV = {**saved_env, "PYTHONPATH": str(code), **env}
    bench.ROOT = code
    try:
        (tmp / name).mkdir()
        trail = bench.Trail(tmp / name / "data", bench.free_port())
        trail.start()
    finally:
        bench.SERVER_ENV, bench.ROOT = saved_env, saved_root
    return trail


def memory(pid: int) -> dict[str, float]:
    """MiB: VmRSS, VmHWM, RssAnon, RssFile (status) and Pss, LazyFree (smaps_rollup)."""
    out: dict[str, float] = {}
    for path, keys in (
        (f"/proc/{pid}/status", ("VmRSS", "VmHWM", "RssAnon", "RssFile")),
        (f"/proc/{pid}/smaps_rollup", ("Pss", "LazyFree")),
    ):
        for line in Path(path).read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in keys:
                out[key] = int(rest.split()[0]) / 1024
    return out


def snapshot(trails: dict[str, bench.Trail]) -> dict[str, list[dict[str, float]]]:
    return {name: [memory(pid) for pid in t.worker_pids()] for name, t in trails.items()}


def statistics_reads(trail: bench.Trail, site_id: str, rounds: int, conns: int) -> int:
    """`rounds` reads of each report, `conns` at a time (so both workers answer some)."""
    today = datetime.now(UTC).date()
    period = f"from={today - timedelta(days=1)}&to={today}"
    urls = [
        f"{trail.base}/api/v1/statistics/{report}?id={site_id}&{period}"
        for report in REPORTS
        for _ in range(rounds)
    ]
    failed = 0
    lock = threading.Lock()

    def worker(mine: list[str]) -> None:
        nonlocal failed
        for url in mine:
            status, _ = bench.http("GET", url, token=trail.admin_key, timeout=120)
            if status != 200:
                with lock:
                    failed += 1

    threads = [threading.Thread(target=worker, args=(urls[i::conns],)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failed


def ingest(
    wrk: bench.Wrk,
    trails: dict[str, bench.Trail],
    targets: dict[str, dict[str, tuple[str, str, str, dict[str, str]]]],
    conns: int,
    rounds: int,
    seconds: float,
    runs: dict[str, dict[str, list[dict[str, Any]]]],
) -> None:
    """Rounds of every (tree, route), the order rotated each round."""
    pairs = [(name, route) for route in ("hit", "collect") for name in trails]
    for i in range(rounds):
        for name, route in pairs[i % len(pairs) :] + pairs[: i % len(pairs)]:
            url, mode, key, site = targets[name][route]
            pids = trails[name].worker_pids()
            cpu0 = bench.cpu_seconds(pids)
            r = wrk.run(url, conns, seconds, key, mode=mode, site=site)
            r["cpu_us"] = (bench.cpu_seconds(pids) - cpu0) / max(1, r["requests"]) * 1e6
            runs[name][route].append(r)
            bench.log(f"{name} {route}: {r['rps']:.0f}/s, {r['cpu_us']:.0f} µs CPU/request")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/memory_ab.py")
    parser.add_argument("--old", type=Path, required=True)
    parser.add_argument("--new", type=Path, required=True)
    parser.add_argument("--env-old", action="append", default=[])
    parser.add_argument("--env-new", action="append", default=[])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--reads", type=int, default=12, help="reads of each report")
    parser.add_argument("--tail-seconds", type=float, default=3)
    parser.add_argument("--smaps", type=Path, help="copy each worker's smaps here at the end")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="trail-memory-ab-"))
    lists = bench.traffic_lists(tmp)
    trees = {
        "old": (args.old.resolve(), dict(kv.split("=", 1) for kv in args.env_old)),
        "new": (args.new.resolve(), dict(kv.split("=", 1) for kv in args.env_new)),
    }
    trails: dict[str, bench.Trail] = {}
    result: dict[str, Any] = {"trees": {k: str(v[0]) for k, v in trees.items()}}
    try:
        for name, (code, env) in trees.items():
            trails[name] = start_trail(tmp, name, code, env)
        result["after start"] = snapshot(trails)
        targets, stats_site = {}, {}
        for name, t in trails.items():
            hit_site, key = t.site("bench-hit")
            collect_site, _ = t.site("bench-collect")
            stats_site[name] = hit_site
            targets[name] = {
                "hit": (f"{t.base}/api/v1/hit", "hit", key, {}),
                "collect": (
                    f"{t.base}/api/v1/collect",
                    "collect",
                    "none",
                    {"BENCH_SITE_ID": collect_site},
                ),
            }
        wrk = bench.Wrk(lists)
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {
            name: {"hit": [], "collect": []} for name in trails
        }
        ingest(wrk, trails, targets, args.conns, args.rounds, args.seconds, runs)
        result["after ingest"] = snapshot(trails)
        for name, t in trails.items():
            failed = statistics_reads(t, stats_site[name], args.reads, 4)
            bench.log(f"{name}: {args.reads * len(REPORTS)} statistics reads, {failed} failed")
        result["after statistics"] = snapshot(trails)
        tail: dict[str, dict[str, list[dict[str, Any]]]] = {
            name: {"hit": [], "collect": []} for name in trails
        }
        ingest(wrk, trails, targets, args.conns, 1, args.tail_seconds, tail)
        result["after statistics and more ingest"] = snapshot(trails)
        time.sleep(5)
        result["5 s later"] = snapshot(trails)
        if args.smaps:
            args.smaps.mkdir(parents=True, exist_ok=True)
            for name, t in trails.items():
                for pid in t.worker_pids():
                    smaps = Path(f"/proc/{pid}/smaps").read_text()
                    (args.smaps / f"{name}-{pid}.smaps").write_text(smaps)
        result["cpu_us"] = {
            name: {
                route: {
                    "median": statistics.median(r["cpu_us"] for r in rs),
                    "rounds": [round(r["cpu_us"], 1) for r in rs],
                    "rps": [round(r["rps"]) for r in rs],
                }
                for route, rs in by_route.items()
            }
            for name, by_route in runs.items()
        }
        result["cpu_ratio_new_old"] = {
            route: statistics.median(
                n["cpu_us"] / o["cpu_us"]
                for n, o in zip(runs["new"][route], runs["old"][route], strict=True)
            )
            for route in ("hit", "collect")
        }
        result["commands"] = bench.COMMANDS
        result["load"] = bench.machine_info()
        print(json.dumps(result, indent=2))
    finally:
        for t in trails.values():
            t.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

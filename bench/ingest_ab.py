"""Every ingest route of two versions of trail side by side in one run, with the bare Robyn route
and (where Go is present) GoatCounter as reference points.

Two trail servers (2 workers each, fresh data dirs), one running the `trail` package of
`--before` (a copy of the source tree with its built `_core`), one running `--after` (default:
this tree); `bench/bare_app.py`; optionally GoatCounter as `bench/run.py --goatcounter` runs it.
wrk drives each route in rounds that rotate the order of all targets, one target at a time;
per target the median rate and server CPU per request (utime+stime of the trail workers, or of
GoatCounter's one process, over the round / requests answered; `cpu_all_us` counts every process
of the server: trail's supervisor and maintenance process too), with min-max.

Routes per trail server: `POST /api/v1/hit` (access key), `POST /api/v1/collect` (tracker.js),
`GET /api/v1/hit?code=` (pa.js) and `POST /api/v1/event` with an identification code (pa.js).

    .venv/bin/python bench/ingest_ab.py --before /tmp/before-tree [--rounds 5] [--seconds 5]
        [--conns 16] [--goatcounter] [--bare-kept] [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # bench/run.py: the wrk harness

ROUTES = ("hit", "collect", "pirsch_browser", "pirsch_event")


def trail_targets(name: str, trail: bench.Trail) -> dict[str, dict[str, Any]]:
    """wrk targets of every route of one trail server, each on a site of its own."""
    out = {}
    for route in ROUTES:
        site_id, key = trail.site(f"ab-{route.replace('_', '-')}")
        code = trail.identification_code(site_id)
        path = {"collect": "/api/v1/collect", "pirsch_event": "/api/v1/event"}.get(
            route, "/api/v1/hit"
        )
        out[f"{name}:{route}"] = {
            "url": trail.base + path,
            "mode": route,
            "key": key if route == "hit" else "none",
            "site": {"collect": {"BENCH_SITE_ID": site_id}, "hit": {}}.get(
                route, {"BENCH_CODE": code}
            ),
            "pids": trail.worker_pids,
            "all_pids": lambda trail=trail: bench.family(trail.proc.pid),
            "site_id": site_id,
            "trail": trail,
        }
    return out


def summarize(rs: list[dict[str, Any]]) -> dict[str, Any]:
    rps = [r["rps"] for r in rs]
    cpu = [r["cpu_us"] for r in rs]
    cpu_all = [r["cpu_all_us"] for r in rs]
    return {
        "rps": statistics.median(rps),
        "rps_range": (min(rps), max(rps)),
        "cpu_us": statistics.median(cpu),
        "cpu_range": (min(cpu), max(cpu)),
        "cpu_all_us": statistics.median(cpu_all),
        "cpu_all_range": (min(cpu_all), max(cpu_all)),
        "p50_ms": statistics.median(r["p50_us"] for r in rs) / 1000,
        "p99_ms": statistics.median(r["p99_us"] for r in rs) / 1000,
        "errors": sum(
            r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"] for r in rs
        ),
        "all_rps": [round(x) for x in rps],
    }


def per_round(runs: dict[str, list[dict[str, Any]]], a: str, b: str, field: str) -> dict[str, Any]:
    """The median (min-max) over rounds of a/b, each round's two runs neighbours in time."""
    ratios = [x[field] / y[field] for x, y in zip(runs[a], runs[b])]
    return {"median": statistics.median(ratios), "range": (min(ratios), max(ratios))}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/ingest_ab.py")
    parser.add_argument("--before", type=Path, required=True, help="source tree of the old code")
    parser.add_argument(
        "--after", type=Path, default=bench.ROOT, help="source tree of the new code"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--goatcounter", action="store_true")
    parser.add_argument(
        "--bare-kept", action="store_true", help="also bare_app.py --keep-thread-state"
    )
    parser.add_argument("--only", default="", help="comma-separated target names (default all)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="trail-ingest-ab-"))
    lists = bench.traffic_lists(tmp)
    servers: list[Any] = []
    try:
        targets: dict[str, dict[str, Any]] = {}
        for name, tree in (("before", args.before.resolve()), ("after", args.after.resolve())):
            (tmp / name).mkdir()
            trail = bench.Trail(tmp / name / "data", bench.free_port(), tree=tree)
            trail.start()
            servers.append(trail)
            targets.update(trail_targets(name, trail))
        bare = bench.Bare(bench.free_port())
        bare.start()
        servers.append(bare)
        targets["bare"] = {
            "url": f"http://127.0.0.1:{bare.port}/api/v1/hit", "mode": "hit", "key": "none",
            "site": {}, "pids": bare.pids,
        }  # fmt: skip
        if args.bare_kept:  # the bare route without Robyn's per-request thread state
            kept = bench.Bare(bench.free_port())
            kept.argv.append("--keep-thread-state")
            kept.start()
            servers.append(kept)
            targets["bare_kept"] = {
                "url": f"http://127.0.0.1:{kept.port}/api/v1/hit", "mode": "hit", "key": "none",
                "site": {}, "pids": kept.pids,
            }  # fmt: skip
        if args.goatcounter:
            from bench import goatcounter_peer

            binary, _ = goatcounter_peer.build(goatcounter_peer.go_command(), log=bench.log)
            if binary is not None:
                gc = goatcounter_peer.GoatCounter(binary, tmp / "gc")
                gc.create()
                gc.start()
                servers.append(gc)
                bench.COMMANDS.extend(gc.commands)
                targets["goatcounter"] = {
                    "url": f"{gc.base}/count", "mode": "count", "key": "none",
                    "site": {"BENCH_VHOST": goatcounter_peer.VHOST, "BENCH_XFF": "1"},
                    "pids": lambda gc=gc: [gc.pid], "script": bench.BENCH / "goatcounter_wrk.lua",
                }  # fmt: skip
        if args.only:
            keep = set(args.only.split(","))
            targets = {k: v for k, v in targets.items() if k in keep}
        wrk = bench.Wrk(lists)
        acked = dict.fromkeys(targets, 0)

        def one(name: str, seconds: float, record: bool = True) -> dict[str, Any]:
            t = targets[name]
            pids = t["pids"]()
            every = t.get("all_pids", t["pids"])()
            cpu0, all0 = bench.cpu_seconds(pids), bench.cpu_seconds(every)
            r = wrk.run(
                t["url"], args.conns, seconds, t["key"], mode=t["mode"], record=record,
                site=t["site"], script=t.get("script", bench.BENCH / "wrk.lua"),
            )  # fmt: skip
            r["cpu_us"] = (bench.cpu_seconds(pids) - cpu0) / max(1, r["requests"]) * 1e6
            r["cpu_all_us"] = (bench.cpu_seconds(every) - all0) / max(1, r["requests"]) * 1e6
            r["load"] = os.getloadavg()[0]
            acked[name] += r["ok"]
            return r

        for name in targets:  # warm-up: first sessions, caches, allocator
            one(name, 2, record=False)
        names = list(targets)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for i in range(args.rounds):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                runs[name].append(one(name, args.seconds))
            bench.log(
                f"round {i + 1}: "
                + ", ".join(
                    f"{n} {runs[n][-1]['rps']:.0f}/s {runs[n][-1]['cpu_us']:.0f}us" for n in names
                )
            )
        result: dict[str, Any] = {"rows": {n: summarize(rs) for n, rs in runs.items()}}
        ratios = {}
        for side in ("before", "after"):
            hit = f"{side}:hit"
            if hit not in runs:
                continue
            for bare_name in ("bare", "bare_kept"):
                if bare_name in runs:
                    ratios[f"{hit} / {bare_name}"] = per_round(runs, hit, bare_name, "rps")
                    ratios[f"{hit} / {bare_name} (cpu)"] = per_round(runs, hit, bare_name, "cpu_us")
            for route in ROUTES[1:]:
                if f"{side}:{route}" in runs:
                    ratios[f"{side}:{route} / {hit}"] = per_round(
                        runs, f"{side}:{route}", hit, "rps"
                    )
                    ratios[f"{side}:{route} / {hit} (cpu)"] = per_round(
                        runs, f"{side}:{route}", hit, "cpu_us"
                    )
            if "goatcounter" in runs and f"{side}:collect" in runs:
                for field in ("rps", "cpu_us", "cpu_all_us"):
                    ratios[f"{side}:collect / goatcounter ({field})"] = per_round(
                        runs, f"{side}:collect", "goatcounter", field
                    )
        for route in ROUTES:
            a, b = f"after:{route}", f"before:{route}"
            if a in runs and b in runs:
                ratios[f"{a} / {b} (cpu)"] = per_round(runs, a, b, "cpu_us")
                ratios[f"{a} / {b} (rps)"] = per_round(runs, a, b, "rps")
        result["ratios"] = ratios
        loads = [r["load"] for rs in runs.values() for r in rs]
        result["load"] = (min(loads), max(loads))
        # Acknowledged page views against what the statistics count, once the workers have
        # sealed what their WAL holds (every second by default).
        time.sleep(3)
        checks = {}
        for name, t in targets.items():
            if "trail" in t and t["mode"] in ("collect", "pirsch_browser", "hit"):
                checks[name] = {
                    "acked": acked[name],
                    "views": t["trail"].total(t["site_id"]).get("views"),
                }
        result["acked_vs_counted"] = checks
        result["commands"] = bench.COMMANDS
        result["args"] = {k: str(v) for k, v in vars(args).items()}
        text = json.dumps(result, indent=2)
        if args.out:
            args.out.write_text(text)
        print(text)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

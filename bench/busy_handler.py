"""What a handler's own time costs the whole server, per request: the bare Robyn route
(`bench/bare_app.py --keep-thread-state`, 2 processes) answering after spinning for N µs in
its handler (reading the clock, touching no memory), under wrk.

If a request cost the bare route's CPU plus N, the server CPU per request would rise by N µs
per N. On a small virtual machine it rises by more: a slower handler leaves wrk's threads
asleep more often, and each answer then wakes one on the other vCPU (a reschedule IPI, which a
guest pays for in VM exits), counted in the server's time under `sock_def_readable` /
`try_to_wake_up`. The slope says how much a µs saved (or added) in a route's handler is worth
in this benchmark, and so how far ratios between routes of different cost are the routes'
own.

    .venv/bin/python bench/busy_handler.py [--busy 0,10,20,40] [--conns 16,64] [--rounds 3]
        [--seconds 5] [--out result.json]

Every server runs at once; each round visits every (busy, connections) pair in a rotated
order. Reports per pair the median rate and server CPU per request (utime+stime of the app's
processes / requests answered), with min-max, and the CPU per request above the busy-free
route, per µs of spin.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # bench/run.py: the wrk harness


def main() -> None:
    parser = argparse.ArgumentParser(prog="busy_handler")
    parser.add_argument("--busy", default="0,10,20,40", help="µs of spin per request")
    parser.add_argument("--conns", default="16,64")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out")
    args = parser.parse_args()
    busy = [float(b) for b in args.busy.split(",")]
    conns = [int(c) for c in args.conns.split(",")]
    if 0.0 not in busy:
        busy.insert(0, 0.0)

    servers: dict[float, bench.Bare] = {}
    try:
        for b in busy:
            server = bench.Bare(bench.free_port())
            server.argv += ["--keep-thread-state", "--busy-us", str(b)]
            server.start()
            servers[b] = server
        with tempfile.TemporaryDirectory(prefix="trail-busy-") as tmp:
            wrk = bench.Wrk(bench.traffic_lists(Path(tmp)))
            pairs = [(b, c) for c in conns for b in busy]
            for b, c in pairs:  # warm-up, not counted
                wrk.run(f"http://127.0.0.1:{servers[b].port}/api/v1/hit", c, 1, record=False)
            runs: dict[tuple[float, int], list[dict[str, float]]] = {p: [] for p in pairs}
            for round_no in range(args.rounds):
                shift = round_no % len(pairs)
                for b, c in pairs[shift:] + pairs[:shift]:
                    server = servers[b]
                    pids = server.pids()
                    before = bench.cpu_seconds(pids)
                    r = wrk.run(f"http://127.0.0.1:{server.port}/api/v1/hit", c, args.seconds)
                    used = bench.cpu_seconds(pids) - before
                    runs[(b, c)].append({"rps": r["rps"], "cpu_us": 1e6 * used / r["requests"]})
                    bench.log(f"busy {b:g} µs, {c} conns: {r['rps']:.0f}/s")
    finally:
        for server in servers.values():
            server.stop()

    rows = []
    for c in conns:
        base = statistics.median(x["cpu_us"] for x in runs[(0.0, c)])
        for b in busy:
            rs = runs[(b, c)]
            rps, cpu = [x["rps"] for x in rs], [x["cpu_us"] for x in rs]
            row = {
                "busy_us": b,
                "conns": c,
                "rps": statistics.median(rps),
                "rps_range": [min(rps), max(rps)],
                "cpu_us": statistics.median(cpu),
                "cpu_range": [min(cpu), max(cpu)],
                "extra_per_busy_us": (statistics.median(cpu) - base) / b if b else None,
            }
            rows.append(row)
    print("| spin µs | connections | req/s | server CPU µs/request | CPU added per µs of spin |")
    print("|---|---|---|---|---|")
    for row in rows:
        per = row["extra_per_busy_us"]
        print(
            f"| {row['busy_us']:g} | {row['conns']} | {row['rps']:,.0f} "
            f"({row['rps_range'][0]:,.0f}-{row['rps_range'][1]:,.0f}) | {row['cpu_us']:.1f} "
            f"({row['cpu_range'][0]:.1f}-{row['cpu_range'][1]:.1f}) | "
            f"{'-' if per is None else f'{per:.2f}'} |"
        )
    result = {"rows": rows, "commands": bench.COMMANDS, "args": vars(args)}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

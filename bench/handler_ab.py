"""The browser routes' handlers of two versions of trail side by side, in-process: the CPU time
(thread time) of the bound route (`routing.bind`: what Robyn calls) per request, without Robyn's
request conversion, the kernel or wrk on the same cores.

Each version runs in a process of its own (`--serve`, cwd and PYTHONPATH = its source tree) over
a fresh data dir: a real meta store and engine (UA rules, bot lists, WAL, session state), one
site, real Robyn `Request` objects carrying the headers wrk's browser modes send (User-Agent,
Accept-Language, X-Forwarded-For from a trusted peer, Origin; a new client IP per request). The
driver alternates batches of each route between the two processes, the order flipped every
round, and reports per route the median µs per request and the median (min-max) of the
per-round after/before ratios, with the number of rounds in which the new code was cheaper.
On a shared machine whole-server CPU per request moves 10-20 % between neighbouring runs; this
measures the part of a request a handler change touches, where a few µs show.

    .venv/bin/python bench/handler_ab.py --before /tmp/before-tree [--rounds 40] [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROUTES = ("collect", "pirsch_browser", "pirsch_event")
UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def serve(data_dir: Path, batch: int) -> None:
    """One version's side: answer each route name read from stdin with µs/request of a batch."""
    os.environ["TRAIL_TRUSTED_PROXIES"] = "127.0.0.1"
    os.environ["TRAIL_RATE_LIMIT_COLLECT"] = "4000000000/10"
    from robyn.robyn import Headers, QueryParams, Request, Url

    from trail import config
    from trail.api import browser
    from trail.api.pirsch import ingest
    from trail.api.routing import bind
    from trail.context import Context
    from trail.services.ingest import open_engine
    from trail.storage.meta import MetaStore
    from trail.storage.models import Site

    cfg = config.load(flags={"data_dir": str(data_dir)})
    meta = MetaStore.open(data_dir / "meta")
    engine = open_engine(cfg, data_dir, 0)
    ctx = Context(config=cfg, meta=meta, engine=engine, data_dir=data_dir, worker_id=0)
    site = meta.create_site(Site(id="", hostname="bench.example.com", subdomain="bench"))
    host = "https://bench.example.com"

    def request(route: str, n: int) -> Any:
        headers = {
            "host": "127.0.0.1:8080",
            "user-agent": UA,
            "accept-language": "de-DE,de;q=0.9",
            "x-forwarded-for": f"81.2.{n // 250 % 250}.{n % 250 + 1}",
            "origin": host,
        }
        query, body, path = QueryParams(), "", "/api/v1/hit"
        page = f"/p{n % 50}"
        if route == "collect":
            headers["content-type"] = "text/plain;charset=UTF-8"
            path = "/api/v1/collect"
            body = json.dumps({
                "website_id": site.id, "event_type": "page_view", "url": host + page,
                "path": page, "referrer": "https://www.google.com/", "title": "T",
                "screen_width": 1280, "screen_height": 900,
            })  # fmt: skip
        elif route == "pirsch_event":
            headers["content-type"] = "application/json"
            path = "/api/v1/event"
            body = json.dumps({
                "identification_code": site.identification_code, "url": host + page,
                "title": "T", "screen_width": 1280, "screen_height": 900,
                "event_name": "signup", "event_duration": 3, "event_meta": {"plan": "pro"},
            })  # fmt: skip
        else:
            for k, v in (("nc", str(n)), ("code", site.identification_code),
                         ("url", f"https%3A%2F%2Fbench.example.com%2Fp{n % 50}"), ("t", "T"),
                         ("w", "1280"), ("h", "900")):  # fmt: skip
                query.set(k, v)
        method = "GET" if route == "pirsch_browser" else "POST"
        url = Url("http", "127.0.0.1", path)
        return Request(query, Headers(headers), {}, body, method, url, {}, {}, None, "127.0.0.1")

    def refuse(error: Any) -> Any:
        raise RuntimeError(f"{error.status} {error.message}")

    handlers = {
        "collect": browser.post_collect,
        "pirsch_browser": browser.get_hit,
        "pirsch_event": ingest.post_event,
    }
    routes = {name: bind(ctx, handler, refuse) for name, handler in handlers.items()}
    sent = 0

    def run(route: str, size: int) -> float:
        nonlocal sent
        requests = [request(route, sent + i) for i in range(size)]
        sent += size
        call = routes[route]
        start = time.thread_time()
        for r in requests:
            answer = call(r)
        spent = time.thread_time() - start
        if answer.status_code not in (200, 202):
            raise RuntimeError(f"{route}: {answer.status_code}")
        return spent / size * 1e6

    for route in routes:  # warm-up: sessions, caches, the site directory
        run(route, 300)
    print("ready", flush=True)
    for line in sys.stdin:
        print(json.dumps(run(line.strip(), batch)), flush=True)
    engine.close()
    meta.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/handler_ab.py")
    parser.add_argument("--before", type=Path, help="source tree of the old code")
    parser.add_argument("--after", type=Path, default=ROOT, help="source tree of the new code")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # a side's data dir
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.batch)
        return
    if args.before is None:
        parser.error("--before is required")
    tmp = Path(tempfile.mkdtemp(prefix="trail-handler-ab-"))
    sides: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, tree in (("before", args.before.resolve()), ("after", args.after.resolve())):
            sides[name] = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--serve", str(tmp / name),
                 "--batch", str(args.batch)],
                cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
        for name, proc in sides.items():
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"the {name} side did not start")

        def batch(name: str, route: str) -> float:
            proc = sides[name]
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(route + "\n")
            proc.stdin.flush()
            return float(json.loads(proc.stdout.readline()))

        runs: dict[str, list[float]] = {f"{s}:{r}": [] for s in sides for r in ROUTES}
        for i in range(args.rounds):
            for route in ROUTES:
                for name in ("before", "after") if i % 2 == 0 else ("after", "before"):
                    runs[f"{name}:{route}"].append(batch(name, route))
        result: dict[str, Any] = {"us_per_request": {}, "after_over_before": {}}
        for name, values in runs.items():
            result["us_per_request"][name] = {
                "median": statistics.median(values), "range": (min(values), max(values)),
            }  # fmt: skip
        for route in ROUTES:
            ratios = [a / b for a, b in zip(runs[f"after:{route}"], runs[f"before:{route}"])]
            result["after_over_before"][route] = {
                "median": statistics.median(ratios),
                "range": (min(ratios), max(ratios)),
                "after_cheaper_rounds": f"{sum(r < 1 for r in ratios)}/{len(ratios)}",
            }
        result["load"] = os.getloadavg()
        result["args"] = {k: str(v) for k, v in vars(args).items()}
        text = json.dumps(result, indent=2)
        if args.out:
            args.out.write_text(text)
        print(text)
    finally:
        for proc in sides.values():
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

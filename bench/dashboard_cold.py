"""The dashboard's first visit after a server start: how long the first page and the assets take.

    nice -n 19 .venv/bin/python -m bench.dashboard_cold --starts 5

Each start: a fresh data dir, `trail serve` with --workers (default 2) on loopback, and as soon as
/health answers, the sign-in page and then every dashboard asset (the names `/assets/<name>.<hash>`
the server serves, as `trail.api.dashboard.pages` names them), fetched as a browser does: 6
connections at once, `Accept-Encoding: br, gzip`. Each fetch is a new connection, so the workers
share them as they share a browser's. Figures per start (ms since /health answered): the sign-in
page's whole answer, and the time until every asset is in; then their medians and ranges over
the starts. The server is stopped after each start.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.server import TrailServer, request

ACCEPT = {"accept-encoding": "br, gzip"}


def asset_urls() -> list[str]:
    """The asset URLs the server serves (content-hashed names: the same in every process), from
    the files as they are now."""
    from trail.api.dashboard import pages

    return sorted(set(pages._build_bundle().urls.values()))


def timed(url: str, t0: float) -> tuple[float, int]:
    reply = request("GET", url, headers=ACCEPT, timeout=60)
    return (time.monotonic() - t0) * 1000, reply.status


def one_start(workdir: Path, workers: int) -> dict[str, float]:
    assets = asset_urls()
    server = TrailServer(workdir / "data", workers=workers).start(timeout=120)
    t0 = time.monotonic()
    try:
        page_ms, status = timed(server.url + "/signin", t0)
        assert status == 200, status
        with ThreadPoolExecutor(6) as pool:
            done = list(pool.map(lambda a: timed(server.url + a, t0), assets))
        assert all(s == 200 for _, s in done), done
    finally:
        server.stop()
    return {"page": page_ms, "assets": max(ms for ms, _ in done), "count": len(assets)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    runs = []
    for n in range(args.starts):
        with tempfile.TemporaryDirectory(prefix="trail-cold-") as tmp:
            run = one_start(Path(tmp), args.workers)
        print(f"start {n + 1}: page {run['page']:,.0f} ms, all assets in {run['assets']:,.0f} ms")
        runs.append(run)
    print(f"{runs[0]['count']:.0f} assets, {args.workers} workers, {args.starts} starts:")
    for key in ("page", "assets"):
        values = [r[key] for r in runs]
        print(
            f"  {key}: median {statistics.median(values):,.0f} ms "
            f"({min(values):,.0f}-{max(values):,.0f})"
        )
    with open("/proc/loadavg") as f:
        print("load average:", f.read().split()[:3], file=sys.stderr)


if __name__ == "__main__":
    main()

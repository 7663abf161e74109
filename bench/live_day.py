"""The live day on disk: bytes per page view, file count and query time over an open day.

    nice -n 19 .venv/bin/python -m bench.live_day --out /dev/shm/live-day --hits 1000000 \
        --per-seal 12 --merge-every 300

Hits go through the real ingest path in-process (`Engine.ingest_api`, batches of `--per-seal`
hits built by bench.traffic, real UA rules), with virtual times spread evenly over one UTC day
(today); after every batch the engine seals, as a worker's background thread does once a second:
`--per-seal 12` is one worker at ~1M page views a day. Every `--merge-every` virtual seconds the
maintenance process's live merge runs (trail.tasks.live_merge; 0 = never, the behaviour before
live merges). Then: the bytes and files of the day's directories (every table), bytes per page
view, and the CPU and wall time of the dashboard's reports over the day (in-process through
trail.services.statistics.run, result cache off, median of `--repeat` after a warm-up).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("POLARS_MAX_THREADS", "2")

import orjson

from bench import traffic

SITE = "live-site"
REPORTS = [
    "total", "visitor", "page", "page/entry", "page/exit", "referrer", "channel", "utm/source",
    "country", "region", "city", "browser", "os", "platform", "screen", "language", "events",
    "weekdays",
]  # fmt: skip
DAY_S = 86_400


def ingest(out: Path, hits: int, per_seal: int, merge_every: float) -> dict[str, float]:
    """Send `hits` hits of one day through the engine; returns timings."""
    from trail.core import Engine
    from trail.datalists import load_bot_lists, load_ua_rules
    from trail.tasks import live_merge

    options = {"seal_interval_ms": 3_600_000, "seal_rows": 1 << 30, "fsync_interval_ms": 1000}
    engine = Engine(out, 0, options, load_ua_rules(), load_bot_lists([]))
    rng = random.Random(7)
    pool = [traffic.visitor(rng) for _ in range(3000)]
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    step = DAY_S / hits
    next_merge = merge_every
    merge_cpu = merge_wall = 0.0
    sent = 0
    t0 = time.perf_counter()
    while sent < hits:
        items = []
        for i in range(min(per_seal, hits - sent)):
            if rng.random() < 0.4:  # a new visitor: ~2.5 page views each
                pool[rng.randrange(len(pool))] = traffic.visitor(rng)
            when = day + timedelta(seconds=(sent + i) * step)
            items.append(traffic.hit(rng, rng.choice(pool), when))
        sent += len(items)
        now_s = sent * step
        now_ms = int((day.timestamp() + now_s) * 1000)
        for first in range(0, len(items), 1000):  # the engine's batch limit
            body = orjson.dumps(items[first : first + 1000])
            engine.ingest_api(SITE, traffic.HOSTNAME, "hit", body, True, now_ms)
        engine.seal()
        if merge_every and now_s >= next_merge:
            c0, w0 = time.process_time(), time.perf_counter()
            live_merge.run_round(out, now=day.timestamp() + now_s, grace=0)
            merge_cpu += time.process_time() - c0
            merge_wall += time.perf_counter() - w0
            next_merge += merge_every
    engine.close()
    return {
        "ingest_s": time.perf_counter() - t0,
        "merge_cpu_s": merge_cpu,
        "merge_wall_s": merge_wall,
    }


def footprint(out: Path) -> dict[str, dict[str, int]]:
    """Bytes and files per table under segments/ (every day directory of the site)."""
    sizes: dict[str, dict[str, int]] = {}
    for table_dir in sorted((out / "segments").iterdir()):
        files = [p for p in table_dir.rglob("*") if p.is_file()]
        sizes[table_dir.name] = {
            "bytes": sum(p.stat().st_size for p in files),
            "files": len(files),
        }
    return sizes


def page_views(out: Path) -> int:
    import polars as pl

    from trail.stats.scan import scan

    lo = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    frame = scan(out, "page_views", SITE, lo, lo + timedelta(days=1), ["visitor_id"])
    return int(frame.select(pl.len()).collect().item())


def time_reports(out: Path, repeat: int) -> list[tuple[str, float, float]]:
    from trail.services import statistics as pirsch_stats
    from trail.stats import cache

    cache.CLOSED_AFTER = float("inf")  # measure the query work, not the result cache
    ctx = SimpleNamespace(data_dir=out)
    site = SimpleNamespace(id=SITE, timezone="UTC", group_by_title=False)
    today = datetime.now(UTC).date().isoformat()
    params = {"id": [SITE], "from": [today], "to": [today]}
    rows = []
    for name in REPORTS:
        pirsch_stats.run(ctx, name, params, site)  # warm-up
        cpu, wall = [], []
        for _ in range(repeat):
            c0, w0 = time.process_time(), time.perf_counter()
            pirsch_stats.run(ctx, name, params, site)
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
        rows.append((name, statistics.median(cpu), statistics.median(wall)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--hits", type=int, default=1_000_000)
    ap.add_argument("--per-seal", type=int, default=12)
    ap.add_argument("--merge-every", type=float, default=300.0, help="virtual seconds, 0 = never")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reuse", action="store_true", help="measure an existing --out")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not a.reuse:
        shutil.rmtree(a.out, ignore_errors=True)
        timings = ingest(a.out, a.hits, a.per_seal, a.merge_every)
        print(f"ingest: {timings}", flush=True)
    sizes = footprint(a.out)
    pv = page_views(a.out)
    total = sum(s["bytes"] for s in sizes.values())
    files = sum(s["files"] for s in sizes.values())
    print(f"tables: {sizes}")
    print(f"page views {pv}, {total} bytes in {files} files = {total / pv:.1f} B/page view")
    cpu_sum = wall_sum = 0.0
    for name, cpu, wall in time_reports(a.out, a.repeat):
        cpu_sum, wall_sum = cpu_sum + cpu, wall_sum + wall
        print(f"{name:12s} cpu {cpu:8.1f} ms   wall {wall:8.1f} ms", flush=True)
    print(f"{'all':12s} cpu {cpu_sum:8.1f} ms   wall {wall_sum:8.1f} ms")
    if not a.keep:
        shutil.rmtree(a.out, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Report timings over data kept by bench.stats_bench (`--keep`), for A/B runs of two trees.

    POLARS_MAX_THREADS=2 .venv/bin/python -m bench.stats_ab /tmp/trail-stats-1m 7 hours,weekdays

Prints one line per report: its name, the median of `repeat` runs in ms (after one warm-up) and
the median CPU time of those runs in ms (all threads; steadier than the wall time when other
jobs share the machine), with the same window and parameters as bench.stats_bench. Run it alternately from two checkouts
(PYTHONPATH=<checkout>) over the same data to compare a change with its parent. `goals` and
`funnel` read the goal and funnel of bench.dashboard_load from a meta store in a temporary
directory.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from bench.stats_gen import FIRST_DAY, SITE
from trail.services import statistics as stats
from trail.stats import cache
from trail.storage.goals import glob_to_regex, goal_store
from trail.storage.meta import MetaStore

EXTRA = {
    "event/meta": {"event": ["signup"], "event_meta_key": ["plan"]},
    "event/page": {"event": ["signup"]},
    "tag/details": {"tag": ["author"]},
}


def definitions(meta: MetaStore) -> dict[str, dict[str, list[str]]]:
    """The goal and the funnel of bench.dashboard_load; the parameters `funnel` needs."""
    store = goal_store(meta)
    store.save_goal({"domain_id": SITE, "name": "Pricing", "path_pattern": "/pricing",
                     "pattern": glob_to_regex("/pricing")})  # fmt: skip
    steps = [{"name": name, "filter": {"path": [path]}}
             for name, path in (("Home", "/"), ("Pricing", "/pricing"), ("Sign-up", "/signup"))]  # fmt: skip
    funnel = store.save_funnel({"domain_id": SITE, "name": "Sign-up", "steps": steps})
    return {"funnel": {"funnel_id": [funnel["id"]]}}


def main() -> None:
    out, repeat, names = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
    cache.CLOSED_AFTER = float("inf")  # measure the query work, not the result cache
    with tempfile.TemporaryDirectory(prefix="stats-ab-meta-") as tmp:
        meta = MetaStore.open(tmp)
        EXTRA.update(definitions(meta))
        run_all(SimpleNamespace(data_dir=out, meta=meta), repeat, names)
        meta.close()


def run_all(ctx: SimpleNamespace, repeat: int, names: list[str]) -> None:
    site = SimpleNamespace(id=SITE, timezone="UTC", group_by_title=False)
    last = FIRST_DAY + timedelta(days=29)
    params = {"id": [SITE], "from": [FIRST_DAY.isoformat()], "to": [last.isoformat()]}
    for name in names:
        p = {**params, **EXTRA.get(name, {})}
        stats.run(ctx, name, p, site)
        times, cpu = [], []
        for _ in range(repeat):
            started, used = time.perf_counter(), time.process_time()
            stats.run(ctx, name, p, site)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - used) * 1000)
        print(f"{name}\t{statistics.median(times):.1f}\t{statistics.median(cpu):.1f}", flush=True)


if __name__ == "__main__":
    main()

"""CPU of each report's first and second run in one process, for a site in any time zone.

    POLARS_MAX_THREADS=2 .venv/bin/python -m bench.stats_first /tmp/trail-stats-10m \\
        total,visitor,page,referrer,country,events,weekdays --timezone Europe/Berlin [--reopen-last-day]

The data is kept by bench.stats_bench (`--keep`) or made by bench.stats_gen plus a compaction
round. Each report runs over the 30 days of bench.stats_gen as a site in `--timezone` would ask
them (whole local days), through trail.services.statistics.run with the result cache off, with
the parameters of bench.stats_ab (`page` with `include_avg_time_on_page`, as the dashboard asks).
The first run pays for what the window builds once (indexes, the description of days read from
rows); the second is what later dashboard loads pay. `--reopen-last-day` first turns the last
day back into a live day's files (bench.dashboard_load.reopen_days) in the data given: use a copy.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from bench import stats_ab
from bench.stats_gen import FIRST_DAY, SITE
from trail.services import statistics as stats
from trail.stats import cache
from trail.storage.meta import MetaStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("reports", help="comma-separated report names")
    ap.add_argument("--timezone", default="UTC")
    ap.add_argument("--reopen-last-day", action="store_true")
    a = ap.parse_args()
    last = FIRST_DAY + timedelta(days=29)
    if a.reopen_last_day:
        from bench.dashboard_load import reopen_days

        reopen_days(a.data, SITE, [last])
    cache.CLOSED_AFTER = float("inf")  # measure the query work, not the result cache
    extra = {**stats_ab.EXTRA, "page": {"include_avg_time_on_page": ["true"]}}
    with tempfile.TemporaryDirectory(prefix="stats-first-meta-") as tmp:
        meta = MetaStore.open(tmp)
        extra.update(stats_ab.definitions(meta))
        ctx = SimpleNamespace(data_dir=a.data, meta=meta)
        site = SimpleNamespace(id=SITE, timezone=a.timezone, group_by_title=False)
        window = {"id": [SITE], "from": [FIRST_DAY.isoformat()], "to": [last.isoformat()]}
        totals = [0.0, 0.0]
        for name in a.reports.split(","):
            params = {**window, **extra.get(name, {})}
            used = []
            for _ in range(2):
                started = time.process_time()
                stats.run(ctx, name, params, site)
                used.append((time.process_time() - started) * 1000)
            totals = [t + u for t, u in zip(totals, used, strict=True)]
            print(f"{name:24s} first {used[0]:8.1f} ms CPU   again {used[1]:8.1f}", flush=True)
        print(f"{'all':24s} first {totals[0]:8.0f} ms CPU   again {totals[1]:8.0f}")
        meta.close()


if __name__ == "__main__":
    main()

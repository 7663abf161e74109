"""Each report with a ClickHouse implementation: its time from ClickHouse (chDB) against the
embedded engine, on the same rows.

    cp -a /tmp/b1m /tmp/ch-bench/data            # bench.stats_gen output (segments)
    .venv/bin/python -m trail.clickhouse.shipper --data-dir /tmp/ch-bench/data \\
        --url chdb:///tmp/ch-bench/ch --drain
    POLARS_MAX_THREADS=2 .venv/bin/python -m bench.clickhouse_reports \\
        --data-dir /tmp/ch-bench/data --url chdb:///tmp/ch-bench/ch [--compacted DIR]

Every report of trail.clickhouse.backend.SQL_REPORTS over the 30 days of bench.stats_gen, under
a few filters, `--repeat` times each; the median in milliseconds of wall time and of the
process's CPU time (all threads: chDB runs inside this process, so ClickHouse's own work is
counted; CPU moves less than wall time when the box is shared). The embedded engine runs its
report functions directly (no result cache); `--compacted` also times them over a compacted
copy of the same rows (what closed days look like on a running server: Parquet parts and
rollups). Answers are compared, and a difference is printed. `--json` writes every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("POLARS_MAX_THREADS", "2")

from bench.stats_gen import FIRST_DAY, SITE

FILTERS: dict[str, dict[str, list[str]]] = {
    "none": {},
    "country=de": {"country": ["de"]},
    "path=/pricing": {"path": ["/pricing"]},
    "event=signup": {"event": ["signup"]},
}


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Median wall and CPU milliseconds of `repeat` calls, and the last answer."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        cpus.append((time.process_time() - cpu) * 1000)
        walls.append((time.perf_counter() - start) * 1000)
    return statistics.median(walls), statistics.median(cpus), out


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.clickhouse_reports")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--compacted", help="a compacted copy of the data directory")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--filters", default=",".join(FILTERS))
    parser.add_argument("--reports", help="comma-separated report names (default: every one)")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()

    from trail.clickhouse.backend import SQL_REPORTS
    from trail.clickhouse.client import connect
    from trail.clickhouse.rows import Unsupported
    from trail.clickhouse.url import parse
    from trail.services.statistics import REPORTS
    from trail.stats.filters import FilterError, parse_filter

    target = parse(args.url)
    client = connect(target)
    site = SimpleNamespace(group_by_title=False, timezone="UTC")
    last = FIRST_DAY.fromordinal(FIRST_DAY.toordinal() + args.days - 1)
    dirs = [("embedded", Path(args.data_dir))]
    if args.compacted:
        dirs.append(("compacted", Path(args.compacted)))
    header = "| report | filter | ClickHouse (chDB) ms wall / CPU | "
    print(header + " | ".join(f"{n} ms wall / CPU" for n, _ in dirs) + " | same answer |")
    print("|---" * (4 + len(dirs)) + "|")
    figures: list[dict[str, Any]] = []
    for label in args.filters.split(","):
        params = {"id": [SITE], "from": [FIRST_DAY.isoformat()], "to": [last.isoformat()],
                  **FILTERS[label]}  # fmt: skip
        f = parse_filter(params, now=None)
        for name, sql in SQL_REPORTS.items():
            if args.reports and name not in args.reports.split(","):
                continue
            fn = REPORTS[name][0]
            try:
                sql(client, target.database, f, site)  # warm: the first query loads the parts
            except FilterError:  # event/meta needs an event and a key
                continue
            except Unsupported as e:  # the server would ask the embedded engine
                print(f"| {name} | {label} | (embedded engine: {e}) | | |", flush=True)
                continue
            ch_ms, ch_cpu, ch = timed(
                lambda sql=sql, f=f: sql(client, target.database, f, site), args.repeat
            )
            row: dict[str, Any] = {"report": name, "filter": label,
                                   "clickhouse": [ch_ms, ch_cpu]}  # fmt: skip
            cells, same = [], True
            for engine, d in dirs:
                fn(d, f, site)  # warm, as ClickHouse: indexes and day descriptions built once
                ms, cpu, got = timed(lambda d=d, fn=fn, f=f: fn(d, f, site), args.repeat)
                cells.append(f"{ms:,.0f} / {cpu:,.0f}")
                row[engine] = [ms, cpu]
                same = same and got == ch
            row["same"] = same
            figures.append(row)
            print(f"| {name} | {label} | {ch_ms:,.0f} / {ch_cpu:,.0f} | " + " | ".join(cells)
                  + f" | {same} |", flush=True)  # fmt: skip
    for label in args.filters.split(","):
        rows = [r for r in figures if r["filter"] == label]
        sums = {k: [sum(r[k][i] for r in rows) for i in (0, 1)] for k in rows[0] if
                isinstance(rows[0][k], list)} if rows else {}  # fmt: skip
        print(f"sum over {len(rows)} reports, {label}: "
              + ", ".join(f"{k} {w / 1000:.1f} s wall / {c / 1000:.1f} s CPU"
                          for k, (w, c) in sums.items()))  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()

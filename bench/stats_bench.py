"""Statistics benchmark: generate, compact, then time every report against DuckDB on the same files.

    POLARS_MAX_THREADS=2 .venv/bin/python -m bench.stats_bench --page-views 1000000 --out /tmp/trail-stats-bench
    (add --keep to leave the data; it is deleted by default, the disk is shared)

Steps: bench.stats_gen writes 30 days of segments; trail.tasks.compaction compacts every day (timed);
bytes per page view = all parquet bytes (sessions + page_views + events) / page views. Then each
`/statistics/*` report runs in-process through trail.services.statistics.run (result cache off) over
the 30 days, `--repeat` times, median reported; DuckDB (2 threads) computes the same aggregates
over the same parquet files for the reports that have an SQL twin below.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("POLARS_MAX_THREADS", "2")

from bench.stats_gen import FIRST_DAY, SITE, generate

SKIP = {"active", "session/details", "options/tag/value", "tag/details"}

# DuckDB twins: the same aggregates over the same files ({s}, {p}, {e}: parquet globs).
VIS = "count(DISTINCT visitor_id) FILTER (WHERE sign >= 0)"
DUCK: dict[str, str] = {
    "total": f"SELECT {VIS}, sum(sign), sum(page_views*sign), sum(is_bounce::INT*sign) FROM {{s}}",
    "visitor": f"SELECT time::DATE d, {VIS}, sum(sign), sum(page_views*sign), sum(is_bounce::INT*sign) FROM {{s}} GROUP BY d",
    "page": (
        "WITH pv AS (SELECT path, count(DISTINCT visitor_id) v, count(DISTINCT (visitor_id, session_id)) s, count(*) n, "
        "last(title) t FROM {p} GROUP BY path), b AS (SELECT entry_path path, sum(is_bounce::INT*sign) b FROM {s} GROUP BY 1), "
        f"tot AS (SELECT {VIS} v, sum(page_views*sign) n FROM {{s}}) "
        "SELECT pv.*, b.b, pv.v / tot.v FROM pv LEFT JOIN b USING (path), tot ORDER BY v DESC, path LIMIT 100"
    ),
    "page/entry": (
        "WITH c AS (SELECT entry_path path, sum(sign) n FROM {s} GROUP BY 1 HAVING sum(sign) > 0), "
        "pv AS (SELECT path, count(DISTINCT visitor_id) v, count(DISTINCT (visitor_id, session_id)) s FROM {p} GROUP BY path) "
        "SELECT * FROM c LEFT JOIN pv USING (path) ORDER BY n DESC LIMIT 100"
    ),
    "page/exit": (
        "WITH c AS (SELECT exit_path path, sum(sign) n FROM {s} GROUP BY 1 HAVING sum(sign) > 0), "
        "pv AS (SELECT path, count(DISTINCT visitor_id) v, count(DISTINCT (visitor_id, session_id)) s FROM {p} GROUP BY path) "
        "SELECT * FROM c LEFT JOIN pv USING (path) ORDER BY n DESC LIMIT 100"
    ),
    "referrer": f"SELECT referrer_name, any_value(referrer), {VIS} v, sum(sign), sum(is_bounce::INT*sign) FROM {{s}} GROUP BY 1 ORDER BY v DESC LIMIT 100",
    "hours": f"SELECT hour(time) h, {VIS}, sum(sign), sum(page_views*sign), sum(is_bounce::INT*sign) FROM {{s}} GROUP BY h",
    "weekdays": f"SELECT dayofweek(time) d, hour(time) h, {VIS}, sum(sign), sum(page_views*sign) FROM {{s}} GROUP BY d, h",
    "platform": f"SELECT {VIS}, count(DISTINCT visitor_id) FILTER (WHERE sign >= 0 AND desktop), count(DISTINCT visitor_id) FILTER (WHERE sign >= 0 AND mobile) FROM {{s}}",
    "duration/session": "SELECT time::DATE d, sum(duration_seconds*sign) / sum(sign) FROM {s} WHERE duration_seconds > 0 GROUP BY d",
    # events: like trail, also the live views of the sessions that fired each event and cr.
    "events": (
        "WITH ev AS (SELECT event_name, visitor_id, session_id, duration_seconds FROM {e}), "
        "st AS (SELECT event_name, count(DISTINCT visitor_id) v, count(*) n, avg(duration_seconds) d FROM ev GROUP BY 1), "
        "k AS (SELECT DISTINCT event_name, visitor_id, session_id FROM ev), "
        "sv AS (SELECT visitor_id, session_id, sum(page_views*sign) views FROM {s} s "
        "SEMI JOIN (SELECT DISTINCT visitor_id, session_id FROM ev) x USING (visitor_id, session_id) GROUP BY 1, 2), "
        "vw AS (SELECT event_name, sum(views) views FROM k JOIN sv USING (visitor_id, session_id) GROUP BY 1), "
        f"tot AS (SELECT {VIS} t FROM {{s}}) "
        "SELECT st.*, vw.views, st.v / tot.t FROM st LEFT JOIN vw USING (event_name), tot"
    ),
    "growth": f"SELECT {VIS}, sum(sign), sum(page_views*sign), sum(duration_seconds*sign) FROM {{s2}} GROUP BY time < TIMESTAMPTZ '{{mid}}'",
}
DIMS = {
    "os": "os", "os/version": "os, os_version", "browser": "browser", "browser/version": "browser, browser_version",
    "country": "country_code", "region": "country_code, region", "city": "country_code, region, city",
    "language": "language", "screen": "screen_class", "channel": "channel", "utm/source": "utm_source",
    "utm/medium": "utm_medium", "utm/campaign": "utm_campaign", "utm/content": "utm_content", "utm/term": "utm_term",
    "hostname": "hostname",
}  # fmt: skip
for _name, _cols in DIMS.items():
    DUCK[_name] = f"SELECT {_cols}, {VIS} v FROM {{s}} GROUP BY ALL ORDER BY v DESC LIMIT 100"


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    fn()  # warm-up (file metadata, code paths)
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


def stored_bytes(root: Path) -> dict[str, int]:
    """Bytes on disk per table after compaction: every file of its day directories (the
    parquet parts, the rollups and the manifests), not only the parquet."""
    out = {}
    for table in ("sessions", "page_views", "events"):
        files = [p for p in (root / "segments" / table).rglob("*") if p.is_file()]
        out[table] = sum(p.stat().st_size for p in files if p.name.startswith("part-"))
        out[f"{table}_rollups"] = sum(
            p.stat().st_size for p in files if not p.name.startswith("part-")
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/trail-stats-bench"))
    ap.add_argument("--page-views", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="skip generation and compaction")
    ap.add_argument("--only", default="", help="comma-separated report names")
    ap.add_argument("--baseline", action="store_true", help="switch rollups off (rows answer)")
    a = ap.parse_args()
    if a.baseline:
        from trail.storage import rollups

        rollups.days_for = lambda *args, **kwargs: None  # type: ignore[assignment]

    import duckdb

    from trail.services import statistics as pirsch_stats
    from trail.stats import cache
    from trail.tasks import compaction

    if not a.reuse:
        t0 = time.perf_counter()
        counts = generate(a.out, a.page_views, a.days)
        print(f"generate: {counts} in {time.perf_counter() - t0:.1f}s", flush=True)
        t0 = time.perf_counter()
        s = compaction.run_round(a.out, now=time.time(), grace=0).as_dict()
        print(f"compaction: {s} in {time.perf_counter() - t0:.1f}s", flush=True)
    sizes = stored_bytes(a.out)
    pv = sum(1 for _ in ()) or None
    import polars as pl

    pv = (
        pl.scan_parquet(str(a.out / "segments/page_views/*/*/part-*.parquet"))
        .select(pl.len())
        .collect()
        .item()
    )
    total_bytes = sum(sizes.values())
    print(
        f"bytes: {sizes} total {total_bytes} = {total_bytes / pv:.1f} B/page view ({pv} page views)",
        flush=True,
    )

    cache.CLOSED_AFTER = float("inf")  # measure the query work, not the result cache
    ctx = SimpleNamespace(data_dir=a.out)
    site = SimpleNamespace(id=SITE, timezone="UTC", group_by_title=False)
    last = FIRST_DAY + timedelta(days=a.days - 1)
    params = {"id": [SITE], "from": [FIRST_DAY.isoformat()], "to": [last.isoformat()]}
    extra = {
        "event/meta": {"event": ["signup"], "event_meta_key": ["plan"]},
        "event/page": {"event": ["signup"]},
    }
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    glob = lambda t: f"read_parquet('{a.out}/segments/{t}/site={SITE}/*/part-*.parquet')"
    prev_first = FIRST_DAY - timedelta(days=a.days)
    fmt = {"s": glob("sessions"), "p": glob("page_views"), "e": glob("events"), "s2": glob("sessions"),
           "mid": f"{FIRST_DAY.isoformat()} 00:00:00+00"}  # fmt: skip
    names = [n for n in pirsch_stats.REPORTS if n not in SKIP]
    if a.only:
        names = [n for n in names if n in a.only.split(",")]
    rows = []
    for name in names:
        p = {**params, **extra.get(name, {})}
        ms, _ = timed(lambda name=name, p=p: pirsch_stats.run(ctx, name, p, site), a.repeat)
        duck = None
        if name in DUCK:
            sql = DUCK[name].format(**fmt)
            duck, _ = timed(lambda sql=sql: con.execute(sql).fetchall(), a.repeat)
        ratio = f"{ms / duck:5.2f}x" if duck else "   - "
        print(f"{name:22s} trail {ms:8.1f} ms   duckdb {duck or 0:8.1f} ms   {ratio}", flush=True)
        rows.append((name, ms, duck))
    del prev_first
    if not a.keep and not a.reuse:
        shutil.rmtree(a.out, ignore_errors=True)


if __name__ == "__main__":
    main()

"""A day of traffic through a real server, and what trail and ClickHouse say about it."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute

from tests.clickhouse.test_schema import ROOT, chq
from tests.server import TrailServer
from tests.test_ingest_e2e import CHROME_WIN, DAY, FIREFOX_MAC, SAFARI_IPHONE, send_realistic_day
from trail.clickhouse.spool import history_dir

# Rows visible within 200 ms; and no day is compacted or live-merged while a test runs (the live
# merge's first round is at start, the next one 300 s later: a slow run would merge the days
# ingested by then), so the sealed segments stay what the shipper and the counts read (the first
# scan of a data directory leaves merged and compacted rows to a migration, trail.clickhouse.spool).
FAST_SEAL = {
    "TRAIL_SEAL_INTERVAL_MS": "200",
    "TRAIL_COMPACTION_DELAY_S": "1000000000",
    "TRAIL_LIVE_MERGE_INTERVAL_S": "1000000000",
}
TABLES = ("sessions", "page_views", "events", "requests")


def send_traffic(s: TrailServer, key: str, hits: int = 2400) -> None:
    """The realistic day plus `hits` page views of ~hits/3 visitors spread over DAY."""
    send_realistic_day(s, key)
    rnd = random.Random(15)
    batch = []
    for _ in range(hits):
        v = rnd.randrange(hits // 3)
        t = rnd.randrange(86_400)
        batch.append(
            {
                "url": f"https://example.com/p{rnd.randrange(20)}",
                "ip": f"10.1.{v // 250}.{v % 250}",
                "user_agent": (CHROME_WIN, FIREFOX_MAC, SAFARI_IPHONE)[v % 3],
                "time": f"{DAY}T{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}Z",
            }
        )
    batch.sort(key=lambda h: h["time"])
    for i in range(0, len(batch), 500):
        r = s.call("POST", "/api/v1/hit/batch", batch[i : i + 500], key=key)
        assert r.status == 200, r.body


def ship_all(data: Path, url: str) -> int:
    """Ship every sealed row of `data` to `url` with the shipper (`--drain`, as its own
    process); the rows shipped, which must be some."""
    shipped = subprocess.run(
        [sys.executable, "-m", "trail.clickhouse.shipper", "--data-dir", str(data), "--url", url,
         "--drain"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert shipped.returncode == 0, shipped.stderr
    history = history_dir(data)
    left = sorted(p.name for p in history.rglob("*") if p.is_file()) if history.exists() else []
    assert not left, f"merged parts the shipper leaves to `trail migrate clickhouse`: {left[:5]}"
    rows = int(orjson.loads(shipped.stdout.splitlines()[-1])["rows_shipped"])
    assert rows > 0
    return rows


def wait_until(check: Callable[[], Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not reached in {timeout} s")


def segment_rows(data_dir: Path) -> dict[str, int]:
    """Rows per table in the sealed segments: what the shipper must deliver. For sessions the
    sum of `sign`, which ClickHouse's collapsing merges keep (they drop +1/-1 pairs)."""
    counts = {}
    for table in TABLES:
        files = (data_dir / "segments" / table).rglob("*.arrow")
        frames = [pa.ipc.open_file(str(f)).read_all() for f in files]
        if table == "sessions":
            counts[table] = sum(pa.compute.sum(f["sign"]).as_py() or 0 for f in frames)
        else:
            counts[table] = sum(f.num_rows for f in frames)
    return counts


def shipped_rows(data_dir: Path) -> int:
    """Rows the shipper sends: every row of every segment."""
    files = (data_dir / "segments").rglob("*.arrow")
    return sum(pa.ipc.open_file(str(f)).read_all().num_rows for f in files)


TOTALS = (
    "SELECT uniqExactIf(visitor_id, sign > 0), sum(page_views * sign), sum(sign), "
    "sum(is_bounce * sign) FROM trail.sessions WHERE site_id = '{site}'"
)
COUNTS = " UNION ALL ".join(
    f"SELECT '{t}', {'sum(sign)' if t == 'sessions' else 'count()'} FROM trail.{t}" for t in TABLES
)


def clickhouse_numbers(url: str, site: str) -> tuple[dict[str, int], dict[str, int]]:
    """(totals as /statistics/total names them, rows per table) read from ClickHouse."""
    out = chq(url, TOTALS.format(site=site), COUNTS)
    visitors, views, sessions, bounces = out["results"][0][0]
    totals = {"visitors": visitors, "views": views, "sessions": sessions, "bounces": bounces}
    return totals, {t: n for t, n in out["results"][1]}


def trail_totals(total: dict[str, Any]) -> dict[str, int]:
    return {k: total[k] for k in ("visitors", "views", "sessions", "bounces")}

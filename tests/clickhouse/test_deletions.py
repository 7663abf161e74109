"""Deletions reach ClickHouse: `DELETE /api/v1/statistics` through a real server, the shipper
applies the tombstone to chDB (killed once between the DELETE and its record), and a server
with storage = "clickhouse" then answers from ClickHouse what the embedded engine answers."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from tests.clickhouse.test_schema import chq
from tests.clickhouse.test_shipper import run_shipper
from tests.clickhouse.test_spool import past_the_margin
from tests.clickhouse.traffic import DAY, FAST_SEAL, send_traffic, wait_until
from tests.server import TrailServer
from trail.clickhouse import batches, deletions
from trail.clickhouse.spool import Discovery, spool_dir, spooled
from trail.storage import layout, tombstones

NEXT = (date.fromisoformat(DAY) + timedelta(days=1)).isoformat()
# The site's local DAY (Asia/Tokyo, UTC+9) is DAY-1 15:00 to DAY 15:00 UTC: the deletion takes
# the first 15 hours of the traffic on DAY (UTC) and leaves the rest.
QUERIES: list[tuple[str, dict[str, str]]] = [
    (name, window)
    for window in ({"from": DAY, "to": NEXT}, {"from": DAY, "to": DAY, "tz": "UTC"})
    for name in ("total", "visitor", "page", "referrer", "browser", "hours")
]


def _sealed(data: Path, timeout: float = 60) -> None:
    """Wait until every WAL file is sealed (and a sealing round after that)."""
    deadline = time.monotonic() + timeout
    while any(layout.wal_file(n) for n in os.listdir(layout.wal_dir(data))):
        assert time.monotonic() < deadline, "rows not sealed"
        time.sleep(0.05)
    time.sleep(1)


def _late_hits(s: TrailServer, key: str) -> None:
    """Hits sent after the deletion: at 03:00 UTC (deleted: before the deletion's time) and at
    20:00 UTC (outside the range)."""
    hits = [
        {
            "url": f"https://example.com/late{i}",
            "ip": f"10.9.0.{i}",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0",
            "time": f"{DAY}T{hour}:00:0{i}Z",
        }
        for hour in ("03", "20")
        for i in range(3)
    ]
    r = s.call("POST", "/api/v1/hit/batch", hits, key=key)
    assert r.status == 200, r.body


def _answers(s: TrailServer, site: str) -> list[Any]:
    return [s.stats(name, site, **params) for name, params in QUERIES]


def test_a_deletion_is_applied_to_clickhouse(tmp_path: Path) -> None:
    data, url = tmp_path / "data", f"chdb://{tmp_path / 'ch'}"
    s = TrailServer(data, workers=1, env=FAST_SEAL).start()
    try:
        site, key = s.create_site(timezone="Asia/Tokyo")
        send_traffic(s, key, hits=600)
        _sealed(data)
    finally:
        s.stop()
    admin = s.admin_key
    first = run_shipper(data, url, "--drain")
    assert first.returncode == 0, first.stderr

    s = TrailServer(data, workers=1, env=FAST_SEAL).start()
    s.admin_key = admin
    utc = {"from": DAY, "to": DAY, "tz": "UTC"}
    try:
        before = s.stats("total", site, **utc)
        r = s.call("DELETE", "/api/v1/statistics", {"id": site, "from": DAY, "to": DAY},
                   key=admin)  # fmt: skip
        assert r.status == 200, r.body
        deleted = s.stats("total", site, **utc)
        _late_hits(s, key)
        _sealed(data)
        wait_until(lambda: s.stats("total", site, **utc)["views"] == deleted["views"] + 3)
        want = _answers(s, site)
    finally:
        s.stop()
    assert 0 < deleted["views"] < before["views"], "the deletion took part of the day"

    # Killed after ClickHouse acknowledged the first DELETE, before the tombstone was recorded.
    killed = run_shipper(data, url, "--drain", TRAIL_CLICKHOUSE_KILL_AFTER_DELETES="1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert deletions.applied(data) == frozenset()
    done = run_shipper(data, url, "--drain")
    assert done.returncode == 0, done.stderr
    assert "deletion applied to clickhouse" in done.stderr
    assert len(deletions.applied(data)) == 1

    start, end = f"{DAY} 00:00:00", f"{DAY} 15:00:00"
    left = chq(url, *(
        f"SELECT count() FROM trail.{t} WHERE time >= '{start}' AND time < '{end}'"
        for t in ("page_views", "sessions", "session_states", "events")
    ))["results"]  # fmt: skip
    assert left == [[[0]]] * 4, "no row of the deleted range is left in ClickHouse"

    env = {**FAST_SEAL, "TRAIL_STORAGE": "clickhouse", "TRAIL_CLICKHOUSE_URL": url}
    s = TrailServer(data, workers=1, env=env).start(timeout=120)
    s.admin_key = admin
    try:
        got = _answers(s, site)
    finally:
        s.stop()
    log = (data.parent / f"server-{s.port}.log").read_text()
    assert "clickhouse reports read chdb://" in log  # ClickHouse answered, not the fallback
    assert "from the embedded engine" not in log
    assert got == want


def test_rows_of_a_deletion_are_not_shipped(copy: Path, traffic: dict[str, Any]) -> None:
    """Rows sent after the shipper saw a tombstone leave its rows out (real segments)."""
    site = traffic["site"]
    past_the_margin(copy)
    Discovery.open(copy).scan()
    start = int(datetime.fromisoformat(DAY).replace(tzinfo=UTC).timestamp() * 1000)
    stone = tombstones.add(copy, site, ("page_views",), start, start + 12 * 3600_000)
    names = sorted(n for n in spool_dir(copy).iterdir() if "~page_views~" in n.name)
    slices = [(n.name, 0, pa.ipc.open_file(str(n)).read_all().num_rows) for n in names]
    sent = batches.read_slices(copy, spool_dir(copy), "page_views", slices)
    times = sent.column("time").cast("int64").to_pylist()
    total = sum(b - a for _, a, b in slices)
    assert 0 < len(times) < total
    assert not [t for t in times if stone.start_ms <= t < stone.end_ms]
    assert set(sent.column("site_id").to_pylist()) == {site}
    assert all(spooled(n) is not None for n, _, _ in slices)

"""Deleting a site reaches ClickHouse: the meta store records the deletion with the site's own,
the shipper (killed once between its first DELETE and its record) removes the site's rows from
every table, and the rows of the site still waiting in the spool are never sent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from tests.clickhouse.test_deletions import _sealed
from tests.clickhouse.test_schema import ROOT, chq
from tests.clickhouse.test_shipper import run_shipper
from tests.clickhouse.test_spool import past_the_margin
from tests.clickhouse.traffic import DAY, FAST_SEAL
from tests.server import TrailServer, free_port
from trail.clickhouse import batches, deletions
from trail.clickhouse.shipper import Shipper
from trail.clickhouse.spool import Discovery, spool_dir
from trail.clickhouse.url import parse
from trail.storage import deletion_log, tombstones
from trail.storage.meta import MetaStore, Site

CH_TABLES = ("page_views", "sessions", "session_states", "events", "requests")
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"

# The report functions themselves, in a process of their own (chDB: one engine per process).
REPORTS = """
import sys
from datetime import date
import orjson
from trail.clickhouse import reports
from trail.clickhouse.client import connect
from trail.clickhouse.url import parse
from trail.stats.filters import Filter
target = parse(sys.argv[1])
client = connect(target)
day = date.fromisoformat(sys.argv[3])
f = Filter(site_id=sys.argv[2], from_date=day, to_date=day)
answer = [reports.total(client, target.database, f), reports.page(client, target.database, f)]
print(orjson.dumps(answer).decode())
"""


def send_hits(
    s: TrailServer, key: str, host: str, day: str, count: int, net: int, hour: int = 1
) -> None:
    """`count` page views of `count` visitors (addresses 10.<net>.x.y) on `day`, from `hour`."""
    hits = [
        {
            "url": f"https://{host}/p{i % 7}",
            "ip": f"10.{net}.{i // 250}.{i % 250}",
            "user_agent": FIREFOX,
            "time": f"{day}T{hour + i * 20 // 3600:02d}:{i * 20 // 60 % 60:02d}:{i * 20 % 60:02d}Z",
        }
        for i in range(count)
    ]
    r = s.call("POST", "/api/v1/hit/batch", hits, key=key)
    assert r.status == 200, r.body


def site_rows(url: str, site: str, where: str = "1") -> dict[str, int]:
    """Rows of `site` in each ClickHouse table (matching `where`)."""
    sql = [f"SELECT count() FROM trail.{t} WHERE site_id = '{site}' AND {where}" for t in CH_TABLES]
    return {t: r[0][0] for t, r in zip(CH_TABLES, chq(url, *sql)["results"], strict=True)}


def sql_reports(url: str, site: str, day: str) -> list[Any]:
    """[total, page] of `site` on `day`, from ClickHouse by trail's report functions."""
    done = subprocess.run(
        [sys.executable, "-c", REPORTS, url, site, day],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return list(orjson.loads(done.stdout.splitlines()[-1]))


def spool_now(data: Path) -> list[str]:
    """Link the sealed segments into the spool (discovery's scan, once they are past its
    margin); the spooled names."""
    _sealed(data)
    past_the_margin(data)
    Discovery.open(data).scan()
    return sorted(os.listdir(spool_dir(data)))


def test_a_deleted_site_leaves_clickhouse(tmp_path: Path) -> None:
    data, url = tmp_path / "data", f"chdb://{tmp_path / 'ch'}"
    s = TrailServer(data, workers=1, env=FAST_SEAL).start()
    try:
        doomed, doomed_key = s.create_site("doomed.example")
        kept, kept_key = s.create_site("kept.example")
        send_hits(s, doomed_key, "doomed.example", DAY, 300, net=1)
        send_hits(s, kept_key, "kept.example", DAY, 120, net=2)
        _sealed(data)
        first = run_shipper(data, url, "--drain")
        assert first.returncode == 0, first.stderr
        shipped = site_rows(url, doomed)
        assert shipped["page_views"] == 300 and shipped["session_states"] > 0

        # Sealed and spooled before the deletion, not shipped: these must never arrive.
        send_hits(s, doomed_key, "doomed.example", DAY, 50, net=3, hour=20)
        assert any(f"~{doomed}.arrow" in n for n in spool_now(data))
        r = s.call("DELETE", f"/api/v1/domain?id={doomed}", key=s.admin_key)
        assert r.status == 200, r.body
        assert s.call("GET", f"/api/v1/statistics/total?id={doomed}", key=s.admin_key).status == 404
        kept_total = s.stats("total", kept, **{"from": DAY, "to": DAY})
        kept_pages = s.stats("page", kept, **{"from": DAY, "to": DAY})
    finally:
        s.stop()

    # Killed after ClickHouse acknowledged the first DELETE, before the deletion was recorded.
    killed = run_shipper(data, url, "--drain", TRAIL_CLICKHOUSE_KILL_AFTER_DELETES="1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert deletions.applied(data) == frozenset()
    assert deletions.deleted_sites(data) == {doomed}
    done = run_shipper(data, url, "--drain")
    assert done.returncode == 0, done.stderr
    assert f"deletion applied to clickhouse: site {doomed} the whole site" in done.stderr
    assert deletions.applied(data) == {f"{doomed}|site"}
    assert os.listdir(spool_dir(data)) == [], "the deleted site's files left the spool unsent"

    assert site_rows(url, doomed) == dict.fromkeys(CH_TABLES, 0)
    assert site_rows(url, kept)["page_views"] == 120
    total, pages = sql_reports(url, doomed, DAY)
    assert (total["visitors"], total["views"], total["sessions"], pages) == (0, 0, 0, [])
    total, pages = sql_reports(url, kept, DAY)
    numbers = ("visitors", "views", "sessions", "bounces")
    assert [total[k] for k in numbers] == [kept_total[k] for k in numbers] and total["views"] == 120
    assert [(p["path"], p["visitors"], p["views"]) for p in pages] == [
        (p["path"], p["visitors"], p["views"]) for p in kept_pages
    ], "the other site is untouched"


def test_the_meta_store_records_deletions_for_every_node(tmp_path: Path) -> None:
    """The records of trail.storage.deletion_log, `sync` and the filter of what is sent."""
    meta = MetaStore.open(tmp_path / "meta")
    try:
        a = meta.create_site(Site(id="", hostname="a.example", subdomain="a"))
        b = meta.create_site(Site(id="", hostname="b.example", subdomain="b"))
        early = tombstones.Tombstone(("page_views",), 0, 1000, 5000)
        late = tombstones.Tombstone(tombstones.ALL_TABLES, 10, 20, 6000)
        deletion_log.record_range(meta, a.id, early)
        deletion_log.record_range(meta, b.id, late)
        assert deletion_log.read(meta).ranges == [(a.id, early), (b.id, late)]

        data = tmp_path / "node"
        assert deletions.sync(meta, data) == frozenset()
        assert tombstones.load(data, a.id) == [early] and tombstones.load(data, b.id) == [late]
        deletions.sync(meta, data)
        assert tombstones.load(data, a.id) == [early], "copied once"

        meta.delete_site(a.id)
        log = deletion_log.read(meta)
        assert log.sites == {a.id} and log.ranges == [(b.id, late)]
        assert deletions.sync(meta, data) == {a.id}
        assert deletions.waiting(data) == [(a.id, None), (b.id, late)]
    finally:
        meta.close()

    rows = pa.table({"time": pa.array([5, 15, 25], pa.int64()).cast(pa.timestamp("ms"))})
    assert batches.keep(data, a.id, "page_views", rows).num_rows == 0
    left = batches.keep(data, b.id, "page_views", rows)
    assert left.column("time").cast("int64").to_pylist() == [5, 25]


def test_a_new_node_records_old_deletions_without_running_them(tmp_path: Path) -> None:
    """A shipper that never sent a batch has no rows of a deletion in ClickHouse: it records
    them as applied without a statement (its ClickHouse here does not even answer)."""
    meta = MetaStore.open(tmp_path / "meta")
    try:
        a = meta.create_site(Site(id="", hostname="a.example", subdomain="a"))
        b = meta.create_site(Site(id="", hostname="b.example", subdomain="b"))
        stone = tombstones.Tombstone(("events",), 0, 1000, 5000)
        deletion_log.record_range(meta, b.id, stone)
        meta.delete_site(a.id)
        data = tmp_path / "node"
        target = parse(f"http://127.0.0.1:{free_port()}/trail")
        shipper = Shipper(data, target, Discovery.open(data), meta=meta)
        assert shipper.delete()
        assert deletions.applied(data) == {f"{a.id}|site", deletions.stone_id(b.id, stone)}
        assert shipper.counters.deletions_pending == 0 and not shipper.counters.connected
    finally:
        meta.close()

"""Two nodes (two data directories) sharing one PostgreSQL meta store and one ClickHouse: a
deletion taken by node A removes the rows node B shipped, and the rows of it that B ships later
(sealed before the deletion) are never counted; a deleted site likewise."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

from tests.clickhouse.test_shipper import run_shipper
from tests.clickhouse.test_site_deletion import (
    CH_TABLES,
    send_hits,
    site_rows,
    spool_now,
    sql_reports,
)
from tests.clickhouse.traffic import DAY, FAST_SEAL
from tests.postgres import PostgresCluster
from tests.server import TrailServer
from trail.clickhouse import deletions
from trail.clickhouse.shipper import read_status
from trail.clickhouse.spool import spool_dir
from trail.storage import tombstones

NEXT = (date.fromisoformat(DAY) + timedelta(days=1)).isoformat()
ON_DAY = f"toDate(time) = '{DAY}'"
ON_NEXT = f"toDate(time) = '{NEXT}'"
NONE = dict.fromkeys(CH_TABLES, 0)


def ship(data: Path, url: str) -> str:
    done = run_shipper(data, url, "--drain")
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_a_deletion_on_one_node_reaches_the_rows_of_another(
    tmp_path: Path, postgres: PostgresCluster
) -> None:
    env = {**FAST_SEAL, "TRAIL_META_STORE": "postgres", "TRAIL_POSTGRES_URL": postgres.database()}
    url = f"chdb://{tmp_path / 'ch'}"
    data_a, data_b = tmp_path / "a" / "data", tmp_path / "b" / "data"
    a = TrailServer(data_a, workers=1, env=env).start()
    b = TrailServer(data_b, workers=1, env=env)
    try:
        b.start()
        b.admin_key = a.admin_key  # one meta store: the first node made the admin
        site, key = a.create_site("shared.example")
        gone, gone_key = b.create_site("gone.example")
        send_hits(a, key, "shared.example", DAY, 40, net=1)
        send_hits(a, key, "shared.example", NEXT, 10, net=1)
        send_hits(a, gone_key, "gone.example", DAY, 30, net=5)
        send_hits(b, key, "shared.example", DAY, 60, net=2)
        send_hits(b, key, "shared.example", NEXT, 20, net=2)
        send_hits(b, gone_key, "gone.example", DAY, 25, net=6)
        spool_now(data_a)
        spool_now(data_b)
        ship(data_a, url)
        ship(data_b, url)
        assert site_rows(url, site, ON_DAY)["page_views"] == 100
        assert site_rows(url, gone)["page_views"] == 55
        shipped_b = read_status(data_b)["rows_shipped"]  # type: ignore[index]

        # Sealed and spooled on B before the deletions, shipped after them.
        send_hits(b, key, "shared.example", DAY, 70, net=3, hour=12)
        send_hits(b, gone_key, "gone.example", DAY, 35, net=7, hour=12)
        spooled = spool_now(data_b)
        assert any(f"~{site}.arrow" in n for n in spooled)
        assert any(f"~{gone}.arrow" in n for n in spooled)

        r = a.call("DELETE", "/api/v1/statistics", {"id": site, "from": DAY, "to": DAY},
                   key=a.admin_key)  # fmt: skip
        assert r.status == 200, r.body
        r = a.call("DELETE", f"/api/v1/domain?id={gone}", key=a.admin_key)
        assert r.status == 200, r.body

        # A applies both to what B shipped; B has not run since.
        assert "deletion applied to clickhouse" in ship(data_a, url)
        assert site_rows(url, site, ON_DAY) == NONE
        assert site_rows(url, site, ON_NEXT)["page_views"] == 30
        assert site_rows(url, gone) == NONE
        assert tombstones.load(data_b, site) == [], "B has not learned of it yet"

        # B learns them from the meta store: its later rows of the range are never sent.
        log_b = ship(data_b, url)
        assert f"deletion applied to clickhouse: site {gone} the whole site" in log_b
        assert read_status(data_b)["rows_shipped"] > shipped_b  # type: ignore[index]
        assert os.listdir(spool_dir(data_b)) == []
        assert tombstones.load(data_b, site) == tombstones.load(data_a, site) != []
        assert deletions.applied(data_b) == deletions.applied(data_a) != frozenset()
        assert site_rows(url, site, ON_DAY) == NONE
        assert site_rows(url, site, ON_NEXT)["page_views"] == 30
        assert site_rows(url, gone) == NONE

        # B's embedded engine hides the range too, and ClickHouse's reports agree.
        assert b.stats("total", site, **{"from": DAY, "to": DAY})["views"] == 0
        total, pages = sql_reports(url, site, DAY)
        assert (total["views"], pages) == (0, [])
        total, _ = sql_reports(url, site, NEXT)
        assert total["views"] == 30
        assert b.call("GET", f"/api/v1/statistics/total?id={gone}", key=b.admin_key).status == 404
    finally:
        b.stop()
        a.stop()

"""Deleting a site deletes every record that belongs to it, whichever module keeps it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lmdb
import orjson

from tests.server import TrailServer


def records_of(data_dir: Path, site: str) -> dict[str, int]:
    """Count records with this domain_id per sub-database, reading the meta env directly."""
    env = lmdb.open(str(data_dir / "meta"), max_dbs=128, readonly=True, lock=False)
    counts: dict[str, int] = {}
    with env.begin() as txn:
        for name, _ in txn.cursor():
            db = env.open_db(bytes(name), txn=txn, create=False)
            for _, raw in txn.cursor(db=db):
                rec = orjson.loads(raw)
                if isinstance(rec, dict) and rec.get("domain_id") == site:
                    counts[bytes(name).decode()] = counts.get(bytes(name).decode(), 0) + 1
    env.close()
    return counts


def test_site_records_go_with_the_site(tmp_path: Path) -> None:
    s = TrailServer(tmp_path / "data", workers=1).start()
    try:
        site, _ = s.create_site("gone.example")
        other, _ = s.create_site("kept.example")
        admin = s.admin_key
        for domain in (site, other):
            assert (
                s.call(
                    "POST",
                    "/api/v1/goal",
                    {"domain_id": domain, "name": "G", "path_pattern": "/x"},
                    key=admin,
                ).status
                == 200
            )
            assert (
                s.call(
                    "POST",
                    "/api/v1/filter",
                    {"domain_id": domain, "type": "ip", "filter": "10.0.0.1"},
                    key=admin,
                ).status
                == 200
            )
            assert (
                s.call(
                    "POST",
                    "/api/v1/domain/alternative",
                    {"domain_id": domain, "hostname": f"alt.{domain[:8]}.org"},
                    key=admin,
                ).status
                == 200
            )
        before = records_of(s.data_dir, site)
        assert {"goals", "filters", "alternatives", "clients"} <= set(before), before
        assert s.call("DELETE", f"/api/v1/domain?id={site}", key=admin).status == 200
        assert records_of(s.data_dir, site) == {}
        assert records_of(s.data_dir, other) == before  # the other site keeps exactly its own
    finally:
        s.stop()


CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def send_hits(s: TrailServer, key: str, host: str, n: int) -> None:
    batch = [
        {"url": f"https://{host}/p{i}", "ip": f"81.2.69.{i + 1}", "user_agent": CHROME}
        for i in range(n)
    ]
    assert s.call("POST", "/api/v1/hit/batch", batch, key=key).status == 200


def stored_dirs(data_dir: Path, site: str) -> list[Path]:
    return sorted(p for p in (data_dir / "segments").glob(f"*/site={site}") if p.exists())


def wait_for(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def visitors_today(s: TrailServer, site: str) -> int:
    today = datetime.now(UTC).date().isoformat()
    return int(s.stats("total", site, **{"from": today, "to": today})["visitors"])


def test_deleting_a_domain_deletes_its_statistics_even_rows_still_in_the_wal(
    tmp_path: Path,
) -> None:
    """Pirsch DELETE /api/v1/domain removes the site's rows on disk; rows that were still in the
    WAL when it was deleted are removed by the maintenance process once they are sealed."""
    env = {"TRAIL_SEAL_INTERVAL_MS": "1500", "TRAIL_DELETED_SITES_INTERVAL_S": "0.5"}
    s = TrailServer(tmp_path / "data", workers=1, env=env).start()
    try:
        site, key = s.create_site("gone.example")
        other, other_key = s.create_site("kept.example")
        send_hits(s, key, "gone.example", 5)
        send_hits(s, other_key, "kept.example", 3)
        wait_for(lambda: visitors_today(s, site) == 5 and visitors_today(s, other) == 3)
        wait_for(lambda: bool(stored_dirs(s.data_dir, site)))
        send_hits(s, key, "gone.example", 4)  # unsealed (in the WAL) when the site goes
        assert s.call("DELETE", f"/api/v1/domain?id={site}", key=s.admin_key).status == 200
        assert stored_dirs(s.data_dir, site) == []
        # The seal interval passes: the WAL rows reach the disk, and the sweep removes them.
        log = s.data_dir.parent / f"server-{s.port}.log"
        wait_for(lambda: f"removed the stored rows of deleted site {site}" in log.read_text())
        assert stored_dirs(s.data_dir, site) == []
        assert visitors_today(s, other) == 3
        r = s.call(
            "GET",
            f"/api/v1/statistics/total?id={site}&from=2000-01-01&to=2000-01-01",
            key=s.admin_key,
        )
        assert r.status == 404
    finally:
        s.stop()


def test_deleting_an_organization_with_its_domains_deletes_their_statistics(
    tmp_path: Path,
) -> None:
    s = TrailServer(tmp_path / "data", workers=1, env={"TRAIL_SEAL_INTERVAL_MS": "200"}).start()
    try:
        org = s.call("POST", "/api/v1/organization", {"name": "Org"}, key=s.admin_key).json()
        site, key = s.create_site("orgsite.example")
        r = s.call(
            "POST",
            "/api/v1/organization/domain",
            {"id": org["id"], "domain_id": site},
            key=s.admin_key,
        )
        assert r.status == 200, r.body
        send_hits(s, key, "orgsite.example", 2)
        wait_for(lambda: visitors_today(s, site) == 2 and bool(stored_dirs(s.data_dir, site)))
        r = s.call(
            "DELETE", f"/api/v1/organization?id={org['id']}&delete_domains=true", key=s.admin_key
        )
        assert r.status == 200, r.body
        assert stored_dirs(s.data_dir, site) == []
        assert records_of(s.data_dir, site) == {}
    finally:
        s.stop()

"""Deleting a site deletes every record that belongs to it, whichever module keeps it."""

from __future__ import annotations

from pathlib import Path

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

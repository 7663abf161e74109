"""The deletions every node applies to the rows it keeps outside its data directory (ClickHouse):
a record per deleted site and per deleted range of statistics, in the meta store's `deletions`
kind. With `meta_store = "postgres"` every node reads the same records, whichever node took
the request.

    site=<site id>      {"site_id": ..., "deleted_at": ms}                    the whole site
    range=<site id>|<deleted_at>|<tables>|<from>|<to>
                        {"site_id": ..., "tables": [...], "from": ms, "to": ms, "deleted_at": ms}

A site's record is written in the transaction that deletes the site (trail.storage.cascade), so
no crash separates the two. The field is `site_id`, so that deleting a site also takes its range
records with it (the cascade deletes what points at a site); the site's own record is written
after that. Records are kept forever, as tombstones are: a node can ship late rows of a deleted
range at any time, and a node started later must learn every deletion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trail.storage.tables import Tables, Txn

if TYPE_CHECKING:  # not imported at run time: the meta store loads without Polars
    from trail.storage.tombstones import Tombstone

KIND = "deletions"


@dataclass(frozen=True)
class Log:
    """What the meta store says was deleted: whole sites, and ranges of sites that remain."""

    sites: frozenset[str] = frozenset()
    ranges: list[tuple[str, Tombstone]] = field(default_factory=list)


def record_site(tables: Tables, txn: Txn, site_id: str) -> None:
    """Record a deleted site, in the transaction that deletes it."""
    deleted_at = int(time.time() * 1000)
    tables[KIND].put(f"site={site_id}", {"site_id": site_id, "deleted_at": deleted_at}, txn)


def record_range(meta: Any, site_id: str, stone: Tombstone) -> None:
    """Record a deletion of a site's statistics (`DELETE /api/v1/statistics`)."""
    key = "|".join(
        (site_id, str(stone.deleted_at_ms), ",".join(stone.tables), str(stone.start_ms),
         str(stone.end_ms))
    )  # fmt: skip
    meta.tables[KIND].put(f"range={key}", {"site_id": site_id, **stone.to_json()})


def read(meta: Any) -> Log:
    """Every recorded deletion (one scan of a small kind)."""
    from trail.storage.tombstones import Tombstone

    sites: set[str] = set()
    ranges: list[tuple[str, Tombstone]] = []
    for key, rec in meta.tables[KIND].scan():
        if not isinstance(rec, dict) or not isinstance(rec.get("site_id"), str):
            continue
        if key.startswith("site="):
            sites.add(rec["site_id"])
        elif key.startswith("range="):
            stone = Tombstone(
                tuple(rec["tables"]), int(rec["from"]), int(rec["to"]), int(rec["deleted_at"])
            )
            ranges.append((rec["site_id"], stone))
    ranges.sort(key=lambda r: (r[1].deleted_at_ms, r[0]))
    return Log(frozenset(sites), [(s, t) for s, t in ranges if s not in sites])

"""Plain records in a meta sub-database: orjson documents with id, def_time and mod_time.

The resources of the management API that are just "a document owned by a site, a user or an
organization" (alternative domains, members, invitations, snippets, views, themes) share this.
"""

from __future__ import annotations

import uuid
from typing import Any

from trail.storage.meta import MetaStore, now_rfc3339


class Records:
    def __init__(self, meta: MetaStore, db: str) -> None:
        self.meta = meta
        self.db = db

    def create(self, fields: dict[str, Any]) -> dict[str, Any]:
        stamp = now_rfc3339()
        rec = {"id": str(uuid.uuid4()), "def_time": stamp, "mod_time": stamp, **fields}
        with self.meta.env.begin(write=True) as txn:
            self.meta._put(txn, self.db, rec["id"], rec)
        return rec

    def get(self, record_id: str) -> dict[str, Any] | None:
        if not record_id:
            return None
        with self.meta.env.begin() as txn:
            return self.meta._get(txn, self.db, record_id)

    def find(self, **match: Any) -> list[dict[str, Any]]:
        """Every record whose fields equal `match`, oldest first."""
        with self.meta.env.begin() as txn:
            recs = [
                r
                for _, r in self.meta._scan(txn, self.db)
                if all(r.get(k) == v for k, v in match.items())
            ]
        return sorted(recs, key=lambda r: (r.get("def_time", ""), r["id"]))

    def update(self, record_id: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        with self.meta.env.begin(write=True) as txn:
            rec = self.meta._get(txn, self.db, record_id)
            if rec is None:
                return None
            rec = {**rec, **fields, "id": record_id, "mod_time": now_rfc3339()}
            self.meta._put(txn, self.db, record_id, rec)
        return rec

    def delete(self, record_id: str) -> bool:
        with self.meta.env.begin(write=True) as txn:
            if self.meta._get(txn, self.db, record_id) is None:
                return False
            self.meta._delete(txn, self.db, record_id)
        return True

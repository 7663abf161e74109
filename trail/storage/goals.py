"""Conversion goals and funnels: orjson records in two named databases of the meta LMDB env.

They live beside the sites they belong to (ARCHITECTURE.md, "Storage"), opened on the env that
`MetaStore` already holds, so one process never opens the meta env twice. Records are keyed by
their own id and carry `domain_id`; a site has few of them, so listing scans.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import lmdb
import orjson

from trail.storage.meta import now_rfc3339

GOAL_FIELDS = (
    "name", "path_pattern", "pattern", "event_name", "event_meta_key", "event_meta_value",
    "custom_metric_key", "custom_metric_type", "visitor_goal", "cr_goal",
    "custom_metric_total_goal", "custom_metric_avg_goal", "delete_reached", "email_reached",
)  # fmt: skip


def glob_to_regex(glob: str) -> str:
    """A goal's path glob as the regex stored beside it (reference section 5).

    Case-insensitive and anchored; `**` spans path segments, `*` stays inside one; everything
    else is literal: "/path/*" -> "(?i)^/path/[^/]*$".
    """
    parts = []
    for i, chunk in enumerate(glob.split("**")):
        if i:
            parts.append(".*")
        parts.append("[^/]*".join(re.escape(s) for s in chunk.split("*")))
    # re.escape leaves "/" alone but escapes "-" and friends, which RE2 and Rust regex both accept.
    return "(?i)^" + "".join(parts) + "$"


class GoalStore:
    """Goals and funnels of every site, in the meta env's `goals` and `funnels` databases."""

    def __init__(self, env: lmdb.Environment) -> None:
        # Opening named databases takes a write transaction: done once, before serving.
        self.env = env
        self._db = {name: env.open_db(name.encode()) for name in ("goals", "funnels")}

    def _scan(self, db: str, domain_id: str) -> Iterator[dict[str, Any]]:
        with self.env.begin() as txn:
            for _, raw in txn.cursor(db=self._db[db]):
                rec = orjson.loads(raw)
                if rec.get("domain_id") == domain_id:
                    yield rec

    def _get(self, db: str, record_id: str) -> dict[str, Any] | None:
        with self.env.begin() as txn:
            raw = txn.get(record_id.encode(), db=self._db[db])
        return orjson.loads(raw) if raw is not None else None

    def _save(self, db: str, rec: dict[str, Any]) -> dict[str, Any]:
        """Insert (no id) or replace (id of a record of the same domain); KeyError if unknown."""
        stamp = now_rfc3339()
        with self.env.begin(write=True) as txn:
            if rec.get("id"):
                raw = txn.get(rec["id"].encode(), db=self._db[db])
                old = orjson.loads(raw) if raw is not None else None
                if old is None or old.get("domain_id") != rec["domain_id"]:
                    raise KeyError(rec["id"])
                rec = {**rec, "def_time": old["def_time"], "mod_time": stamp}
            else:
                rec = {**rec, "id": str(uuid.uuid4()), "def_time": stamp, "mod_time": stamp}
            txn.put(rec["id"].encode(), orjson.dumps(rec), db=self._db[db])
        return rec

    def _delete(self, db: str, record_id: str) -> bool:
        with self.env.begin(write=True) as txn:
            return bool(txn.delete(record_id.encode(), db=self._db[db]))

    # -- goals --------------------------------------------------------------------------------

    def list_goals(self, domain_id: str) -> list[dict[str, Any]]:
        return sorted(self._scan("goals", domain_id), key=lambda g: (g["name"], g["def_time"]))

    def get_goal(self, goal_id: str) -> dict[str, Any] | None:
        return self._get("goals", goal_id)

    def save_goal(self, goal: dict[str, Any]) -> dict[str, Any]:
        """Store a validated goal (fields of GOAL_FIELDS + domain_id, optional id)."""
        return self._save("goals", goal)

    def delete_goal(self, goal_id: str) -> bool:
        return self._delete("goals", goal_id)

    # -- funnels ------------------------------------------------------------------------------

    def list_funnels(self, domain_id: str) -> list[dict[str, Any]]:
        return sorted(self._scan("funnels", domain_id), key=lambda f: (f["name"], f["def_time"]))

    def get_funnel(self, funnel_id: str) -> dict[str, Any] | None:
        return self._get("funnels", funnel_id)

    def save_funnel(self, funnel: dict[str, Any]) -> dict[str, Any]:
        """Store a validated funnel {domain_id, name, steps: [{name, filter}]}; steps get ids."""
        saved = self._save("funnels", funnel)
        steps = [
            {
                "id": f"{saved['id']}-{i}",
                "def_time": saved["def_time"],
                "mod_time": saved["mod_time"],
                "funnel_id": saved["id"],
                "name": s["name"],
                "step": i,
                "filter": s["filter"],
            }
            for i, s in enumerate(funnel["steps"])
        ]
        return self._save("funnels", {**saved, "steps": steps})

    def delete_funnel(self, funnel_id: str) -> bool:
        return self._delete("funnels", funnel_id)

    def delete_site(self, domain_id: str) -> int:
        """Drop every goal and funnel of a deleted site; returns how many."""
        n = 0
        with self.env.begin(write=True) as txn:
            for db in self._db.values():
                doomed = [
                    k
                    for k, raw in txn.cursor(db=db)
                    if orjson.loads(raw).get("domain_id") == domain_id
                ]
                for key in doomed:
                    txn.delete(key, db=db)
                n += len(doomed)
        return n


_stores: dict[int, GoalStore] = {}


def goal_store(env: lmdb.Environment) -> GoalStore:
    """The process's GoalStore over `env` (named databases are opened once per env)."""
    store = _stores.get(id(env))
    if store is None or store.env is not env:
        store = _stores[id(env)] = GoalStore(env)
    return store

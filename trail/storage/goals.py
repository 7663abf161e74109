"""Conversion goals and funnels: orjson records in two named databases of the meta LMDB env.

They live beside the sites they belong to (ARCHITECTURE.md, "Storage"), in tables of the env that
`MetaStore` already holds, so one process never opens the meta env twice. Records are keyed by
their own id and carry `domain_id`; a site has few of them, so listing scans. Deleting a site
deletes them (trail.storage.cascade).
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from trail.storage.models import now_rfc3339
from trail.storage.tables import Env, Table, tables_of

if TYPE_CHECKING:
    from trail.storage.meta import MetaStore

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
    """Goals and funnels of every site, in the meta env's `goals` and `funnels` tables."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.tables = tables_of(env)
        self._goals, self._funnels = self.tables["goals"], self.tables["funnels"]

    def _save(self, table: Table, rec: dict[str, Any]) -> dict[str, Any]:
        """Insert (no id) or replace (id of a record of the same domain); KeyError if unknown."""
        stamp = now_rfc3339()
        with self.tables.write() as txn:
            if rec.get("id"):
                old = table.get(rec["id"], txn)
                if old is None or old.get("domain_id") != rec["domain_id"]:
                    raise KeyError(rec["id"])
                rec = {**rec, "def_time": old["def_time"], "mod_time": stamp}
            else:
                rec = {**rec, "id": str(uuid.uuid4()), "def_time": stamp, "mod_time": stamp}
            table.put(rec["id"], rec, txn)
        return rec

    # -- goals --------------------------------------------------------------------------------

    def list_goals(self, domain_id: str) -> list[dict[str, Any]]:
        goals = self._goals.find(domain_id=domain_id)
        return sorted(goals, key=lambda g: (g["name"], g["def_time"]))

    def get_goal(self, goal_id: str) -> dict[str, Any] | None:
        return self._goals.get(goal_id)

    def save_goal(self, goal: dict[str, Any]) -> dict[str, Any]:
        """Store a validated goal (fields of GOAL_FIELDS + domain_id, optional id)."""
        return self._save(self._goals, goal)

    def delete_goal(self, goal_id: str) -> bool:
        return self._goals.delete(goal_id)

    # -- funnels ------------------------------------------------------------------------------

    def list_funnels(self, domain_id: str) -> list[dict[str, Any]]:
        funnels = self._funnels.find(domain_id=domain_id)
        return sorted(funnels, key=lambda f: (f["name"], f["def_time"]))

    def get_funnel(self, funnel_id: str) -> dict[str, Any] | None:
        return self._funnels.get(funnel_id)

    def save_funnel(self, funnel: dict[str, Any]) -> dict[str, Any]:
        """Store a validated funnel {domain_id, name, steps: [{name, filter}]}; steps get ids."""
        saved = self._save(self._funnels, funnel)
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
        return self._save(self._funnels, {**saved, "steps": steps})

    def delete_funnel(self, funnel_id: str) -> bool:
        return self._funnels.delete(funnel_id)

    def delete_site(self, domain_id: str) -> int:
        """Drop every goal and funnel of a site; returns how many. (MetaStore.delete_site
        already takes them with the site: this is for a site whose goals alone go.)"""
        n = 0
        with self.tables.write() as txn:
            for table in (self._goals, self._funnels):
                for rec in table.find(txn, domain_id=domain_id):
                    n += table.delete(rec["id"], txn)
        return n


def goal_store(meta: MetaStore | Env) -> GoalStore:
    """The goals and funnels of a meta store (or of its env)."""
    from trail.storage.meta import MetaStore

    return GoalStore(meta.env if isinstance(meta, MetaStore) else meta)

"""Documents of the management API kept in the meta env, one table per kind.

The access model's records (alternative domains, members, invitations, snippets, views, themes)
and the per-site settings (traffic filters, webhooks and their outbox, email reports, short
links, traffic alert settings) are all orjson documents {id, def_time, mod_time, ...} keyed by
their id. Those owned by a site carry `domain_id`, so a site's documents are a filtered scan:
these lists are short and read rarely. Deleting a site, user or account takes its documents
with it (trail.storage.cascade).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trail.storage.models import now_rfc3339, random_alnum
from trail.storage.tables import Env, Record, Table, Txn, tables_of

if TYPE_CHECKING:
    from trail.storage.meta import MetaStore

__all__ = ["Record", "Records", "new_id", "records"]

# The access model's kinds have always had UUID ids; clients have stored them, so they keep them.
UUID_KINDS = frozenset(("alternatives", "members", "invitations", "snippets", "views", "themes"))


def records(meta: MetaStore, kind: str) -> Records:
    """The documents of one kind over `meta`'s env."""
    return Records(meta.env, kind)


def new_id(kind: str) -> str:
    """A fresh id for a document of `kind`: a UUID, or Pirsch-style 10 letters and digits."""
    return str(uuid.uuid4()) if kind in UUID_KINDS else random_alnum(10)


class Records:
    """A table of documents keyed by their `id`, stamped with def_time and mod_time.

    Every method takes an optional `txn` (from `tables_of(env).write()`) to share one."""

    def __init__(self, env: Env, kind: str) -> None:
        self.env = env
        self.kind = kind
        self.table: Table = tables_of(env)[kind]

    def get(self, record_id: str, txn: Txn | None = None) -> Record | None:
        value = self.table.get(record_id, txn)
        return value if isinstance(value, dict) else None

    def find(self, txn: Txn | None = None, /, **match: Any) -> list[Record]:
        """Every document whose fields equal `match` (all of them without one), oldest first."""
        out = self.table.find(txn, **match)
        return sorted(out, key=lambda r: (r.get("def_time", ""), r.get("id", "")))

    def create(
        self, fields: Record, record_id: str | None = None, txn: Txn | None = None
    ) -> Record:
        """Store a new document with a fresh id (unless given) and def/mod times."""
        stamp = now_rfc3339()
        record_id = record_id or new_id(self.kind)
        record = {"id": record_id, "def_time": stamp, "mod_time": stamp, **fields}
        self.put(record, txn)
        return record

    def put(self, record: Record, txn: Txn | None = None) -> None:
        self.table.put(str(record["id"]), record, txn)

    def update(
        self,
        record_id: str,
        change: Callable[[Record], Record | None],
        touch: bool = True,
        txn: Txn | None = None,
    ) -> Record | None:
        """Read-modify-write in one write transaction; `change` returning None deletes it."""

        def stamped(record: Record) -> Record | None:
            changed = change(record)
            if changed is not None and touch:
                changed["mod_time"] = now_rfc3339()
            return changed

        return self.table.update(record_id, stamped, txn)

    def merge(
        self,
        record_id: str,
        fields: Record,
        touch: bool = True,
        when: Callable[[Record], bool] | None = None,
        txn: Txn | None = None,
    ) -> Record | None:
        """Set `fields` on a stored document (only if `when(document)`, when given)."""

        def change(record: Record) -> Record:
            return {**record, **fields} if when is None or when(record) else record

        return self.update(record_id, change, touch=touch, txn=txn)

    def delete(self, record_id: str, txn: Txn | None = None) -> bool:
        return self.table.delete(record_id, txn)

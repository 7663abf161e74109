"""Documents of the management API kept in the meta env, one named sub-db per kind.

The access model's records (alternative domains, members, invitations, snippets, views, themes)
and the per-site settings (traffic filters, webhooks and their outbox, email reports, short
links, traffic alert settings) are all orjson documents {id, def_time, mod_time, ...} keyed by
their id. Those owned by a site carry `domain_id`, so a site's documents are a filtered scan:
these lists are short and read rarely.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from trail.storage.meta import now_rfc3339, random_alnum

if TYPE_CHECKING:
    import lmdb

    from trail.storage.meta import MetaStore

Record = dict[str, Any]
# The access model's kinds have always had UUID ids; clients have stored them, so they keep them.
UUID_KINDS = frozenset(("alternatives", "members", "invitations", "snippets", "views", "themes"))
_open: dict[tuple[int, str], Records] = {}
_open_lock = threading.Lock()


def records(meta: MetaStore, kind: str) -> Records:
    """The store of one document kind over `meta`'s env (opened once per env and kind)."""
    key = (id(meta.env), kind)
    with _open_lock:
        store = _open.get(key)
        if store is None or store.env is not meta.env:
            store = _open[key] = Records(meta.env, kind)
    return store


def new_id(kind: str) -> str:
    """A fresh id for a document of `kind`: a UUID, or Pirsch-style 10 letters and digits."""
    return str(uuid.uuid4()) if kind in UUID_KINDS else random_alnum(10)


class Records:
    def __init__(self, env: lmdb.Environment, kind: str) -> None:
        self.env = env
        self.kind = kind
        self.db = env.open_db(kind.encode())

    def get(self, record_id: str) -> Record | None:
        if not record_id:
            return None
        with self.env.begin(db=self.db) as txn:
            raw = txn.get(record_id.encode())
        return orjson.loads(raw) if raw is not None else None

    def find(self, **match: Any) -> list[Record]:
        """Every document whose fields equal `match` (all of them without one), oldest first."""
        with self.env.begin(db=self.db) as txn:
            out = [orjson.loads(raw) for _, raw in txn.cursor()]
        out = [r for r in out if all(r.get(k) == v for k, v in match.items())]
        return sorted(out, key=lambda r: (r.get("def_time", ""), r.get("id", "")))

    def create(self, fields: Record, record_id: str | None = None) -> Record:
        """Store a new document with a fresh id (unless given) and def/mod times."""
        stamp = now_rfc3339()
        record_id = record_id or new_id(self.kind)
        record = {"id": record_id, "def_time": stamp, "mod_time": stamp, **fields}
        self.put(record)
        return record

    def put(self, record: Record) -> None:
        with self.env.begin(write=True, db=self.db) as txn:
            txn.put(str(record["id"]).encode(), orjson.dumps(record))

    def update(
        self, record_id: str, change: Callable[[Record], Record | None], touch: bool = True
    ) -> Record | None:
        """Read-modify-write in one write transaction; `change` returning None deletes it."""
        with self.env.begin(write=True, db=self.db) as txn:
            raw = txn.get(record_id.encode())
            if raw is None:
                return None
            record = change(orjson.loads(raw))
            if record is None:
                txn.delete(record_id.encode())
                return None
            if touch:
                record["mod_time"] = now_rfc3339()
            txn.put(record_id.encode(), orjson.dumps(record))
        return record

    def merge(
        self,
        record_id: str,
        fields: Record,
        touch: bool = True,
        when: Callable[[Record], bool] | None = None,
    ) -> Record | None:
        """Set `fields` on a stored document (only if `when(document)`, when given)."""

        def change(record: Record) -> Record:
            return {**record, **fields} if when is None or when(record) else record

        return self.update(record_id, change, touch=touch)

    def delete(self, record_id: str) -> bool:
        if not record_id:
            return False
        with self.env.begin(write=True, db=self.db) as txn:
            return bool(txn.delete(record_id.encode()))

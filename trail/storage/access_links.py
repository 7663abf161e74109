"""Access links: read-only codes for one site's statistics, kept in meta's `links` sub-db.

Keyed by code so the unauthenticated statistics path finds a link with one lookup
(MetaStore.site_for_link, which also checks `valid_until`). A link goes with its site."""

from __future__ import annotations

import uuid
from typing import Any

from trail.storage.meta import MetaStore, now_rfc3339, random_alnum
from trail.storage.tables import Table


def _links(meta: MetaStore) -> Table:
    return meta.tables["links"]


def public(rec: dict[str, Any]) -> dict[str, Any]:
    return {
        k: rec.get(k)
        for k in ("id", "def_time", "mod_time", "domain_id", "code", "description", "valid_until")
    }


def create(
    meta: MetaStore, site_id: str, description: str, valid_until: str | None
) -> dict[str, Any]:
    stamp, code = now_rfc3339(), random_alnum(32)
    rec = {
        "id": str(uuid.uuid4()),
        "def_time": stamp,
        "mod_time": stamp,
        "domain_id": site_id,
        "site_id": site_id,
        "code": code,
        "description": description,
        "valid_until": valid_until,
    }
    _links(meta).put(code, rec)
    return rec


def list_for(meta: MetaStore, site_id: str) -> list[dict[str, Any]]:
    recs = _links(meta).find(site_id=site_id)
    return sorted(recs, key=lambda r: (r.get("def_time", ""), r.get("id", "")))


def get(meta: MetaStore, link_id: str) -> dict[str, Any] | None:
    return next(iter(_links(meta).find(id=link_id)), None) if link_id else None


def update(meta: MetaStore, rec: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    rec = {**rec, **fields, "mod_time": now_rfc3339()}
    _links(meta).put(rec["code"], rec)
    return rec


def delete(meta: MetaStore, rec: dict[str, Any]) -> None:
    _links(meta).delete(rec.get("code") or "")

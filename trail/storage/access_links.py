"""Access links: read-only codes for one site's statistics, kept in meta's `links` sub-db.

Keyed by code so the unauthenticated statistics path finds a link with one lookup
(MetaStore.site_for_link, which also checks `valid_until`)."""

from __future__ import annotations

import uuid
from typing import Any

from trail.storage.meta import MetaStore, now_rfc3339, random_alnum


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
    with meta.env.begin(write=True) as txn:
        meta._put(txn, "links", code, rec)
    return rec


def list_for(meta: MetaStore, site_id: str) -> list[dict[str, Any]]:
    with meta.env.begin() as txn:
        recs = [r for _, r in meta._scan(txn, "links") if r.get("site_id") == site_id]
    return sorted(recs, key=lambda r: (r.get("def_time", ""), r.get("id", "")))


def get(meta: MetaStore, link_id: str) -> dict[str, Any] | None:
    with meta.env.begin() as txn:
        return next((r for _, r in meta._scan(txn, "links") if r.get("id") == link_id), None)


def update(meta: MetaStore, rec: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    rec = {**rec, **fields, "mod_time": now_rfc3339()}
    with meta.env.begin(write=True) as txn:
        meta._put(txn, "links", rec["code"], rec)
    return rec


def delete(meta: MetaStore, rec: dict[str, Any]) -> None:
    with meta.env.begin(write=True) as txn:
        meta._delete(txn, "links", rec["code"])

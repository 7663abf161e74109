"""Pirsch alternative domains (`/api/v1/domain/alternative`): more host names a site accepts.

Ingestion reads them through MetaStore.site_rules (hits for any other host name are dropped
with the reason hostname_not_allowed, unless the site's settings.allow_any_hostname is true)."""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.common import ApiError, handler, json_response
from trail.api.pirsch_manage import HOSTNAME_RE
from trail.api.resources import (
    body_object,
    caller,
    id_in_query,
    invalid,
    ok,
    record_site,
    site_in_body,
    site_in_query,
    string_field,
)
from trail.context import Context
from trail.storage.documents import Records, records
from trail.storage.meta import Site

PATH = "/api/v1/domain/alternative"
FIELDS = ("id", "def_time", "mod_time", "domain_id", "hostname")


def register(app: Any, ctx: Context) -> None:
    store = records(ctx.meta, "alternatives")
    app.get(PATH)(handler(lambda request: list_alternatives(ctx, store, request)))
    app.post(PATH)(handler(lambda request: create_alternative(ctx, store, request)))
    app.put(PATH)(handler(lambda request: update_alternative(ctx, store, request)))
    app.delete(PATH)(handler(lambda request: delete_alternative(ctx, store, request)))


def _shape(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: rec.get(k) for k in FIELDS}


def _hostname(body: dict[str, Any], site: Site, store: Records, own_id: str = "") -> str:
    errors: dict[str, str] = {}
    host = string_field(body, "hostname", errors, max_len=253).lower().rstrip(".")
    if host and not HOSTNAME_RE.match(host):
        errors["hostname"] = "must be a host name like www.example.com (no scheme, port or path)"
    elif host == site.hostname or any(
        r["hostname"] == host and r["id"] != own_id for r in store.find(domain_id=site.id)
    ):
        errors["hostname"] = "already allowed for this domain"
    invalid(errors, "alternative domain")
    return host


def list_alternatives(ctx: Context, store: Records, request: Any) -> Response:
    site = site_in_query(ctx, request)
    return json_response([_shape(r) for r in store.find(domain_id=site.id)])


def create_alternative(ctx: Context, store: Records, request: Any) -> Response:
    caller(ctx, request)
    body = body_object(ctx, request)
    site = site_in_body(ctx, request, body)
    host = _hostname(body, site, store)
    return json_response(_shape(store.create({"domain_id": site.id, "hostname": host})))


def update_alternative(ctx: Context, store: Records, request: Any) -> Response:
    caller(ctx, request)
    body = body_object(ctx, request)
    rec = store.get(str(body.get("id") or ""))
    if not body.get("id"):
        raise ApiError(400, "id is required", {"id": "required"})
    site = record_site(ctx, request, rec, "alternative domain")
    host = _hostname(body, site, store, own_id=str(body["id"]))
    return json_response(_shape(store.merge(str(body["id"]), {"hostname": host}) or {}))


def delete_alternative(ctx: Context, store: Records, request: Any) -> Response:
    rec_id = id_in_query(ctx, request)
    record_site(ctx, request, store.get(rec_id), "alternative domain")
    store.delete(rec_id)
    return ok()

"""Pirsch alternative domains (`/api/v1/domain/alternative`): more host names a site accepts.

Ingestion reads them through MetaStore.site_rules (hits for any other host name are dropped
with the reason hostname_not_allowed, unless the site's settings.allow_any_hostname is true)."""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.http import body_object, empty, json_response, string_field
from trail.api.pirsch.auth import caller, id_in_query, record_site, site_in_body, site_in_query
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, check_fields
from trail.storage.documents import Records, records
from trail.storage.meta import Site
from trail.validation import HOSTNAME_MAX, is_hostname, normal_hostname

routes = Routes()

FIELDS = ("id", "def_time", "mod_time", "domain_id", "hostname")


def _shape(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: rec.get(k) for k in FIELDS}


def _hostname(body: dict[str, Any], site: Site, store: Records, own_id: str = "") -> str:
    errors: dict[str, str] = {}
    host = normal_hostname(string_field(body, "hostname", errors, max_len=HOSTNAME_MAX))
    if host and not is_hostname(host):
        errors["hostname"] = "must be a host name like www.example.com (no scheme, port or path)"
    elif host == site.hostname or any(
        r["hostname"] == host and r["id"] != own_id for r in store.find(domain_id=site.id)
    ):
        errors["hostname"] = "already allowed for this domain"
    check_fields(errors, "alternative domain")
    return host


@routes.get("/api/v1/domain/alternative")
def list_alternatives(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, "alternatives")
    site = site_in_query(ctx, request)
    return json_response([_shape(r) for r in store.find(domain_id=site.id)])


@routes.post("/api/v1/domain/alternative")
def create_alternative(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, "alternatives")
    caller(ctx, request)
    body = body_object(ctx, request)
    site = site_in_body(ctx, request, body)
    host = _hostname(body, site, store)
    return json_response(_shape(store.create({"domain_id": site.id, "hostname": host})))


@routes.put("/api/v1/domain/alternative")
def update_alternative(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, "alternatives")
    caller(ctx, request)
    body = body_object(ctx, request)
    rec = store.get(str(body.get("id") or ""))
    if not body.get("id"):
        raise ApiError(400, "id is required", {"id": "required"})
    site = record_site(ctx, request, rec, "alternative domain")
    host = _hostname(body, site, store, own_id=str(body["id"]))
    return json_response(_shape(store.merge(str(body["id"]), {"hostname": host}) or {}))


@routes.delete("/api/v1/domain/alternative")
def delete_alternative(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, "alternatives")
    rec_id = id_in_query(ctx, request)
    record_site(ctx, request, store.get(rec_id), "alternative domain")
    store.delete(rec_id)
    return empty()

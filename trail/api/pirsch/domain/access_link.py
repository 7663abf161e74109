"""Pirsch access links (`/api/v1/domain/link`): codes giving read-only statistics of one site,
without credentials, as the `access` query parameter, until `valid_until` (none = forever)."""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.http import body_object, empty, json_response, string_field, timestamp_field
from trail.api.pirsch.auth import caller, id_in_query, record_site, site_in_body, site_in_query
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, check_fields
from trail.storage import access_links

routes = Routes()


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    description = string_field(body, "description", errors, required=False, max_len=500)
    valid_until = timestamp_field(body, "valid_until", errors)
    check_fields(errors, "access link")
    return {"description": description, "valid_until": valid_until}


@routes.get("/api/v1/domain/link")
def list_links(ctx: Context, request: Any) -> Response:
    # The codes are credentials: only Admins and Owners see them.
    site = site_in_query(ctx, request, role="Admin")
    return json_response([access_links.public(r) for r in access_links.list_for(ctx.meta, site.id)])


@routes.post("/api/v1/domain/link")
def create_link(ctx: Context, request: Any) -> Response:
    caller(ctx, request)
    body = body_object(ctx, request)
    site = site_in_body(ctx, request, body)
    fields = _fields(body)
    return json_response(access_links.public(access_links.create(ctx.meta, site.id, **fields)))


@routes.put("/api/v1/domain/link")
def update_link(ctx: Context, request: Any) -> Response:
    caller(ctx, request)
    body = body_object(ctx, request)
    if not body.get("id"):
        raise ApiError(400, "id is required", {"id": "required"})
    rec = access_links.get(ctx.meta, str(body["id"]))
    record_site(ctx, request, rec, "access link")
    fields = _fields(body)
    return json_response(access_links.public(access_links.update(ctx.meta, rec or {}, fields)))


@routes.delete("/api/v1/domain/link")
def delete_link(ctx: Context, request: Any) -> Response:
    link_id = id_in_query(ctx, request)
    rec = access_links.get(ctx.meta, link_id)
    record_site(ctx, request, rec, "access link")
    access_links.delete(ctx.meta, rec or {})
    return empty()

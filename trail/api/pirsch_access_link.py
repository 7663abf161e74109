"""Pirsch access links (`/api/v1/domain/link`): codes giving read-only statistics of one site,
without credentials, as the `access` query parameter, until `valid_until` (none = forever)."""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.common import ApiError, handler, json_response
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
    timestamp_field,
)
from trail.context import Context
from trail.storage import access_links

PATH = "/api/v1/domain/link"


def register(app: Any, ctx: Context) -> None:
    app.get(PATH)(handler(lambda request: list_links(ctx, request)))
    app.post(PATH)(handler(lambda request: create_link(ctx, request)))
    app.put(PATH)(handler(lambda request: update_link(ctx, request)))
    app.delete(PATH)(handler(lambda request: delete_link(ctx, request)))


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    description = string_field(body, "description", errors, required=False, max_len=500)
    valid_until = timestamp_field(body, "valid_until", errors)
    invalid(errors, "access link")
    return {"description": description, "valid_until": valid_until}


def list_links(ctx: Context, request: Any) -> Response:
    # The codes are credentials: only Admins and Owners see them.
    site = site_in_query(ctx, request, role="Admin")
    return json_response([access_links.public(r) for r in access_links.list_for(ctx.meta, site.id)])


def create_link(ctx: Context, request: Any) -> Response:
    caller(ctx, request)
    body = body_object(ctx, request)
    site = site_in_body(ctx, request, body)
    fields = _fields(body)
    return json_response(access_links.public(access_links.create(ctx.meta, site.id, **fields)))


def update_link(ctx: Context, request: Any) -> Response:
    caller(ctx, request)
    body = body_object(ctx, request)
    if not body.get("id"):
        raise ApiError(400, "id is required", {"id": "required"})
    rec = access_links.get(ctx.meta, str(body["id"]))
    record_site(ctx, request, rec, "access link")
    fields = _fields(body)
    return json_response(access_links.public(access_links.update(ctx.meta, rec or {}, fields)))


def delete_link(ctx: Context, request: Any) -> Response:
    link_id = id_in_query(ctx, request)
    rec = access_links.get(ctx.meta, link_id)
    record_site(ctx, request, rec, "access link")
    access_links.delete(ctx.meta, rec or {})
    return ok()

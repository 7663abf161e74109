"""Pirsch snippets (`/api/v1/domain/snippet`): per-site tracking snippet options by type."""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.http import (
    body_object,
    bool_field,
    json_response,
    query_params,
    query_value,
    string_field,
)
from trail.api.pirsch.auth import caller, site_in_body, site_in_query
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, check_fields
from trail.storage.documents import records

routes = Routes()

TYPES = ("page view", "event", "session")
TEXT_FIELDS = ("include", "exclude", "domains", "endpoint", "sample")


def _type(value: Any, errors: dict[str, str]) -> str:
    if value not in TYPES:
        errors["type"] = "must be one of: " + ", ".join(TYPES)
    return str(value)


def _shape(rec: dict[str, Any]) -> dict[str, Any]:
    return {
        k: rec.get(k, "")
        for k in ("id", "def_time", "mod_time", "domain_id", "type", "dev", *TEXT_FIELDS)
    }


@routes.get("/api/v1/domain/snippet")
def get_snippet(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, "snippets")
    site = site_in_query(ctx, request)
    errors: dict[str, str] = {}
    kind = _type(query_value(query_params(request), "type"), errors)
    check_fields(errors, "snippet")
    found = store.find(domain_id=site.id, type=kind)
    default = {
        "id": None,
        "def_time": None,
        "mod_time": None,
        "domain_id": site.id,
        "type": kind,
        "dev": False,
    }
    return json_response(_shape(found[0] if found else default))


@routes.post("/api/v1/domain/snippet")
def save_snippet(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, "snippets")
    caller(ctx, request)
    body = body_object(ctx, request)
    site = site_in_body(ctx, request, body)
    errors: dict[str, str] = {}
    fields: dict[str, Any] = {"domain_id": site.id, "type": _type(body.get("type"), errors)}
    fields["dev"] = bool_field(body, "dev", errors)
    for name in TEXT_FIELDS:
        fields[name] = string_field(body, name, errors, required=False, max_len=2000)
    endpoint = fields["endpoint"]
    if endpoint and not endpoint.startswith(("https://", "http://", "/")):
        errors["endpoint"] = "must be an http(s) URL or a path"
    check_fields(errors, "snippet")
    found = store.find(domain_id=site.id, type=fields["type"])
    rec = store.merge(found[0]["id"], fields) if found else store.create(fields)
    if rec is None:
        raise ApiError(404, "snippet not found")
    return json_response(_shape(rec))

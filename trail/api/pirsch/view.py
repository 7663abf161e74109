"""Pirsch views (`/api/v1/view`): saved filter sets of a site's dashboard."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from robyn import Response

from trail.api.http import (
    body_object,
    bool_field,
    empty,
    json_response,
    query_params,
    query_value,
    string_field,
)
from trail.api.pirsch.auth import caller, id_in_query, record_site, site_in_body, site_in_query
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, check_fields
from trail.storage.documents import records

routes = Routes()

LIST_FIELDS = (
    "path",
    "entry_path",
    "exit_path",
    "pattern",
    "language",
    "country",
    "city",
    "referrer",
    "referrer_name",
    "os",
    "browser",
    "platform",
    "screen_class",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "event",
    "event_meta_key",
    "event_meta_value",
    "tag",
    "tag_key",
    "tag_value",
)
COMPARE = (None, "previous", "year", "custom")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@routes.get("/api/v1/view")
def list_views(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, "views")
    site = site_in_query(ctx, request)
    search = query_value(query_params(request), "search").lower()
    views = [v for v in store.find(domain_id=site.id) if search in v.get("name", "").lower()]
    return json_response(views)


def parse_view(body: dict[str, Any]) -> dict[str, Any]:
    """The stored fields of a view; 400 naming every bad field."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {"name": string_field(body, "name", errors, max_len=100)}
    for name in ("from", "to", "compare_from", "compare_to"):
        out[name] = _date(body.get(name), name, errors)
    for name in ("from_time", "to_time"):
        value = body.get(name)
        if value not in (None, "") and not (isinstance(value, str) and TIME_RE.match(value)):
            errors[name] = "must be a time like 14:56"
        out[name] = value or None
    out["period"] = _int(body.get("period"), "period", errors)
    out["compare"] = body.get("compare") or None
    if out["compare"] not in COMPARE:
        errors["compare"] = "must be null, previous, year or custom"
    out["compare_weekday"] = bool_field(body, "compare_weekday", errors)
    for name in LIST_FIELDS:
        value = body.get(name)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            errors[name] = "must be a list of strings or null"
        out[name] = value or None
    for name in ("visitor_id", "session_id"):
        out[name] = _int(body.get(name), name, errors)
    check_fields(errors, "view")
    return out


def _date(value: Any, name: str, errors: dict[str, str]) -> str | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        errors[name] = "must be a date like 2024-01-31"
        return None


def _int(value: Any, name: str, errors: dict[str, str]) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        errors[name] = "must be a non-negative whole number or null"
        return None
    return value


@routes.post("/api/v1/view")
def save_view(ctx: Context, request: Any) -> Response:
    """Create a view, or update the one named by `id` (it must belong to the same site)."""
    store = records(ctx.meta, "views")
    principal = caller(ctx, request)
    body = body_object(ctx, request)
    site = site_in_body(ctx, request, body)
    fields = parse_view(body)
    if body.get("id"):
        rec = store.get(str(body["id"]))
        if rec is None or rec.get("domain_id") != site.id:
            raise ApiError(404, "view not found")
        return json_response(store.merge(rec["id"], fields))
    user_id = principal.user.id if principal.user else None
    return json_response(store.create({"domain_id": site.id, "user_id": user_id, **fields}))


@routes.delete("/api/v1/view")
def delete_view(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, "views")
    view_id = id_in_query(ctx, request)
    record_site(ctx, request, store.get(view_id), "view")
    store.delete(view_id)
    return empty()

"""Pirsch webhooks: `GET/POST/DELETE /api/v1/webhook`.

A webhook names a custom event; the maintenance process (trail.services.webhooks) POSTs a JSON
payload to its endpoint for every such event. Saving a webhook, even unchanged, re-activates one
that was disabled after failed deliveries.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from trail.api.http import body_object, json_response, text_field
from trail.api.pirsch.auth import delete_record, record_in_reach, site_for, site_from_query
from trail.api.routing import Routes
from trail.errors import check_fields
from trail.storage.documents import records

routes = Routes()

if TYPE_CHECKING:
    from robyn import Response

    from trail.context import Context

KIND = "webhooks"


@routes.get("/api/v1/webhook")
def list_webhooks(ctx: Context, request: Any) -> Response:
    site = site_from_query(ctx, request)
    return json_response([public(r) for r in records(ctx.meta, KIND).find(domain_id=site.id)])


@routes.post("/api/v1/webhook")
def save_webhook(ctx: Context, request: Any) -> Response:
    body = body_object(ctx, request)
    store = records(ctx.meta, KIND)
    errors: dict[str, str] = {}
    fields = {
        "description": text_field(body, "description", errors),
        "event": text_field(body, "event", errors, max_len=200, required=True),
        "endpoint": text_field(body, "endpoint", errors, max_len=2000, required=True),
    }
    if fields["endpoint"] and "endpoint" not in errors:
        problem = check_endpoint(fields["endpoint"])
        if problem:
            errors["endpoint"] = problem
    # Events from now on; a re-activated webhook does not replay what happened while it was off.
    now_ms = int(time.time() * 1000)
    fresh = {"active": True, "failures": 0, "cursor_ms": now_ms, "enabled_ms": now_ms, "seen": {}}
    if body.get("id"):
        record, _ = record_in_reach(ctx, request, store, body["id"], "webhook")
        check_fields(errors, "webhook")
        changes = (
            {**fields, "active": True, "failures": 0}
            if record.get("active")
            else {**fields, **fresh}
        )
        updated = store.merge(record["id"], changes)
        return json_response(public(updated or record))
    site = site_for(ctx, request, body.get("domain_id"))
    check_fields(errors, "webhook")
    return json_response(public(store.create({"domain_id": site.id, **fields, **fresh})))


def check_endpoint(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL"
    return None


def public(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "def_time", "mod_time", "domain_id", "description", "event", "endpoint", "active")
    return {k: record.get(k) for k in keys}


@routes.delete("/api/v1/webhook")
def delete_webhook(ctx: Context, request: Any) -> Response:
    return delete_record(ctx, request, records(ctx.meta, KIND), "webhook")

"""Pirsch traffic filters: `GET/POST/DELETE /api/v1/filter`.

Stored in the meta `filters` sub-db as {id, def_time, mod_time, domain_id, type, description,
filter}; MetaStore.site_rules hands them to the engine, which drops matching hits with the reason
filter_<type>. A filter is checked here, when it is saved, with the same rules the engine applies
(rust_core/src/rules.rs), so the engine never meets one it cannot parse.
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING, Any

from trail.api.http import body_object, json_response, text_field
from trail.api.pirsch.auth import delete_record, record_in_reach, site_for, site_from_query
from trail.api.routing import Routes
from trail.errors import check_fields
from trail.storage.documents import records

routes = Routes()

if TYPE_CHECKING:
    from robyn import Response

    from trail.context import Context

FILTER_TYPES = ("ip", "path", "user_agent", "hostname", "country")
_HOST = re.compile(
    r"^(www\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_COUNTRY = re.compile(r"^[a-z]{2}$")
KIND = "filters"


@routes.get("/api/v1/filter")
def list_filters(ctx: Context, request: Any) -> Response:
    site = site_from_query(ctx, request)
    return json_response([_public(r) for r in records(ctx.meta, KIND).find(domain_id=site.id)])


@routes.post("/api/v1/filter")
def save_filter(ctx: Context, request: Any) -> Response:
    """Create a filter, or update one when `id` is set (its site cannot change)."""
    body = body_object(ctx, request)
    store = records(ctx.meta, KIND)
    errors: dict[str, str] = {}
    filter_type = body.get("type")
    if filter_type not in FILTER_TYPES:
        errors["type"] = "must be one of " + ", ".join(FILTER_TYPES)
    text = text_field(body, "filter", errors, max_len=1000, required=True)
    description = text_field(body, "description", errors)
    if "filter" not in errors and "type" not in errors:
        problem = check_filter(str(filter_type), text)
        if problem:
            errors["filter"] = problem
    if body.get("id"):
        record, _ = record_in_reach(ctx, request, store, body["id"], "filter")
        check_fields(errors, "filter")
        fields = {
            "type": filter_type,
            "filter": normalise(str(filter_type), text),
            "description": description,
        }
        updated = store.merge(record["id"], fields)
        return json_response(_public(updated or record))
    site = site_for(ctx, request, body.get("domain_id"))
    check_fields(errors, "filter")
    created = store.create(
        {
            "domain_id": site.id,
            "type": filter_type,
            "description": description,
            "filter": normalise(str(filter_type), text),
        }
    )
    return json_response(_public(created))


def check_filter(filter_type: str, text: str) -> str | None:
    """Why the engine would refuse this filter, or None."""
    if filter_type == "ip":
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            return f"{text!r} is not an IP address or CIDR range (e.g. 10.0.0.0/8)"
    elif filter_type == "hostname" and not _HOST.match(text.lower()):
        return f"{text!r} is not a host name like example.com"
    elif filter_type == "country" and not _COUNTRY.match(text.lower()):
        return f"{text!r} is not a two-letter ISO country code"
    elif filter_type == "path" and not text.startswith(("/", "*")):
        return "a path filter starts with / (use * as a wildcard, e.g. /admin/*)"
    return None


def normalise(filter_type: str, text: str) -> str:
    """Store the form the engine matches: country codes upper case, host names lower case."""
    if filter_type == "country":
        return text.upper()
    if filter_type == "hostname":
        return text.lower()
    return text


def _public(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "def_time", "mod_time", "domain_id", "type", "description", "filter")
    return {k: record.get(k) for k in keys}


@routes.delete("/api/v1/filter")
def delete_filter(ctx: Context, request: Any) -> Response:
    return delete_record(ctx, request, records(ctx.meta, KIND), "filter")

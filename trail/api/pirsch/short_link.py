"""Pirsch short links: `GET/POST/DELETE /api/v1/link` and the public redirect `GET /l/<id>`.

A click records the link's event (with its UTM values) through the engine, exactly like a Pirsch
`/event` call for the clicking visitor, then answers 302 to a destination with the UTM parameters
added. An expired link goes to `expired_url` (410 without one). `webhook_endpoint` is kept as an
ordinary webhook on the link's event, so clicks reach it through the webhook machinery.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from robyn import Response

from trail.api.http import body_object, empty, json_response, query_params, query_value, text_field
from trail.api.pirsch.auth import record_in_reach, site_for, site_from_query
from trail.api.pirsch.webhook import KIND as WEBHOOKS
from trail.api.pirsch.webhook import check_endpoint
from trail.api.routing import Routes
from trail.errors import check_fields
from trail.storage.documents import records
from trail.storage.meta import hash_secret

routes = Routes()

if TYPE_CHECKING:
    from trail.context import Context
    from trail.storage.meta import Site

log = logging.getLogger("trail.links")
KIND = "short_links"
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
DEFAULT_EVENT = "Short Link"
MAX_URLS = 20
PUBLIC_PREFIX = "/l/"


@routes.get("/api/v1/link")
def list_links(ctx: Context, request: Any) -> Response:
    site = site_from_query(ctx, request, "id")
    search = query_value(query_params(request), "search").lower()
    links = [
        r for r in records(ctx.meta, KIND).find(domain_id=site.id) if search in r["name"].lower()
    ]
    return json_response([public(r) for r in links])


@routes.post("/api/v1/link")
def save_link(ctx: Context, request: Any) -> Response:
    body = body_object(ctx, request)
    store = records(ctx.meta, KIND)
    errors: dict[str, str] = {}
    fields = parse_link(body, errors)
    endpoint = text_field(body, "webhook_endpoint", errors, max_len=2000)
    if endpoint and check_endpoint(endpoint):
        errors["webhook_endpoint"] = str(check_endpoint(endpoint))
    if body.get("id"):
        record, site = record_in_reach(ctx, request, store, body["id"], "link")
    else:
        record, site = None, site_for(ctx, request, body.get("domain_id"))
    check_fields(errors, "link")
    if "password" in body:
        fields["password_hash"] = hash_secret(str(body["password"])) if body["password"] else ""
    old_hook = record.get("webhook_id", "") if record else ""
    fields["webhook_id"] = _save_webhook(ctx, site, old_hook, endpoint, fields)
    if record is None:
        return json_response(public(store.create({"domain_id": site.id, **fields})))
    updated = store.merge(record["id"], fields)
    return json_response(public(updated or record))


def parse_link(body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The stored fields of a create/update body; problems go to `errors` by field name."""
    fields: dict[str, Any] = {
        "name": text_field(body, "name", errors, max_len=200, required=True),
        "event_name": text_field(body, "event_name", errors, max_len=200),
        "expired_url": text_field(body, "expired_url", errors, max_len=2000),
        "title": text_field(body, "title", errors, max_len=200),
        "description": text_field(body, "description", errors, max_len=1000),
        "image": text_field(body, "image", errors, max_len=2000),
    }
    for name in UTM:
        fields[name] = text_field(body, name, errors, max_len=200)
    if fields["expired_url"] and not _is_http_url(fields["expired_url"]):
        errors["expired_url"] = "must be an http:// or https:// URL"
    fields["expires_at"] = _expires_at(body.get("expires_at"), errors)
    allow = body.get("allow_indexing", False)
    if not isinstance(allow, bool):
        errors["allow_indexing"] = "must be true or false"
    fields["allow_indexing"] = allow is True
    tags = body.get("tags") or []
    if (
        not isinstance(tags, list)
        or not all(isinstance(t, str) and len(t) <= 100 for t in tags)
        or len(tags) > 50
    ):
        errors["tags"] = "must be a list of at most 50 strings"
        tags = []
    fields["tags"] = tags
    fields["urls"] = _urls(body.get("urls"), errors)
    return fields


def _urls(value: Any, errors: dict[str, str]) -> list[dict[str, Any]]:
    """Destinations: [{"url": "https://...", "weight": n (optional, > 0)}], at least one."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_URLS:
        errors["urls"] = f'must be a list of 1 to {MAX_URLS} objects like {{"url": "https://..."}}'
        return []
    out = []
    for i, item in enumerate(value):
        url = item.get("url") if isinstance(item, dict) else None
        weight = item.get("weight", 1) if isinstance(item, dict) else None
        if not isinstance(url, str) or len(url) > 2000 or not _is_http_url(url.strip()):
            errors["urls"] = f"urls[{i}].url must be an http:// or https:// URL"
            return []
        if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 1000:
            errors["urls"] = f"urls[{i}].weight must be a number from 1 to 1000"
            return []
        out.append({**item, "url": url.strip(), "weight": weight})
    return out


def _expires_at(value: Any, errors: dict[str, str]) -> str | None:
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        errors["expires_at"] = "must be an RFC 3339 date and time, e.g. 2026-01-31T12:00:00Z"
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _save_webhook(
    ctx: Context, site: Site, hook_id: str, endpoint: str, fields: dict[str, Any]
) -> str:
    """Keep the link's webhook in step with `webhook_endpoint`; returns its id ("" for none)."""
    hooks = records(ctx.meta, WEBHOOKS)
    if not endpoint:
        if hook_id:
            hooks.delete(hook_id)
        return ""
    import time

    values = {
        "event": fields["event_name"] or DEFAULT_EVENT,
        "endpoint": endpoint,
        "description": f"short link {fields['name']}",
        "active": True,
        "failures": 0,
    }
    if hook_id and hooks.merge(hook_id, values) is not None:
        return hook_id
    now_ms = int(time.time() * 1000)
    return str(
        hooks.create(
            {"domain_id": site.id, **values, "cursor_ms": now_ms, "enabled_ms": now_ms, "seen": {}}
        )["id"]
    )


@routes.delete("/api/v1/link")
def delete_link(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, KIND)
    record, _ = record_in_reach(
        ctx, request, store, query_value(query_params(request), "id"), "link"
    )
    if record.get("webhook_id"):
        records(ctx.meta, WEBHOOKS).delete(record["webhook_id"])
    store.delete(record["id"])
    return empty()


def public(record: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "def_time",
        "mod_time",
        "domain_id",
        "name",
        "event_name",
        *UTM,
        "expires_at",
        "expired_url",
        "webhook_id",
        "title",
        "description",
        "image",
        "allow_indexing",
        "tags",
        "urls",
    )
    out = {k: record.get(k) for k in keys}
    out["webhook_id"] = out["webhook_id"] or ""  # a string, as in Pirsch's OpenAPI file
    out["path"] = PUBLIC_PREFIX + record["id"]
    out["password_protected"] = bool(record.get("password_hash"))
    return out


# -- the public redirect ----------------------------------------------------------------------


@routes.get("/l/:link_id")
def follow_link(ctx: Context, request: Any) -> Response:
    link = records(ctx.meta, KIND).get(str(request.path_params.get("link_id", "")))
    site = ctx.meta.get_site(link["domain_id"]) if link else None
    if link is None or site is None:
        return _plain(404, "This link does not exist.")
    headers = {"cache-control": "no-store", "referrer-policy": "no-referrer-when-downgrade"}
    if not link.get("allow_indexing"):
        headers["x-robots-tag"] = "noindex"
    expires = link.get("expires_at")
    if expires and datetime.fromisoformat(expires) <= datetime.now(UTC):
        if link.get("expired_url"):
            return Response(302, {**headers, "location": link["expired_url"]}, b"")
        return _plain(410, "This link has expired.")
    if link.get("password_hash"):
        given = query_value(query_params(request), "password")
        if not given or hash_secret(given) != link["password_hash"]:
            return _plain(401, "This link is password protected: add ?password=...")
    destination = with_utm(_pick(link["urls"]), link)
    record_click(ctx, site, link, destination, request)
    return Response(302, {**headers, "location": destination}, b"")


def _pick(urls: list[dict[str, Any]]) -> str:
    if len(urls) == 1:
        return str(urls[0]["url"])
    return str(random.choices(urls, weights=[u.get("weight", 1) for u in urls])[0]["url"])


def with_utm(url: str, link: dict[str, Any]) -> str:
    """`url` with the link's UTM values added (parameters already in the URL win)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    query += [(k, link[k]) for k in UTM if link.get(k) and k not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def record_click(
    ctx: Context, site: Site, link: dict[str, Any], destination: str, request: Any
) -> None:
    """Send the click through the engine as a Pirsch event; a failure never blocks the redirect."""
    from trail.services import ingest

    hostnames = [h.lower().removeprefix("www.") for h in ctx.meta.site_rules(site)[0]]
    host = (urlsplit(destination).hostname or "").lower().removeprefix("www.")
    # The event belongs to the site: a destination elsewhere is recorded under the link's path.
    url = (
        destination
        if not hostnames or host in hostnames
        else with_utm(f"https://{site.hostname}{PUBLIC_PREFIX}{link['id']}", link)
    )
    h = request.headers
    event = {
        "url": url,
        "ip": str(getattr(request, "ip_addr", "") or ""),
        "user_agent": h.get("user-agent") or "",
        "accept_language": h.get("accept-language") or "",
        "referrer": h.get("referer") or "",
        "event_name": link.get("event_name") or DEFAULT_EVENT,
        "event_meta": {"link": link["name"], "link_id": link["id"]},
    }
    try:
        ingest.ingest_api(ctx, site, "event", orjson.dumps(event), False)
    except Exception:
        log.warning("short link %s: click not recorded", link["id"], exc_info=True)


def _plain(status: int, text: str) -> Response:
    return Response(
        status,
        {"content-type": "text/plain; charset=utf-8", "cache-control": "no-store"},
        text.encode(),
    )

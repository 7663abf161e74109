"""The Pirsch browser SDK (pa.js, `pirsch-sdk/web`): no API key, the site's identification code.

- `GET /api/v1/hit?nc&code&url&t&ref&w&h&tag_<k>`: a page view;
- `POST /api/v1/event` with `identification_code` in the body and no Authorization header: an
  event (the authenticated route in pirsch_ingest hands such requests to `answer_event`);
- `OPTIONS` for both, with CORS for the site's own hostnames.

Like Pirsch, a recorded or silently dropped hit answers 200 with an empty body; a bad field 400
naming it; an unknown identification code 404. Both share the per-IP collect rate limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robyn import Response

from trail.api.common import ApiError, handler, json_response, query_params, query_value
from trail.api.cors import cors_headers, origin_of, preflight_headers
from trail.core import StorageError
from trail.services import collect
from trail.services.collect import InvalidPayload

if TYPE_CHECKING:
    from robyn import Robyn

    from trail.context import Context
    from trail.storage.meta import Site

HIT_METHODS = "GET, OPTIONS"
EVENT_METHODS = "POST, OPTIONS"
MAX_TAGS = 20


def _error(e: ApiError, headers: dict[str, str]) -> Response:
    """The Pirsch error body, with CORS headers so the page's script can read it."""
    return json_response({"validation": e.validation, "error": [e.message]}, e.status, headers)


def _screen(params: dict[str, list[str]], name: str) -> int | None:
    text = query_value(params, name)
    if not text:
        return None
    try:
        value = int(float(text))
    except ValueError:
        raise InvalidPayload(name, "must be a number") from None
    if not 0 <= value <= collect.MAX_SCREEN:
        raise InvalidPayload(name, f"must be between 0 and {collect.MAX_SCREEN}")
    return value


def hit_item(params: dict[str, list[str]]) -> dict[str, Any]:
    """The engine item of a pa.js page view query string; InvalidPayload names the parameter."""
    url = query_value(params, "url")
    if not url:
        raise InvalidPayload("url", "is required")
    tags = {k[4:]: v[0] for k, v in params.items() if k.startswith("tag_") and len(k) > 4 and v}
    item: dict[str, Any] = {
        "url": collect.http_url(url[: collect.MAX_URL], "url"),
        "title": query_value(params, "t")[: collect.MAX_TEXT],
        "referrer": query_value(params, "ref")[: collect.MAX_URL],
        "screen_width": _screen(params, "w"),
        "screen_height": _screen(params, "h"),
        "tags": dict(list(tags.items())[:MAX_TAGS]) or None,
    }
    return {k: v for k, v in item.items() if v is not None}


def _rate_limited(ctx: Context, request: Any, methods: str) -> Response | None:
    """429 when the client is over the collect limit; checked before any site lookup."""
    headers = request.headers.to_dict()
    peer = collect.peer_address(request.ip_addr)
    wait = collect.retry_after(ctx, collect.client_ip(ctx, peer, headers))
    if wait is None:
        return None
    origin = origin_of(request)
    cors = cors_headers(origin, collect.KNOWN_HOSTS.allows(ctx, origin), methods)
    message = f"too many requests, retry in {wait} s"
    return _error(ApiError(429, message), {**cors, "retry-after": str(wait)})


def _run(ctx: Context, request: Any, site: Site, kind: str, item: dict[str, Any]) -> None:
    headers = [(k.lower(), v) for k, v in request.headers.to_dict().items()]
    peer = collect.peer_address(request.ip_addr)
    try:
        collect.ingest_browser(ctx, site, kind, item, peer, headers)
    except InvalidPayload as e:
        raise ApiError(400, f"{e.field}: {e.message}", {e.field: e.message}) from None
    except StorageError as e:
        raise ApiError(503, "storage unavailable, retry later") from e


def get_hit(ctx: Context, request: Any) -> Response:
    limited = _rate_limited(ctx, request, HIT_METHODS)
    if limited is not None:
        return limited
    origin = origin_of(request)
    params = query_params(request)
    code = query_value(params, "code")
    site = collect.find_by_code(ctx, code)
    cors = cors_headers(origin, collect.origin_allowed_for(ctx, site, origin), HIT_METHODS)
    try:
        if not code:
            raise ApiError(400, "code: is required", {"code": "is required"})
        if site is None:
            raise ApiError(404, "domain not found")
        try:
            item = hit_item(params)
        except InvalidPayload as e:
            raise ApiError(400, f"{e.field}: {e.message}", {e.field: e.message}) from None
        _run(ctx, request, site, "hit", item)
    except ApiError as e:
        return _error(e, cors)
    return Response(200, cors, b"")


def answer_event(ctx: Context, request: Any) -> Response | None:
    """A browser event carrying `identification_code` (no API key); None if the body has no code,
    so the caller answers as an authenticated route would (401)."""
    try:
        doc = collect.parse_json_object(request.body)
    except InvalidPayload:
        return None
    code = doc.get("identification_code")
    if not isinstance(code, str) or not code.strip():
        return None
    limited = _rate_limited(ctx, request, EVENT_METHODS)
    if limited is not None:
        return limited
    origin = origin_of(request)
    site = collect.find_by_code(ctx, code.strip())
    cors = cors_headers(origin, collect.origin_allowed_for(ctx, site, origin), EVENT_METHODS)
    try:
        if site is None:
            raise ApiError(404, "domain not found")
        item = {k: doc[k] for k in collect.BROWSER_ITEM_FIELDS if doc.get(k) is not None}
        if not isinstance(item.get("event_name"), str) or not item["event_name"].strip():
            raise ApiError(400, "event_name: is required", {"event_name": "is required"})
        _run(ctx, request, site, "event", item)
    except ApiError as e:
        return _error(e, cors)
    return Response(200, cors, b"")


def _preflight(ctx: Context, request: Any, methods: str) -> Response:
    origin = origin_of(request)
    return Response(
        204, preflight_headers(origin, collect.KNOWN_HOSTS.allows(ctx, origin), methods), b""
    )


def register(app: Robyn, ctx: Context) -> None:
    app.get("/api/v1/hit")(handler(lambda request: get_hit(ctx, request)))
    app.options("/api/v1/hit")(handler(lambda request: _preflight(ctx, request, HIT_METHODS)))
    app.options("/api/v1/event")(handler(lambda request: _preflight(ctx, request, EVENT_METHODS)))

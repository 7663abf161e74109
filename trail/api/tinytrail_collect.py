"""TinyTrail browser collection: `OPTIONS`/`POST /api/v1/collect` and `GET /js/tracker.js`.

Answers: 202 {"status":"accepted"}; 204 for a silent drop (unknown website, bot, excluded IP,
foreign hostname); 400 INVALID_PAYLOAD naming the field; 429 RATE_LIMITED with Retry-After.
The body is JSON under any content type: tracker.js sends it as text/plain so that browsers
send it without a CORS preflight. CORS: the Origin is echoed (with credentials) when its host is
one of the website's hostnames or alternative domains; a preflight, which names no website, is
answered for the hostnames of any website.

tracker.js (trail/static/tracker.js, <= 1.5 KB gzipped, no dependencies):
    <script defer data-id="WEBSITE_ID" src="https://trail.example/js/tracker.js"></script>
- sends page_view at once, and again on pushState/replaceState/popstate when path or query
  change (hash changes are not page views); scroll_25/50/75 once each per page view;
  outbound_link {url} on (middle) clicks on http(s) links to another host; close_tab when the tab
  is hidden; `window.analytics.track(name, props)` -> custom {name, ...props};
- posts to <script src base>/api/v1/collect with navigator.sendBeacon (fetch keepalive, no-cors,
  as the fallback), so it survives page unloads;
- does nothing on localhost, *.localhost, 127.x.x.x, [::1], 0.0.0.0 and file: pages unless the
  tag has `data-allow-localhost`; nothing when the tag has `data-disabled` (site owners) or
  when localStorage.trail_ignore == "1" (a visitor's own opt-out, e.g. the owner's browser).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robyn import Response

from trail.api.common import IN_FLIGHT
from trail.api.cors import cors_headers, origin_of, preflight_headers
from trail.api.tinytrail_common import error_response
from trail.core import StorageError
from trail.services import collect
from trail.services.collect import InvalidPayload

if TYPE_CHECKING:
    from robyn import Robyn

    from trail.context import Context

log = logging.getLogger("trail.api.collect")
METHODS = "POST, OPTIONS"
TRACKER_PATH = Path(__file__).resolve().parent.parent / "static" / "tracker.js"
TRACKER_HEADERS = {
    "content-type": "application/javascript",
    "cache-control": "public, max-age=86400",
    "access-control-allow-origin": "*",  # a public script; lets sites load it with integrity=
}


def guarded(fn: Callable[[Any], Response]) -> Callable[[Any], Response]:
    """InvalidPayload -> 400 INVALID_PAYLOAD; storage trouble -> 503; anything else -> logged 500."""

    @functools.wraps(fn)
    def wrapper(request: Any) -> Response:
        with IN_FLIGHT:
            try:
                return fn(request)
            except InvalidPayload as e:
                return error_response(400, f"{e.field}: {e.message}")
            except StorageError:
                log.exception("storage error in %s %s", request.method, request.url.path)
                return error_response(503, "storage unavailable, retry later", {"retry-after": "1"})
            except Exception:
                log.exception("unhandled error in %s %s", request.method, request.url.path)
                return error_response(500, "internal server error")

    return wrapper


def preflight(ctx: Context, request: Any) -> Response:
    origin = origin_of(request)
    return Response(
        204, preflight_headers(origin, collect.KNOWN_HOSTS.allows(ctx, origin), METHODS), b""
    )


def post_collect(ctx: Context, request: Any) -> Response:
    origin = origin_of(request)
    headers = request.headers.to_dict()
    peer = collect.peer_address(request.ip_addr)
    wait = collect.retry_after(ctx, collect.client_ip(ctx, peer, headers))
    if wait is not None:
        cors = cors_headers(origin, collect.KNOWN_HOSTS.allows(ctx, origin), METHODS)
        return error_response(
            429, f"too many requests, retry in {wait} s", {**cors, "retry-after": str(wait)}
        )
    try:
        payload = collect.parse_collect(collect.parse_json_object(request.body))
    except InvalidPayload as e:
        cors = cors_headers(origin, collect.KNOWN_HOSTS.allows(ctx, origin), METHODS)
        return error_response(400, f"{e.field}: {e.message}", cors)
    site = collect.find_website(ctx, payload.website_id)
    cors = cors_headers(origin, collect.origin_allowed_for(ctx, site, origin), METHODS)
    if site is None:
        return Response(204, cors, b"")
    try:
        outcome = collect.ingest_browser(
            ctx,
            site,
            payload.kind,
            payload.item,
            peer,
            [(k.lower(), v) for k, v in headers.items()],
        )
    except InvalidPayload as e:
        return error_response(400, f"{e.field}: {e.message}", cors)
    if outcome.silent_drop:
        return Response(204, cors, b"")
    return Response(202, {**cors, "content-type": "application/json"}, b'{"status":"accepted"}')


def register(app: Robyn, ctx: Context) -> None:
    script = TRACKER_PATH.read_bytes()
    app.options("/api/v1/collect")(guarded(lambda request: preflight(ctx, request)))
    app.post("/api/v1/collect")(guarded(lambda request: post_collect(ctx, request)))
    app.get("/js/tracker.js")(guarded(lambda request: Response(200, dict(TRACKER_HEADERS), script)))

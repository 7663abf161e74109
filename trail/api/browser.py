"""What browsers call, without an API key: tracker.js and its collect route, and the Pirsch
browser SDK (pa.js, `pirsch-sdk/web`) by the site's identification code.

TinyTrail (`collect_routes`, errors in the TinyTrail envelope):
- `POST /api/v1/collect`: 202 {"status":"accepted"}; 204 for a silent drop (unknown website,
  bot, excluded IP, foreign hostname); 400 naming the field; 429 with Retry-After. The body is
  JSON under any content type: tracker.js sends it as text/plain so that browsers send it
  without a CORS preflight. A preflight, which names no website, is answered for the hostnames
  of any website.
- `GET /js/tracker.js` (trail/static/tracker.js, <= 1.5 KB gzipped, no dependencies):
      <script defer data-id="WEBSITE_ID" src="https://trail.example/js/tracker.js"></script>
  It sends page_view at once and on pushState/replaceState/popstate when path or query change;
  scroll_25/50/75 once each per page view; outbound_link {url} on (middle) clicks on links to
  another host; close_tab when the tab is hidden; `window.analytics.track(name, props)` ->
  custom {name, ...props}; with navigator.sendBeacon (fetch keepalive as the fallback). It does
  nothing on localhost-like and file: pages unless the tag has `data-allow-localhost`, nothing
  with `data-disabled` or when localStorage.trail_ignore == "1".

Pirsch (`pirsch_routes`, errors in Pirsch's format):
- `GET /api/v1/hit?nc&code&url&t&ref&w&h&tag_<k>`: a page view;
- `POST /api/v1/event` with `identification_code` in the body and no Authorization header: an
  event (the authenticated route in `api/pirsch/ingest.py` hands such requests to `post_event`);
- `OPTIONS` for both. Like Pirsch, a recorded or silently dropped hit answers 200 with an empty
  body; an unknown identification code 404.

CORS: the Origin is echoed (with credentials) when its host is one of the website's hostnames or
alternative domains (`api/cors.py`; a request with two Origin headers names none); error answers
carry the same CORS headers so the page's script can read them. Both families share the per-IP
collect rate limit.

Each request is one engine call (`collect.judge`): the handlers only render its verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from robyn import Response

from trail.api.cors import cors_headers, origin_of, preflight_headers
from trail.api.http import query_value
from trail.api.routing import Routes
from trail.errors import ApiError, FieldError, RateLimited, not_found
from trail.services import collect

if TYPE_CHECKING:
    from trail.context import Context

collect_routes = Routes()
pirsch_routes = Routes()

COLLECT_METHODS = "POST, OPTIONS"
HIT_METHODS = "GET, OPTIONS"
EVENT_METHODS = "POST, OPTIONS"
MAX_TAGS = 20
TRACKER_PATH = Path(__file__).resolve().parent.parent / "static" / "tracker.js"
TRACKER_HEADERS = {
    "content-type": "application/javascript",
    "cache-control": "public, max-age=86400",
    "access-control-allow-origin": "*",  # a public script; lets sites load it with integrity=
}
_tracker: bytes | None = None


_NO_QUERY: dict[str, list[str]] = {}


def _judge(
    ctx: Context,
    request: Any,
    route: str,
    query: dict[str, list[str]] = _NO_QUERY,
    headers: Any = None,
) -> tuple[str, collect.Verdict]:
    """The request's Origin and the engine's verdict. The headers are read once, as Robyn's
    flat dict (a repeated header's values joined with ", "), by the engine and for the Origin
    alike; `headers`: Robyn's Headers of the request, if the caller read them already."""
    names = (request.headers if headers is None else headers).to_dict()
    origin = (names.get("origin") or "").strip()
    return origin, collect.judge(ctx, route, request.body, query, request.ip_addr, names, origin)


def _render(
    ctx: Context,
    origin: str,
    verdict: collect.Verdict,
    methods: str,
    accepted: int,
    silent: int,
    invalid: type[FieldError],
) -> Response:
    """The answer to a judged request: status `accepted` or `silent` (a drop), or the error of
    a refused one raised with the same CORS headers, so the page can read it. Before a site is
    known (429, a body that names none), the Origin may read it when it is any website's."""
    outcome, cors, field, message, retry_after = verdict
    allowed = cors == "allowed" or (cors == "any_site" and collect.KNOWN_HOSTS.allows(ctx, origin))
    error: ApiError
    if outcome == "limited":
        error = RateLimited(retry_after)
        error.message = f"too many requests, retry in {retry_after} s"
    elif outcome == "invalid":
        error = invalid(field, message)
    elif outcome == "not_found":
        error = not_found("domain")
    else:
        return _answer(accepted if outcome == "accepted" else silent, origin, allowed, methods)
    error.headers = {**cors_headers(origin, allowed, methods), **error.headers}
    raise error


# Answers without an error, by (status, methods, Origin if allowed): Robyn copies a returned
# Response into its own answer and never changes it, so one object serves every request that
# gets the same answer, without building its headers again. Origins come from clients: past
# `_MAX_ANSWERS` the table starts over.
_answers: dict[tuple[int, str, str | None], Response] = {}
_MAX_ANSWERS = 1024
_ACCEPTED = b'{"status":"accepted"}'


def _answer(status: int, origin: str, allowed: bool, methods: str) -> Response:
    key = (status, methods, origin if allowed else None)
    answer = _answers.get(key)
    if answer is None:
        if len(_answers) >= _MAX_ANSWERS:
            _answers.clear()
        headers = cors_headers(origin, allowed, methods)
        if status == 202:
            answer = Response(202, {**headers, "content-type": "application/json"}, _ACCEPTED)
        else:
            answer = Response(status, headers, b"")
        _answers[key] = answer
    return answer


def _preflight(ctx: Context, request: Any, methods: str) -> Response:
    origin = origin_of(request)
    allowed = collect.KNOWN_HOSTS.allows(ctx, origin)
    return Response(204, preflight_headers(origin, allowed, methods), b"")


# -- TinyTrail ----------------------------------------------------------------------------------


@collect_routes.options("/api/v1/collect")
def collect_preflight(ctx: Context, request: Any) -> Response:
    return _preflight(ctx, request, COLLECT_METHODS)


@collect_routes.post("/api/v1/collect")
def post_collect(ctx: Context, request: Any) -> Response:
    origin, verdict = _judge(ctx, request, "collect")
    return _render(ctx, origin, verdict, COLLECT_METHODS, 202, 204, collect.InvalidPayload)


@collect_routes.get("/js/tracker.js")
def tracker_script(ctx: Context, request: Any) -> Response:
    global _tracker
    if _tracker is None:
        _tracker = TRACKER_PATH.read_bytes()
    return Response(200, dict(TRACKER_HEADERS), _tracker)


# -- Pirsch browser SDK -------------------------------------------------------------------------


def _screen(params: dict[str, list[str]], name: str) -> int | None:
    text = query_value(params, name)
    if not text:
        return None
    try:
        value = int(float(text))
    except ValueError:
        raise FieldError(name, "must be a number") from None
    if not 0 <= value <= collect.MAX_SCREEN:
        raise FieldError(name, f"must be between 0 and {collect.MAX_SCREEN}")
    return value


def hit_item(params: dict[str, list[str]]) -> dict[str, Any]:
    """The engine item of a pa.js page view query string; FieldError names the parameter."""
    url = query_value(params, "url")
    if not url:
        raise FieldError("url", "is required")
    tags = {k[4:]: v[0] for k, v in params.items() if k.startswith("tag_") and len(k) > 4 and v}
    item: dict[str, Any] = {
        "url": collect.http_url(url[: collect.MAX_URL], "url"),
        "title": query_value(params, "t")[: collect.MAX_TITLE],
        "referrer": query_value(params, "ref")[: collect.MAX_URL],
        "screen_width": _screen(params, "w"),
        "screen_height": _screen(params, "h"),
        "tags": dict(list(tags.items())[:MAX_TAGS]) or None,
    }
    return {k: v for k, v in item.items() if v is not None}


@pirsch_routes.get("/api/v1/hit")
def get_hit(ctx: Context, request: Any) -> Response:
    origin, verdict = _judge(ctx, request, "pirsch_hit", request.query_params.to_dict())
    return _render(ctx, origin, verdict, HIT_METHODS, 200, 200, FieldError)


def post_event(ctx: Context, request: Any, headers: Any = None) -> Response | None:
    """A browser event carrying `identification_code` (no API key); None if the body has no code,
    so the caller answers as an authenticated route would (401). `headers`: the request's, if
    the caller read them already."""
    origin, verdict = _judge(ctx, request, "pirsch_event", headers=headers)
    if verdict[0] == "not_browser":
        return None
    return _render(ctx, origin, verdict, EVENT_METHODS, 200, 200, FieldError)


@pirsch_routes.options("/api/v1/hit")
def hit_preflight(ctx: Context, request: Any) -> Response:
    return _preflight(ctx, request, HIT_METHODS)


@pirsch_routes.options("/api/v1/event")
def event_preflight(ctx: Context, request: Any) -> Response:
    return _preflight(ctx, request, EVENT_METHODS)

"""The dashboard's pages: `GET /` sends a signed-out visitor to `/signin` and a signed-in user to
`/sites`; the sign-in page, the page a set-password link opens, the sites page, a site's
dashboard (`/sites/<domain id>`) and their assets.

The files live in trail/static/dashboard/ (vendored libraries in its vendor/) and are read once
per worker. A page names its assets by their path there, as `{{auth.js}}` or
`{{vendor/uPlot.min.css}}`, served as `/assets/auth.<hash of the content>.js` and cached for a
year; pages are never cached. The Content-Security-Policy lets a page load and call nothing but trail itself.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robyn import Response

from trail.api.routing import Routes
from trail.api.session_cookie import clear_cookie, cookie_token, live_session
from trail.context import Context
from trail.errors import not_found

routes = Routes()

STATIC = Path(__file__).resolve().parents[2] / "static" / "dashboard"
ASSET_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
ASSET_CACHE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Bundle:
    pages: dict[str, bytes]  # "signin" -> the page, its assets' names filled in
    assets: dict[str, tuple[bytes, str]]  # "auth.<hash>.js" -> (content, content type)


@functools.cache
def bundle() -> Bundle:
    assets: dict[str, tuple[bytes, str]] = {}
    urls: dict[str, str] = {}
    for path in sorted(STATIC.rglob("*")):
        if path.suffix in ASSET_TYPES:
            content = path.read_bytes()
            name = f"{path.stem}.{hashlib.sha256(content).hexdigest()[:12]}{path.suffix}"
            assets[name] = (content, ASSET_TYPES[path.suffix])
            urls["{{" + path.relative_to(STATIC).as_posix() + "}}"] = "/assets/" + name
    pages = {}
    for path in sorted(STATIC.glob("*.html")):
        text = path.read_text()
        for placeholder, url in urls.items():
            text = text.replace(placeholder, url)
        pages[path.stem] = text.encode()
    return Bundle(pages, assets)


def page(name: str, headers: dict[str, str] | None = None) -> Response:
    return Response(200, {**PAGE_HEADERS, **(headers or {})}, bundle().pages[name])


def redirect(location: str, headers: dict[str, str] | None = None) -> Response:
    """303 See Other: the browser follows with a GET."""
    head = {"location": location, "cache-control": "no-store", **(headers or {})}
    return Response(303, head, b"")


def _stale_cookie(ctx: Context, request: Any) -> dict[str, str]:
    """Deletes a cookie whose session has ended (when the browser sent one)."""
    return clear_cookie(ctx, request) if cookie_token(request) else {}


@routes.get("/")
def home(ctx: Context, request: Any) -> Response:
    if live_session(ctx, request) is not None:
        return redirect("/sites")
    return redirect("/signin", _stale_cookie(ctx, request))


@routes.get("/signin")
def signin_page(ctx: Context, request: Any) -> Response:
    if live_session(ctx, request) is not None:
        return redirect("/sites")
    return page("signin", _stale_cookie(ctx, request))


@routes.get("/set-password")
def set_password_page(ctx: Context, request: Any) -> Response:
    return page("set-password")


@routes.get("/sites")
def sites_page(ctx: Context, request: Any) -> Response:
    if live_session(ctx, request) is None:
        return redirect("/signin", _stale_cookie(ctx, request))
    return page("sites")


@routes.get("/sites/:domain_id")
def site_page(ctx: Context, request: Any) -> Response:
    """A site's dashboard; the page asks the API for the domain (and shows its 404)."""
    if live_session(ctx, request) is None:
        return redirect("/signin", _stale_cookie(ctx, request))
    return page("site")


@routes.get("/assets/:name")
def asset(ctx: Context, request: Any) -> Response:
    found = bundle().assets.get(str(request.path_params.get("name", "")))
    if found is None:
        raise not_found("asset")
    content, content_type = found
    headers = {"content-type": content_type, "cache-control": ASSET_CACHE}
    return Response(200, {**headers, "x-content-type-options": "nosniff"}, content)

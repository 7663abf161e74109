"""The dashboard's pages: `GET /` sends a signed-out visitor to `/signin` and a signed-in user to
`/sites`; the sign-in page, the page a set-password link opens, the sites page, a site's
dashboard (`/sites/<domain id>`), its settings (`/sites/<domain id>/settings`), shared
dashboards (`/share/<domain id>` for a public site, `/share/<domain id>/<access link code>`) and
their assets.

The files live in trail/static/dashboard/ (vendored libraries in its vendor/) and are read once
per worker. A page names its assets by their path there, as `{{auth.js}}` or
`{{vendor/uPlot.min.css}}`, served as `/assets/auth.<hash of the content>.js` and cached for a
year; pages are never cached. Pages and assets are compressed once per worker (gzip, and brotli
when the `brotli` package is installed) and sent compressed when `Accept-Encoding` allows. The
Content-Security-Policy lets a page load and call nothing but trail itself.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robyn import Response

from trail.api.routing import Routes
from trail.api.session_cookie import clear_cookie, cookie_token, live_session
from trail.context import Context
from trail.errors import not_found
from trail.storage.meta import MEMBER_ROLES, Site

try:  # optional: gzip alone when it is missing
    import brotli
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

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
# A shared dashboard's header: no account, no sign-out, no link to other sites.
SHARED_HEADER = (
    '<header class="bar"><span class="brand">trail</span>'
    '<span class="who">Shared dashboard (read-only)</span></header>'
)
HEADER = re.compile(r'<header class="bar">.*?</header>', re.DOTALL)

# An encoding -> the content in it ("identity" always present).
Encoded = dict[str, bytes]


def encode(content: bytes, level: int = 9) -> Encoded:
    """The content as it is and in every encoding that makes it smaller."""
    variants = {"identity": content}
    candidates = {"gzip": gzip.compress(content, level, mtime=0)}
    if brotli is not None:
        candidates["br"] = brotli.compress(content, quality=11 if level == 9 else 5)
    for name, packed in candidates.items():
        if len(packed) < len(content):
            variants[name] = packed
    return variants


def accepted_encodings(header: str) -> dict[str, float]:
    """`Accept-Encoding` as {coding: q}; "gzip;q=0" refuses gzip."""
    prefs: dict[str, float] = {}
    for part in header.split(","):
        name, *params = part.split(";")
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name.strip():
            prefs[name.strip().lower()] = q
    return prefs


def negotiate(request: Any, variants: Encoded) -> tuple[bytes, dict[str, str]]:
    """The best variant the client accepts (brotli, then gzip, else as it is) and its headers."""
    prefs = accepted_encodings(request.headers.get("accept-encoding") or "")
    for name in ("br", "gzip"):
        if name in variants and prefs.get(name, prefs.get("*", 0.0)) > 0:
            return variants[name], {"content-encoding": name, "vary": "Accept-Encoding"}
    return variants["identity"], {"vary": "Accept-Encoding"}


@dataclass(frozen=True)
class Bundle:
    pages: dict[str, bytes]  # "signin" -> the page, its assets' names filled in
    encoded_pages: dict[str, Encoded]
    assets: dict[str, tuple[Encoded, str]]  # "auth.<hash>.js" -> (content, content type)
    urls: dict[str, str]  # "auth.js" -> "/assets/auth.<hash>.js"


@functools.cache
def bundle() -> Bundle:
    assets: dict[str, tuple[Encoded, str]] = {}
    urls: dict[str, str] = {}
    for path in sorted(STATIC.rglob("*")):
        if path.suffix in ASSET_TYPES:
            content = path.read_bytes()
            name = f"{path.stem}.{hashlib.sha256(content).hexdigest()[:12]}{path.suffix}"
            assets[name] = (encode(content), ASSET_TYPES[path.suffix])
            urls[path.relative_to(STATIC).as_posix()] = "/assets/" + name
    pages = {}
    for path in sorted(STATIC.glob("*.html")):
        text = path.read_text()
        for file, url in urls.items():
            text = text.replace("{{" + file + "}}", url)
        pages[path.stem] = text.encode()
    return Bundle(pages, {k: encode(v) for k, v in pages.items()}, assets, urls)


def _html(
    request: Any, variants: Encoded, headers: dict[str, str] | None, status: int = 200
) -> Response:
    body, encoding = negotiate(request, variants)
    return Response(status, {**PAGE_HEADERS, **encoding, **(headers or {})}, body)


def page(request: Any, name: str, headers: dict[str, str] | None = None) -> Response:
    return _html(request, bundle().encoded_pages[name], headers)


def notice(request: Any, status: int, title: str, text: str) -> Response:
    """A page that only says something (not found, not allowed)."""
    content = bundle().pages["notice"]
    for marker, value in (("__TITLE__", title), ("__TEXT__", text)):
        content = content.replace(marker.encode(), html.escape(value).encode())
    return _html(request, encode(content, 6), None, status)


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
    return page(request, "signin", _stale_cookie(ctx, request))


@routes.get("/set-password")
def set_password_page(ctx: Context, request: Any) -> Response:
    return page(request, "set-password")


@routes.get("/sites")
def sites_page(ctx: Context, request: Any) -> Response:
    if live_session(ctx, request) is None:
        return redirect("/signin", _stale_cookie(ctx, request))
    return page(request, "sites")


@routes.get("/sites/:domain_id")
def site_page(ctx: Context, request: Any) -> Response:
    """A site's dashboard; the page asks the API for the domain (and shows its 404)."""
    if live_session(ctx, request) is None:
        return redirect("/signin", _stale_cookie(ctx, request))
    return page(request, "site")


@routes.get("/sites/:domain_id/settings")
def settings_page(ctx: Context, request: Any) -> Response:
    """A site's settings, for its Admins and Owners: others get 404 (a site out of reach) or
    403 (a Viewer), as the management API answers them."""
    found = live_session(ctx, request)
    if found is None:
        return redirect("/signin", _stale_cookie(ctx, request))
    site = ctx.meta.get_site(str(request.path_params.get("domain_id", "")))
    role = found[1].site_role(site) if site is not None else None
    if role is None:
        return notice(request, 404, "Site not found", "No site with this id is visible to you.")
    if MEMBER_ROLES.index(role) < MEMBER_ROLES.index("Admin"):
        return notice(
            request, 403, "Not allowed", f"Settings need the Admin role; you are a {role}."
        )
    return page(request, "settings")


def shared_page(request: Any, site: Site, access: str) -> Response:
    """The site dashboard page, read-only for `site` alone: the header shows no account and links
    nowhere, <meta name="trail-share"> holds the site (anonymous callers cannot list domains)
    and the access code, and share.js, loaded after app.js, makes the page's API calls the
    anonymous reads the statistics API accepts for a public site or an access link."""
    shared = {
        "site": {
            "id": site.id,
            "hostname": site.hostname,
            "display_name": site.display_name,
            "timezone": site.timezone,
            "public": site.public,
            "user_role": "Viewer",
        },
        "access": access,
    }
    urls = bundle().urls
    app = f'<script defer src="{urls["app.js"]}"></script>'
    text = bundle().pages["site"].decode()
    text = HEADER.sub(SHARED_HEADER, text, count=1)
    text = text.replace(app, f'{app}\n<script defer src="{urls["share.js"]}"></script>', 1)
    meta = f'<meta name="trail-share" content="{html.escape(json.dumps(shared))}">'
    text = text.replace("</head>", meta + "\n</head>", 1)
    return _html(request, encode(text.encode(), 6), None)


NOT_SHARED = ("Dashboard not found", "This dashboard is not shared, or the link has expired.")


@routes.get("/share/:domain_id")
def public_dashboard(ctx: Context, request: Any) -> Response:
    """A public site's dashboard, for anyone; 404 for every other site."""
    site = ctx.meta.get_site(str(request.path_params.get("domain_id", "")))
    if site is None or not site.public:
        return notice(request, 404, *NOT_SHARED)
    return shared_page(request, site, "")


@routes.get("/share/:domain_id/:code")
def access_link_dashboard(ctx: Context, request: Any) -> Response:
    """The dashboard an access link opens, until its `valid_until`; 404 for another site's,
    an unknown or an expired link."""
    code = str(request.path_params.get("code", ""))
    site = ctx.meta.site_for_link(code) if code else None
    if site is None or site.id != request.path_params.get("domain_id"):
        return notice(request, 404, *NOT_SHARED)
    return shared_page(request, site, code)


@routes.get("/assets/:name")
def asset(ctx: Context, request: Any) -> Response:
    found = bundle().assets.get(str(request.path_params.get("name", "")))
    if found is None:
        raise not_found("asset")
    variants, content_type = found
    body, encoding = negotiate(request, variants)
    headers = {"content-type": content_type, "cache-control": ASSET_CACHE, **encoding}
    return Response(200, {**headers, "x-content-type-options": "nosniff"}, body)

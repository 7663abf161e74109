"""The dashboard's pages: `GET /` sends a signed-out visitor to `/signin` and a signed-in user to
`/sites`; the sign-in page, the page a set-password link opens, the sites page, the account page
(`/account`: display name and password), a site's dashboard (`/sites/<domain id>`), its settings
(`/sites/<domain id>/settings`), shared dashboards (`/share/<domain id>` for a public site,
`/share/<domain id>/<access link code>`) and their assets.

The files live in trail/static/dashboard/ (vendored libraries in its vendor/, the parts pages share
in its partials/) and are read once per worker. A page takes in a partial with `{{> head.html}}`
(the file partials/head.html, itself free to include others) and names its assets by their path,
as `{{auth.js}}` or `{{vendor/uPlot.min.css}}`, served as `/assets/auth.<hash of the content>.js`
and cached for a year; a name that matches no file stops the worker at start. Pages are never
cached. Pages and assets are sent compressed when `Accept-Encoding` allows (gzip, and brotli
when the `brotli` package is installed), compressed in two passes per worker: a fast one (gzip 6,
brotli 5; tens of milliseconds) before the worker reports ready, so no request waits for
compression, then the smallest (gzip 9, brotli 11; about half a second of CPU, seconds on a busy
machine) on a background thread, which replaces the first when done. Both passes give the same
names (the hash is of the content), so a page and its assets always agree. The
Content-Security-Policy lets a page load and call nothing but trail itself.

A shared dashboard shows the domain's theme (its base theme's settings under the domain's own):
the colours as CSS custom properties that share.js sets, and the logos and favicon through
`/share-theme/<domain id>/<file>`, which serves only files trail stores itself (uploaded theme
files, `data:` images); a URL of another host is never fetched, by trail or by the browser.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import hashlib
import html
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from robyn import Response

from trail.api.http import query_params, query_value
from trail.api.pirsch.theme import FILES as THEME_FILES
from trail.api.pirsch.theme import MAX_FILE_BYTES, SIGNATURES
from trail.api.routing import Routes
from trail.api.session_cookie import clear_cookie, cookie_token, live_session
from trail.context import Context
from trail.errors import not_found
from trail.storage.documents import records
from trail.storage.meta import MEMBER_ROLES, Site

try:  # optional: gzip alone when it is missing
    import brotli
except ImportError:  # pragma: no cover - depends on the environment
    brotli = None

routes = Routes()

STATIC = Path(__file__).resolve().parents[2] / "static" / "dashboard"
PARTIALS = STATIC / "partials"
INCLUDE = re.compile(r"\{\{>\s*([\w.-]+)\s*\}\}")
MARKER = re.compile(r"\{\{.*?\}\}")
ASSET_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
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
HEADER = re.compile(r'<header class="bar">.*?</header>', re.DOTALL)
ICON = re.compile(r'<link rel="icon"[^>]*>')
# A domain theme's colours (`<name>` for the light scheme, `<name>_dark` for the dark one) and the
# custom properties of dashboard.css they set; hex colours only, anything else is left out.
THEME_COLOURS = {"accent": "--accent", "background": "--bg", "card": "--card", "text": "--fg"}
HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
THEME_FILE_URL = "/api/v1/theme/file?"

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


def expand(text: str, where: str, depth: int = 0) -> str:
    """`text` with each `{{> name}}` replaced by partials/<name> (expanded in turn)."""

    def partial(found: re.Match[str]) -> str:
        path = PARTIALS / found.group(1)
        if depth >= 4 or not path.is_file():
            raise ValueError(
                f"{where}: no partial {found.group(1)!r} (or includes nested too deep)"
            )
        return expand(path.read_text().rstrip("\n"), found.group(1), depth + 1)

    return INCLUDE.sub(partial, text)


def render(text: str, where: str, urls: dict[str, str]) -> str:
    """A page's text: partials taken in, asset names turned into their URLs."""
    text = expand(text, where)
    for file, url in urls.items():
        text = text.replace("{{" + file + "}}", url)
    left = MARKER.search(text)
    if left:
        raise ValueError(f"{where}: {left.group(0)} names no asset or partial")
    return text


_bundle_lock = threading.Lock()
_bundles: dict[int, Bundle] = {}  # compression level -> the bundle at it, once built


def bundle() -> Bundle:
    """The pages and assets at the best compression built so far in this process: the fast
    pass (built here on first use when `prepare` did not run), later the smallest."""
    current = _bundles.get(9) or _bundles.get(6)
    if current is None:
        with _bundle_lock:  # another thread may have built it while this one waited
            current = _bundles.get(9) or _bundles.get(6)
            if current is None:
                current = _bundles[6] = _build_bundle()
    return current


def prepare() -> None:
    """Build the fast pass now (the worker calls this before it reports ready), then the
    smallest on a background thread."""
    bundle()
    threading.Thread(target=_smallest, name="dashboard-assets", daemon=True).start()


def _smallest() -> None:
    """The fast pass's very contents compressed again at the highest levels: the same names,
    whatever happened to the files since."""
    fast = bundle()
    assets = {name: (encode(v["identity"], 9), kind) for name, (v, kind) in fast.assets.items()}
    pages = {name: encode(page, 9) for name, page in fast.pages.items()}
    _bundles[9] = Bundle(fast.pages, pages, assets, fast.urls)


def _build_bundle(level: int = 6) -> Bundle:
    """Every asset and page, read from the files and compressed at `level`."""
    assets: dict[str, tuple[Encoded, str]] = {}
    urls: dict[str, str] = {}
    for path in sorted(STATIC.rglob("*")):
        if path.suffix in ASSET_TYPES:
            content = path.read_bytes()
            name = f"{path.stem}.{hashlib.sha256(content).hexdigest()[:12]}{path.suffix}"
            assets[name] = (encode(content, level), ASSET_TYPES[path.suffix])
            urls[path.relative_to(STATIC).as_posix()] = "/assets/" + name
    pages = {}
    for path in sorted(STATIC.glob("*.html")):
        pages[path.stem] = render(path.read_text(), path.name, urls).encode()
    return Bundle(pages, {k: encode(v, level) for k, v in pages.items()}, assets, urls)


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


@routes.get("/account")
def account_page(ctx: Context, request: Any) -> Response:
    """The signed-in user's account: display name and password."""
    if live_session(ctx, request) is None:
        return redirect("/signin", _stale_cookie(ctx, request))
    return page(request, "account")


@routes.get("/sites/:domain_id")
def site_page(ctx: Context, request: Any) -> Response:
    """A site's dashboard; the page asks the API for the domain (and shows its 404)."""
    if live_session(ctx, request) is None:
        return redirect("/signin", _stale_cookie(ctx, request))
    if geoip_credit(ctx):
        return _html(request, _credited_site_page(), None)
    return page(request, "site")


GEOIP_META = '<meta name="trail-geoip" content="DB-IP">'


def geoip_credit(ctx: Context) -> bool:
    """Whether locations come from DB-IP's database (CC BY 4.0): the site dashboard then credits
    it under the locations panel (site-panels.js reads <meta name="trail-geoip">)."""
    from trail import geoip

    return geoip.attribution(ctx.config) is not None


@functools.cache
def _credited_site_page() -> Encoded:
    text = bundle().pages["site"].decode().replace("</head>", GEOIP_META + "\n</head>", 1)
    return encode(text.encode())


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


# -- shared dashboards -------------------------------------------------------------------------


def theme_settings(ctx: Context, site: Site) -> dict[str, Any]:
    """The settings a site's dashboards show: its base theme's, under its own (an empty value of
    its own leaves the base theme's)."""
    base: dict[str, Any] = {}
    if site.theme_id:
        base = (records(ctx.meta, "themes").get(site.theme_id) or {}).get("settings") or {}
    own = {k: v for k, v in site.theme_settings.items() if v not in ("", None)}
    return {**base, **own}


def theme_file(ctx: Context, site: Site, settings: dict[str, Any], name: str) -> bytes | None:
    """The image a theme setting (`logo_light`, `logo_dark`, `favicon`) holds, if trail has it:
    a file uploaded for the site or for its base theme, or a `data:` URL. Anything else (a URL
    of another host) is None: trail never fetches it and the page never links it."""
    value = settings.get(name)
    content: bytes | None = None
    if not isinstance(value, str):
        return None
    if value.startswith("data:"):
        head, _, payload = value.partition(",")
        if head.endswith(";base64") and len(payload) <= MAX_FILE_BYTES * 4 // 3 + 4:
            try:
                content = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                return None
    elif value.startswith(THEME_FILE_URL):
        query = parse_qs(value[len(THEME_FILE_URL) :])
        file = (query.get("file") or [""])[0]
        owner = None
        if query.get("domain_id") == [site.id]:
            owner = f"domain-{site.id}"
        elif site.theme_id and query.get("theme_id") == [site.theme_id]:
            owner = site.theme_id
        path = Path(ctx.data_dir) / "themes" / str(owner) / file
        if owner and file in THEME_FILES and path.is_file():
            content = path.read_bytes()
    if not content or len(content) > MAX_FILE_BYTES:
        return None
    return content if any(content.startswith(sig) for sig in SIGNATURES) else None


def shared_theme(ctx: Context, site: Site, access: str) -> dict[str, Any]:
    """What share.js applies: custom properties per colour scheme and the logos' URLs."""
    settings = theme_settings(ctx, site)
    out: dict[str, Any] = {"light": {}, "dark": {}}
    for scheme, suffix in (("light", ""), ("dark", "_dark")):
        for name, prop in THEME_COLOURS.items():
            value = settings.get(name + suffix)
            if isinstance(value, str) and HEX_COLOUR.match(value.strip()):
                out[scheme][prop] = value.strip()
        if "--accent" in out[scheme]:
            out[scheme]["--on-accent"] = readable_on(out[scheme]["--accent"])
    query = "?access=" + quote(access, safe="") if access else ""
    for name in THEME_FILES:
        if theme_file(ctx, site, settings, name) is not None:
            out[name] = f"/share-theme/{quote(site.id, safe='')}/{name}{query}"
    return out


def readable_on(colour: str) -> str:
    """Black or white, whichever reads better on `colour` (WCAG contrast)."""
    digits = colour.lstrip("#")
    if len(digits) in (3, 4):
        digits = "".join(c * 2 for c in digits)

    def linear(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(digits[i : i + 2], 16)) for i in (0, 2, 4))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "#fff"


def shared_header(site: Site, theme: dict[str, Any]) -> str:
    """A shared dashboard's header: no account, no sign-out, no link to other sites; the
    theme's logo instead of trail's name."""
    logo = theme.get("logo_light") or theme.get("logo_dark")
    brand = "trail"
    if logo:
        name = html.escape(site.display_name or site.hostname)
        brand = f'<img id="share-logo" class="logo" src="{html.escape(logo)}" alt="{name}">'
    return (
        f'<header class="bar"><span class="brand">{brand}</span>'
        '<span class="who">Shared dashboard (read-only)</span></header>'
    )


def shared_page(ctx: Context, request: Any, site: Site, access: str) -> Response:
    """The site dashboard page, read-only for `site` alone: the header shows no account and links
    nowhere, <meta name="trail-share"> holds the site (anonymous callers cannot list domains),
    the access code and the theme, and share.js, loaded after app.js, makes the page's API calls
    the anonymous reads the statistics API accepts for a public site or an access link."""
    theme = shared_theme(ctx, site, access)
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
        "theme": theme,
    }
    urls = bundle().urls
    app = f'<script defer src="{urls["app.js"]}"></script>'
    text = bundle().pages["site"].decode()
    text = HEADER.sub(lambda _: shared_header(site, theme), text, count=1)
    text = text.replace(app, f'{app}\n<script defer src="{urls["share.js"]}"></script>', 1)
    if theme.get("favicon"):
        icon = f'<link rel="icon" href="{html.escape(theme["favicon"])}">'
        text = ICON.sub(lambda _: icon, text, count=1)
    meta = f'<meta name="trail-share" content="{html.escape(json.dumps(shared))}">'
    css = f'<link rel="stylesheet" href="{urls["share.css"]}">'
    credit = GEOIP_META + "\n" if geoip_credit(ctx) else ""
    text = text.replace("</head>", f"{css}\n{meta}\n{credit}</head>", 1)
    return _html(request, encode(text.encode(), 6), None)


def shared_site(ctx: Context, domain_id: str, access: str) -> Site | None:
    """The site `domain_id` when it may be read without signing in: public, or `access` is a
    live access link of it."""
    if access:
        site = ctx.meta.site_for_link(access)
        return site if site is not None and site.id == domain_id else None
    site = ctx.meta.get_site(domain_id)
    return site if site is not None and site.public else None


NOT_SHARED = ("Dashboard not found", "This dashboard is not shared, or the link has expired.")


@routes.get("/share/:domain_id")
def public_dashboard(ctx: Context, request: Any) -> Response:
    """A public site's dashboard, for anyone; 404 for every other site."""
    site = shared_site(ctx, str(request.path_params.get("domain_id", "")), "")
    if site is None:
        return notice(request, 404, *NOT_SHARED)
    return shared_page(ctx, request, site, "")


@routes.get("/share/:domain_id/:code")
def access_link_dashboard(ctx: Context, request: Any) -> Response:
    """The dashboard an access link opens, until its `valid_until`; 404 for another site's,
    an unknown or an expired link."""
    code = str(request.path_params.get("code", ""))
    site = shared_site(ctx, str(request.path_params.get("domain_id", "")), code) if code else None
    if site is None:
        return notice(request, 404, *NOT_SHARED)
    return shared_page(ctx, request, site, code)


@routes.get("/share-theme/:domain_id/:file")
def shared_theme_file(ctx: Context, request: Any) -> Response:
    """A shared dashboard's logo or favicon (`logo_light`, `logo_dark`, `favicon`), for whoever
    may read the dashboard (`?access=<code>` for an access link); 404 otherwise."""
    access = query_value(query_params(request), "access")
    site = shared_site(ctx, str(request.path_params.get("domain_id", "")), access)
    name = str(request.path_params.get("file", ""))
    content = None
    if site is not None and name in THEME_FILES:
        content = theme_file(ctx, site, theme_settings(ctx, site), name)
    if content is None:
        raise not_found("theme file")
    kind = next(m for sig, m in SIGNATURES.items() if content.startswith(sig))
    headers = {
        "content-type": kind,
        "cache-control": "no-store",
        "content-security-policy": "default-src 'none'",
        "x-content-type-options": "nosniff",
    }
    return Response(200, headers, content)


@routes.get("/assets/:name")
def asset(ctx: Context, request: Any) -> Response:
    found = bundle().assets.get(str(request.path_params.get("name", "")))
    if found is None:
        raise not_found("asset")
    variants, content_type = found
    body, encoding = negotiate(request, variants)
    headers = {"content-type": content_type, "cache-control": ASSET_CACHE, **encoding}
    return Response(200, {**headers, "x-content-type-options": "nosniff"}, body)

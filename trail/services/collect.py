"""Browser collection: TinyTrail `/api/v1/collect` and the Pirsch browser SDK, over the same engine.

Each request is one `Engine.browser` call in Rust (rust_core/src/browser.rs), which runs the
spec's 10-step pipeline: the per-IP rate limit, the payload's fields (a 400 names the field),
(1) the website from the engine's site directory (unknown -> a silent drop) and whether the
Origin may read the answer, (2) the client IP from the socket peer (proxy headers only from
trusted proxies) and the UA, client hints and Accept-Language from the headers, (3) UA parsing,
(4) UTM from the URL, (5) the channel, (6) the keyed visitor hash, (7) excluded IPs, (8) bot
checks (browser header checks included), (10) the session machine and the stored rows. (9)
Content groups are matched against paths at query time by the reports (one definition, and
editing a group re-labels old data too).

Python keeps the sites: on a directory miss (`judge`) it looks the site up in the meta store,
hands the engine the site and its rules (`ingest.sync_rules`: hostnames and alternative domains,
traffic filters, excluded IPs/CIDR ranges), and asks again. The directory is valid for one meta
store transaction id, so any change to any site reaches the next request. The parsers below
(`parse_collect`, `api/browser.py: hit_item`) are the same rules in Python: the reference the
engine's parsers are tested against.

Event types map onto the Pirsch kinds the engine knows:
- page_view -> a page view ("hit");
- close_tab -> a session keep-alive ("session"): it extends the session to the moment the tab was
  hidden and records the page as the exit page, without creating an event (an event would
  un-bounce every session, since every visit ends by closing the tab);
- scroll_25/50/75 -> events named after the type, non-interactive (scrolling alone does not turn
  a bounce into an engaged visit);
- outbound_link -> an interactive event "outbound_link", event_meta {"url": target, ...};
- custom -> an interactive event named properties.name (default "custom"), the other scalar
  properties as event_meta.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from trail.core import LIMITS
from trail.errors import FieldError
from trail.services import ingest
from trail.validation import is_uuid

if TYPE_CHECKING:
    from trail.context import Context
    from trail.storage.meta import Site

log = logging.getLogger("trail.collect")

MAX_COLLECT_BODY = 16 * 1024  # a page view is a few hundred bytes; anything bigger is abuse
# The engine's limits (rust_core/src/validate.rs), which it enforces on every path; checking
# them here too lets a bad field get its 400 before the website is looked up.
MAX_URL = LIMITS["url"]
MAX_HOSTNAME = LIMITS["hostname"]
MAX_TITLE = LIMITS["title"]  # longer titles are cut, not refused
MAX_SCREEN = LIMITS["screen"]
MAX_TEXT = 1024  # other free text: UTM fields, ids, property names
EVENT_KINDS = {
    "page_view": "hit",
    "close_tab": "session",
    "scroll_25": "event",
    "scroll_50": "event",
    "scroll_75": "event",
    "outbound_link": "event",
    "custom": "event",
}
NON_INTERACTIVE = ("scroll_25", "scroll_50", "scroll_75")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
# Fields a browser may set in a Pirsch browser-SDK body; the rest (ip, user_agent, client hints,
# disable_bot_filter) come from the request itself, never from an unauthenticated body.
BROWSER_ITEM_FIELDS = (
    "url",
    "title",
    "referrer",
    "screen_width",
    "screen_height",
    "tags",
    "event_name",
    "event_duration",
    "event_meta",
    "non_interactive",
)


class InvalidPayload(FieldError):
    """A collect body the client must fix; `field` names what is wrong."""


@dataclass
class Collect:
    """A validated collect request: what goes to the engine for which website."""

    website_id: str
    event_type: str
    kind: str
    item: dict[str, Any] = field(default_factory=dict)


# How the engine answered a browser request (see `Engine.browser` in trail/_core.pyi), as it
# returns it: (outcome, cors, field, message, retry_after). `outcome` "accepted", "silent",
# "invalid" (`field`, `message`), "not_found", "limited" (`retry_after` s) or "not_browser";
# `cors` "allowed", "denied" or "any_site". The engine's tuple as it is, unpacked by the
# handlers: no object is built per request.
Verdict = tuple[str, str, str, str, int]


# -- validation (once, at the edge) --------------------------------------------------------------


def parse_json_object(body: bytes | str) -> dict[str, Any]:
    """The body as a JSON object; any content type is accepted (tracker.js sends text/plain)."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    if len(raw) > MAX_COLLECT_BODY:
        raise InvalidPayload("body", f"larger than {MAX_COLLECT_BODY} bytes")
    if not raw.strip():
        raise InvalidPayload("body", "a JSON object is required")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise InvalidPayload("body", f"malformed JSON: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidPayload("body", "must be a JSON object")
    return doc


def _string(
    doc: dict[str, Any], name: str, required: bool = False, limit: int | None = MAX_TEXT
) -> str:
    """A string field, stripped; longer than `limit` is refused (None: any length)."""
    value = doc.get(name)
    if value is None:
        if required:
            raise InvalidPayload(name, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidPayload(name, "must be a string")
    if required and not value.strip():
        raise InvalidPayload(name, "must not be empty")
    if limit is not None and len(value) > limit:
        raise InvalidPayload(name, f"longer than {limit} characters")
    return value.strip()


def _screen(doc: dict[str, Any], name: str) -> int | None:
    value = doc.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidPayload(name, "must be a number")
    if not 0 <= value <= MAX_SCREEN:
        raise InvalidPayload(name, f"must be between 0 and {MAX_SCREEN}")
    return int(value)


def http_url(value: str, name: str) -> str:
    """An absolute http(s) URL, as the engine requires of a browser's page URL."""
    try:
        parts = urlsplit(value)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        raise InvalidPayload(name, "must be an absolute http(s) URL")
    if len(host.rstrip(".")) > MAX_HOSTNAME:
        raise InvalidPayload(name, f"hostname longer than {MAX_HOSTNAME} characters")
    return value


def _with_utm(url: str, doc: dict[str, Any]) -> str:
    """Add UTM fields given beside the URL to its query, unless the URL carries them already."""
    extra = {k: v for k in UTM_FIELDS if (v := _string(doc, k))}
    if not extra:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    query += [(k, v) for k, v in extra.items() if k not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _scalars(props: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Event metadata is flat: scalar properties as given, nested values left out."""
    return {
        k: v
        for k, v in props.items()
        if k not in skip and isinstance(v, (str, int, float, bool)) and len(k) <= 100
    }


def parse_collect(doc: dict[str, Any]) -> Collect:
    """Validate a TinyTrail collect body into an engine item; InvalidPayload names the field.
    The engine's own parser (browser.rs) serves requests; this one is its reference."""
    website_id = _string(doc, "website_id", required=True, limit=64)
    event_type = _string(doc, "event_type", required=True, limit=64)
    if event_type not in EVENT_KINDS:
        raise InvalidPayload("event_type", f"must be one of {', '.join(EVENT_KINDS)}")
    url = http_url(_string(doc, "url", required=True, limit=MAX_URL), "url")
    path = _string(doc, "path", required=True, limit=MAX_URL)
    if not path.startswith("/"):
        raise InvalidPayload("path", "must start with /")
    props = doc.get("properties")
    if props is not None and not isinstance(props, dict):
        raise InvalidPayload("properties", "must be an object")
    props = props or {}
    item: dict[str, Any] = {
        "url": _with_utm(url, doc),
        "referrer": _string(doc, "referrer", limit=MAX_URL),
        "title": _string(doc, "title", limit=None)[:MAX_TITLE],
        "screen_width": _screen(doc, "screen_width"),
        "screen_height": _screen(doc, "screen_height"),
    }
    kind = EVENT_KINDS[event_type]
    if kind == "event":
        item.update(_event_fields(event_type, props))
    return Collect(website_id, event_type, kind, {k: v for k, v in item.items() if v is not None})


def _event_fields(event_type: str, props: dict[str, Any]) -> dict[str, Any]:
    if event_type == "custom":
        name = props.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidPayload("properties.name", "must be a non-empty string")
        return {"event_name": (name or "custom").strip(), "event_meta": _scalars(props, ("name",))}
    return {
        "event_name": event_type,
        "event_meta": _scalars(props),
        "non_interactive": event_type in NON_INTERACTIVE,
    }


# -- sites and their hostnames --------------------------------------------------------------------


def find_website(ctx: Context, website_id: str) -> Site | None:
    """The website of a collect request; None (a silent drop) for anything that is not one."""
    return ctx.meta.get_site(website_id) if is_uuid(website_id) else None


def find_by_code(ctx: Context, code: str) -> Site | None:
    """The site a Pirsch identification code names (public: it is in the page's snippet)."""
    if not code or len(code) > 64:
        return None
    return SITE_CODES.find(ctx, code)


class SiteCodes:
    """identification code -> site id, per worker. A hit is checked against the site record (codes
    can change); a miss rescans the sites, so a new site works at once. An unknown code costs one
    scan of the site records, bounded by the per-IP rate limit."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    def find(self, ctx: Context, code: str) -> Site | None:
        site_id = self._ids.get(code)
        site = ctx.meta.get_site(site_id) if site_id else None
        if site is not None and site.identification_code == code:
            return site
        sites = ctx.meta.all_sites()
        self._ids = {s.identification_code: s.id for s in sites if s.identification_code}
        return next((s for s in sites if s.identification_code == code), None)


SITE_CODES = SiteCodes()


def site_hostnames(ctx: Context, site: Site) -> list[str] | None:
    """The hostnames a site accepts hits from (its own and its alternative domains), bare;
    None when the site accepts any hostname. The same list the engine enforces."""
    hostnames, _ = ctx.meta.site_rules(site)
    return [bare_host(h) for h in hostnames if h] or None


def bare_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    return host.removeprefix("www.")


# -- the engine call ------------------------------------------------------------------------------


def judge(
    ctx: Context,
    route: str,
    body: bytes | str,
    query: dict[str, list[str]],
    peer: str | None,
    headers: dict[str, str],
    origin: str,
) -> Verdict:
    """One browser request (`route`: collect, pirsch_hit, pirsch_event) through the engine, from
    rate limit to stored rows; a site the engine does not know yet is looked up here first.
    `query` and `headers` are Robyn's dicts (names lowercase), read by the engine in place."""
    stamp = ctx.meta.stamp()
    for _ in range(3):  # one lookup, then the engine knows the site (or that there is none)
        verdict = ctx.engine.browser(route, body, query, peer or "", headers, origin, stamp)
        outcome = verdict[0]
        if not outcome.startswith("lookup_"):
            return verdict
        remember_site(ctx, outcome.removeprefix("lookup_"), verdict[2], stamp)
    raise RuntimeError(f"the engine asked for site {verdict[2]!r} again")


def remember_site(ctx: Context, kind: str, key: str, stamp: int) -> None:
    """Hand the engine the site a website id or identification `key` names (or that none does),
    with its current rules."""
    site = find_website(ctx, key) if kind == "id" else find_by_code(ctx, key)
    entry = None
    if site is not None:
        ingest.sync_rules(ctx, site, force=True)
        hosts = site_hostnames(ctx, site) or []
        entry = (site.id, site.hostname, bool(site.disable_scripts), hosts)
    ctx.engine.put_browser_site(kind, key, entry, stamp)


def peer_address(raw: str | None) -> str:
    """The socket peer as a bare IP ("::1", "127.0.0.1"); Robyn may add a port or brackets."""
    text = (raw or "").strip()
    for candidate in (
        text,
        text.rsplit(":", 1)[0],
        text.strip("[]"),
        text.rsplit(":", 1)[0].strip("[]"),
    ):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return "0.0.0.0"


def client_ip(ctx: Context, peer: str, headers: dict[str, str]) -> str:
    """The client IP for rate limiting, resolved by the engine's own rule (ip.rs): the socket
    peer, or behind a trusted proxy the first proxy header carrying a public IP."""
    from trail.core import client_ip as resolve

    return resolve(peer, list(headers.items()), list(ctx.config.trusted_proxies))


# -- CORS: which origins may read the answers -----------------------------------------------------


def origin_host(origin: str) -> str:
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    return bare_host(parts.hostname)


def origin_allowed_for(ctx: Context, site: Site | None, origin: str) -> bool:
    """An Origin is allowed for a site when its hostname (port ignored) is one of the site's."""
    host = origin_host(origin)
    if site is None or not host:
        return False
    hostnames = site_hostnames(ctx, site)
    return hostnames is None or host in hostnames


class KnownHosts:
    """Every site's hostnames, for preflights (they carry no website id). Rebuilt when the meta
    store has changed since (its stamp moved: a new site, changed hostnames), so a new site
    works at once, and when older than `ttl`; Origins that match no site force no rebuild."""

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self._hosts: frozenset[str] = frozenset()
        self._built = 0.0
        self._stamp: int | None = None
        self._lock = threading.Lock()

    def allows(self, ctx: Context, origin: str) -> bool:
        host = origin_host(origin)
        if not host:
            return False
        now = time.monotonic()
        stamp = ctx.meta.stamp()
        if stamp != self._stamp or now - self._built > self.ttl:
            self._rebuild(ctx, now, stamp)
        return host in self._hosts or "*" in self._hosts

    def _rebuild(self, ctx: Context, now: float, stamp: int) -> None:
        # The stamp is read before the scan: a change made during it rebuilds once more.
        with self._lock:
            hosts: set[str] = set()
            for site in ctx.meta.all_sites():
                names = site_hostnames(ctx, site)
                hosts.update(names if names is not None else ("*",))
            self._hosts = frozenset(hosts)
            self._built = now
            self._stamp = stamp


KNOWN_HOSTS = KnownHosts()

"""The dashboard's session cookie: reading and setting it, and the CSRF rules of requests made
with it.

The cookie (`trail_session`) is `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` when the
request came over https (`X-Forwarded-Proto: https` from a trusted proxy) or `cookie_secure` is
set. A request authenticated by the cookie that changes something (any method but GET, HEAD and
OPTIONS) must come from trail's own pages: its `Origin` (when sent) must be trail's own,
`Sec-Fetch-Site` (when sent) `same-origin`, and `X-CSRF-Token` must carry the session's CSRF
token, which only trail's pages can read (`GET /api/v1/auth/session`). Requests with an
`Authorization` or `X-API-KEY` header never look at the cookie.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from trail.errors import ApiError, FieldError
from trail.services import signin
from trail.services.collect import peer_address

if TYPE_CHECKING:
    from trail.context import Context
    from trail.storage.meta import Principal
    from trail.storage.signins import WebSession

COOKIE = "trail_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SIGNED_OUT = "signed out: the session expired or was revoked, sign in again"


def cookie_token(request: Any) -> str:
    """The session token the browser sent, or ""."""
    for part in (request.headers.get("cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value.strip().strip('"')
    return ""


def uses_cookie(request: Any) -> bool:
    """Whether the request is authenticated by the cookie (no API key or bearer token)."""
    has_key = request.headers.get("authorization") or request.headers.get("x-api-key")
    return not has_key and bool(cookie_token(request))


def _from_trusted_proxy(ctx: Context, request: Any) -> bool:
    try:
        peer = ipaddress.ip_address(peer_address(request.ip_addr))
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped  # as the engine matches them (ip.rs)
    return any(
        peer in ipaddress.ip_network(net, strict=False) for net in ctx.config.trusted_proxies
    )


def _proxy_header(ctx: Context, request: Any, name: str) -> str:
    """The first value of a proxy header, believed only from a trusted proxy."""
    value = request.headers.get(name) or ""
    if not value or not _from_trusted_proxy(ctx, request):
        return ""
    return value.split(",")[0].strip().lower()


def is_https(ctx: Context, request: Any) -> bool:
    return _proxy_header(ctx, request, "x-forwarded-proto") == "https"


def set_cookie(ctx: Context, request: Any, token: str, max_age: int) -> dict[str, str]:
    """The header that stores the session token in the browser (max_age 0 deletes it)."""
    secure = ctx.config.cookie_secure or is_https(ctx, request)
    value = f"{COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
    return {"set-cookie": value + ("; Secure" if secure else "")}


def clear_cookie(ctx: Context, request: Any) -> dict[str, str]:
    return set_cookie(ctx, request, "", 0)


def _netloc(url_or_host: str) -> str:
    """host[:port] of a URL or a Host header, in lower case, without a default port."""
    text = url_or_host.strip().lower()
    try:
        parts = urlsplit(text if "://" in text else f"http://{text}")
    except ValueError:  # e.g. "http://[::1": matches nothing
        return ""
    netloc = parts.netloc.rpartition("@")[2]
    for default in (":80", ":443"):
        netloc = netloc.removesuffix(default)
    return netloc


def own_hosts(ctx: Context, request: Any) -> set[str]:
    """The host[:port] names under which trail is reached by this request."""
    hosts = {_netloc(request.headers.get("host") or "")}
    forwarded = _proxy_header(ctx, request, "x-forwarded-host")
    if forwarded:
        hosts.add(_netloc(forwarded))
    if ctx.config.public_url:
        hosts.add(_netloc(ctx.config.public_url))
    return hosts - {""}


def check_same_origin(ctx: Context, request: Any) -> None:
    """403 when the browser says the request comes from another site's page."""
    fetch_site = (request.headers.get("sec-fetch-site") or "").strip().lower()
    if fetch_site and fetch_site not in ("same-origin", "none"):
        raise ApiError(403, f"cross-site request refused (Sec-Fetch-Site: {fetch_site})")
    origin = (request.headers.get("origin") or "").strip()
    if origin and _netloc(origin) not in own_hosts(ctx, request):
        raise ApiError(403, f"cross-site request refused (Origin: {origin[:100]})")


def check_csrf(ctx: Context, request: Any, session: WebSession) -> None:
    """For a cookie request that changes something: same origin and the session's CSRF token."""
    if request.method.upper() in SAFE_METHODS:
        return
    check_same_origin(ctx, request)
    given = (request.headers.get(CSRF_HEADER.lower()) or "").strip()
    if not given:
        raise FieldError(CSRF_HEADER, "required with the session cookie", status=403)
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), session.csrf.encode()):
        raise FieldError(CSRF_HEADER, "does not match the session", status=403)


def live_session(ctx: Context, request: Any) -> tuple[WebSession, Principal] | None:
    """The live session of the cookie and its principal; None without one."""
    token = cookie_token(request)
    return signin.store(ctx.meta).principal(token) if token else None


def session_of(ctx: Context, request: Any) -> tuple[WebSession, Principal] | None:
    """`live_session`, but 401 (deleting the cookie) when the cookie's session has expired or
    was revoked."""
    found = live_session(ctx, request)
    if found is None and cookie_token(request):
        raise ApiError(401, SIGNED_OUT, headers=clear_cookie(ctx, request))
    return found


def cookie_principal(ctx: Context, request: Any) -> Principal | None:
    """The principal of the session cookie (CSRF rules applied), None without a cookie."""
    found = session_of(ctx, request)
    if found is None:
        return None
    session, principal = found
    check_csrf(ctx, request, session)
    return principal

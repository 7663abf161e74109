"""What every Pirsch route shares: the one error type, JSON in and out, query strings, auth."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import orjson
from robyn import Response

from trail.storage.meta import MEMBER_ROLES, WRITE_ONLY_SCOPES, Principal, Site

if TYPE_CHECKING:
    from trail.context import Context

log = logging.getLogger("trail.api")
_JSON = {"content-type": "application/json"}
ACCESS_KEY_CACHE_SECONDS = 2.0  # how long a deleted access key may still be accepted by a worker


class ApiError(Exception):
    """The one HTTP error of the Pirsch API; rendered by `handler` as the Pirsch error body."""

    def __init__(self, status: int, message: str, validation: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.validation = validation or {}


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    head = {**_JSON, **headers} if headers else dict(_JSON)
    return Response(status, head, orjson.dumps(obj))


def pirsch_error(status: int, message: str, validation: dict[str, str] | None = None) -> Response:
    return json_response({"validation": validation or {}, "error": [message]}, status)


class _InFlight:
    """Counts requests inside handlers so a stopping worker can wait for them to finish."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __enter__(self) -> None:
        with self._lock:
            self.count += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.count -= 1


IN_FLIGHT = _InFlight()


def handler(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap a route: ApiError -> Pirsch error response; anything else -> logged 500."""

    @functools.wraps(fn)
    def wrapper(request: Any) -> Any:
        with IN_FLIGHT:
            try:
                return fn(request)
            except ApiError as e:
                return pirsch_error(e.status, e.message, e.validation)
            except Exception:
                log.exception("unhandled error in %s %s", request.method, request.url.path)
                return pirsch_error(500, "internal server error")

    return wrapper


_QUERY_POOL: ThreadPoolExecutor | None = None


def offloaded(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Run a (sync) query route on a small thread pool behind an async handler.

    Robyn runs a sync handler on the worker's request thread, so a 50 ms statistics query
    would hold up every hit queued behind it; awaiting the pool keeps ingestion flowing.
    """

    async def route(request: Any) -> Any:
        global _QUERY_POOL
        if _QUERY_POOL is None:
            _QUERY_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="query")
        return await asyncio.get_running_loop().run_in_executor(_QUERY_POOL, fn, request)

    functools.update_wrapper(route, fn)
    return route


def query_params(request: Any) -> dict[str, list[str]]:
    """The query string, percent-decoded ('+' = space); repeated keys keep their order."""
    out: dict[str, list[str]] = {}
    for key, values in request.query_params.to_dict().items():
        out.setdefault(unquote_plus(key), []).extend(unquote_plus(v) for v in values)
    return out


def query_value(params: dict[str, list[str]], name: str) -> str:
    """The first non-empty value of `name`, stripped, or "" (SDKs send empty parameters)."""
    return next((v.strip() for v in params.get(name, []) if v.strip()), "")


def json_body(request: Any, limit: int | None = None) -> Any:
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    if limit is not None and len(body) > limit:
        raise ApiError(413, "request body too large", {"body": f"larger than {limit} bytes"})
    if not body.strip():
        raise ApiError(400, "request body is empty", {"body": "a JSON body is required"})
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ApiError(400, "request body is not valid JSON", {"body": str(e)}) from None


# -- authentication ---------------------------------------------------------------------------


def _bearer(request: Any) -> str | None:
    value = request.headers.get("authorization")
    if value is None:
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise ApiError(401, "unsupported authorization scheme, use Bearer")
    return credential.strip()


def authenticate(ctx: Context, request: Any) -> Principal:
    """The caller behind `Authorization: Bearer ...` or `X-API-KEY`; 401 otherwise."""
    credential = _bearer(request)
    if credential is None:
        api_key = request.headers.get("x-api-key")
        if api_key and api_key.strip():
            principal = ctx.meta.resolve_secret(api_key.strip())
            if principal is not None and principal.kind == "user":
                return principal
            raise ApiError(401, "invalid API key")
        raise ApiError(401, "missing credentials: send Authorization: Bearer <token>")
    if not credential:
        raise ApiError(401, "empty bearer token")
    principal = ctx.meta.resolve_secret(credential)
    if principal is None:
        raise ApiError(401, "invalid or expired token")
    if principal.kind == "access_key":
        # Write-only: ingestion takes them through site_for_access_key; every route that
        # authenticates here reads or manages, so the answer is the same for all of them.
        raise ApiError(403, "access keys are write-only: use an oauth client or API key")
    return principal


def _has_credentials(request: Any) -> bool:
    return bool(request.headers.get("authorization") or request.headers.get("x-api-key"))


def authorize_site(
    ctx: Context,
    request: Any,
    site_id: str,
    scope: str,
    write: bool | None = None,
    role: str | None = None,
) -> Site:
    """The site `site_id` if the caller may use `scope` on it with at least `role`.

    404 if it is out of reach (nobody learns it exists), 403 when the scope or role is missing.
    `write` defaults to "the method is not GET"; `role` to Viewer for reads and Admin for writes.
    Without credentials, statistics of a public site or of an unexpired access link (`access`
    parameter) are readable."""
    write = request.method not in ("GET", "HEAD") if write is None else write
    if scope == "statistics" and not write and not _has_credentials(request):
        site = _anonymous_site(ctx, request, site_id)
        if site is not None:
            return site
    principal = authenticate(ctx, request)
    site = ctx.meta.get_site(site_id) if site_id else None
    have = principal.site_role(site) if site is not None else None
    if site is None or have is None:
        raise ApiError(404, "domain not found")
    require_scope(principal, scope, write=write)
    require_role(have, role or ("Admin" if write else "Viewer"))
    return site


def _anonymous_site(ctx: Context, request: Any, site_id: str) -> Site | None:
    code = query_value(query_params(request), "access")
    if code:
        site = ctx.meta.site_for_link(code)
        if site is None or site.id != site_id:
            raise ApiError(404, "domain not found")  # unknown, expired or another site's link
        return site
    site = ctx.meta.get_site(site_id) if site_id else None
    return site if site is not None and site.public else None


def require_role(have: str, need: str) -> None:
    """403 unless role `have` is at least `need` (Viewer < Admin < Owner)."""
    if MEMBER_ROLES.index(have) < MEMBER_ROLES.index(need):
        raise ApiError(403, f"this needs the {need} role, you are {have}")


def authorize_principal(
    ctx: Context, request: Any, scope: str, write: bool | None = None, user_only: bool = False
) -> Principal:
    """The caller if it holds `scope` (for routes not about one site); `user_only` turns
    domain clients and access keys away (they act for a site, not a user)."""
    write = request.method not in ("GET", "HEAD") if write is None else write
    principal = authenticate(ctx, request)
    require_scope(principal, scope, write=write)
    if user_only and (principal.user is None or principal.domain_id is not None):
        raise ApiError(403, "this needs a user API key or a user client, not a domain client")
    return principal


def require_scope(principal: Principal, scope: str, write: bool = False) -> None:
    """403 unless the principal holds `scope`; access keys only ever write hits/events/sessions."""
    if principal.kind == "access_key" and scope not in WRITE_ONLY_SCOPES:
        raise ApiError(403, "access keys are write-only: use an oauth client or API key")
    if not principal.allows(scope, write=write or scope in WRITE_ONLY_SCOPES):
        raise ApiError(403, f"the client lacks the {scope} scope")


_key_cache: dict[str, tuple[float, Site]] = {}


def site_for_access_key(ctx: Context, request: Any, scope: str) -> Site:
    """For ingestion: the site of a `Bearer pa_...` key or domain client token (401 otherwise)."""
    credential = _bearer(request)
    if not credential:
        raise ApiError(401, "missing credentials: send Authorization: Bearer <access key>")
    cache_key = scope + "\0" + credential
    hit = _key_cache.get(cache_key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    principal = ctx.meta.resolve_secret(credential)
    if principal is None or principal.domain_id is None:
        raise ApiError(401, "invalid access key: use the site's access key or a domain client")
    require_scope(principal, scope, write=True)
    site = ctx.meta.get_site(principal.domain_id)
    if site is None:
        raise ApiError(401, "invalid access key: its domain no longer exists")
    if principal.kind == "access_key":
        if len(_key_cache) > 4096:
            _key_cache.clear()
        _key_cache[cache_key] = (now + ACCESS_KEY_CACHE_SECONDS, site)
    return site

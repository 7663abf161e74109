"""Who is calling the Pirsch API, and what they may reach.

Credentials: `Authorization: Bearer` (a user key, an oauth token, or for ingestion a `pa_` access
key / domain client) or `X-API-KEY` (a user key); without either, the dashboard's session cookie
(trail.api.session_cookie: the same user principal as the user's key, with CSRF checks on
writes). Sites out of the caller's reach answer 404, so nobody learns they exist; a missing
scope or role answers 403.

Two families of management routes differ in a way clients can see, and both are kept: the access
routes (domains, alternatives, members, snippets, views, themes, ...) answer a missing id with 400
"<field> is required" (`site_in_body`, `site_in_query`, `id_in_query`); the per-site settings
routes (filters, webhooks, email reports, short links, traffic alerts) treat a missing id as an
unknown one, 404 (`site_for`, `site_from_query`, `record_in_reach`, `delete_record`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from robyn import Response

from trail.api.http import empty, query_params, query_value
from trail.api.session_cookie import cookie_principal
from trail.errors import ApiError
from trail.storage.documents import Record, Records
from trail.storage.meta import MEMBER_ROLES, WRITE_ONLY_SCOPES, Principal, Site

if TYPE_CHECKING:
    from trail.context import Context


def _bearer(request: Any) -> str | None:
    value = request.headers.get("authorization")
    if value is None:
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise ApiError(401, "unsupported authorization scheme, use Bearer")
    return credential.strip()


def authenticate(ctx: Context, request: Any) -> Principal:
    """The caller behind `Authorization: Bearer ...`, `X-API-KEY` or the session cookie; 401
    otherwise."""
    credential = _bearer(request)
    if credential is None:
        api_key = request.headers.get("x-api-key")
        if api_key and api_key.strip():
            principal = ctx.meta.resolve_secret(api_key.strip())
            if principal is not None and principal.kind == "user":
                return principal
            raise ApiError(401, "invalid API key")
        principal = cookie_principal(ctx, request)
        if principal is not None:
            return principal
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


# (scope, Authorization header as sent) -> (valid until, site): a repeat key skips parsing.
_key_cache: dict[tuple[str, str], tuple[float, Site]] = {}


def site_for_access_key(ctx: Context, request: Any, scope: str) -> Site:
    """For ingestion: the site of a `Bearer pa_...` key or domain client token (401 otherwise)."""
    cache_key = (scope, request.headers.get("authorization") or "")
    hit = _key_cache.get(cache_key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    credential = _bearer(request)
    if not credential:
        raise ApiError(401, "missing credentials: send Authorization: Bearer <access key>")
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
        # How long a deleted access key (or a site's old settings) may still be used by a worker.
        _key_cache[cache_key] = (now + ctx.config.access_key_cache_ms / 1000, site)
    return site


def site_in_body(
    ctx: Context,
    request: Any,
    body: dict[str, Any],
    field: str = "domain_id",
    scope: str = "domains",
    role: str | None = None,
) -> Site:
    """The site named by body[`field`], authorized for `scope` (400 when the field is missing)."""
    site_id = body.get(field)
    if not isinstance(site_id, str) or not site_id.strip():
        raise ApiError(400, f"{field} is required", {field: "required"})
    return authorize_site(ctx, request, site_id.strip(), scope, role=role)


def site_in_query(
    ctx: Context,
    request: Any,
    field: str = "domain_id",
    scope: str = "domains",
    role: str | None = None,
) -> Site:
    site_id = query_value(query_params(request), field)
    if not site_id:
        authorize_principal(ctx, request, scope)  # 401/403 before a 400
        raise ApiError(400, f"{field} is required", {field: "required"})
    return authorize_site(ctx, request, site_id, scope, role=role)


def site_for(ctx: Context, request: Any, domain_id: Any) -> Site:
    """The site `domain_id` if the caller may read (or change) its settings; 404 otherwise, also
    when the id is missing."""
    site_id = domain_id.strip() if isinstance(domain_id, str) else ""
    return authorize_site(ctx, request, site_id, "domains")


def site_from_query(ctx: Context, request: Any, name: str = "domain_id") -> Site:
    """`site_for` the query parameter `name` (400 before authentication when it is missing)."""
    domain_id = query_value(query_params(request), name)
    if not domain_id:
        raise ApiError(400, f"{name} (the domain id) is required", {name: "required"})
    return site_for(ctx, request, domain_id)


def caller(
    ctx: Context, request: Any, scope: str = "domains", user_only: bool = False
) -> Principal:
    return authorize_principal(ctx, request, scope, user_only=user_only)


def record_site(
    ctx: Context,
    request: Any,
    rec: dict[str, Any] | None,
    what: str,
    scope: str = "domains",
    role: str | None = None,
) -> Site:
    """The site owning record `rec` if the caller may act on it; 404 naming `what` otherwise."""
    if rec is None or not rec.get("domain_id"):
        raise ApiError(404, f"{what} not found")
    try:
        return authorize_site(ctx, request, rec["domain_id"], scope, role=role)
    except ApiError as e:
        if e.status == 404:
            raise ApiError(404, f"{what} not found") from None
        raise


def id_in_query(ctx: Context, request: Any, scope: str = "domains", field: str = "id") -> str:
    """The `id` query parameter, after authentication (401 first, then 400)."""
    caller(ctx, request, scope)
    value = query_value(query_params(request), field)
    if not value:
        raise ApiError(400, f"{field} is required", {field: "required"})
    return value


def record_in_reach(
    ctx: Context, request: Any, store: Records, record_id: Any, what: str
) -> tuple[Record, Site]:
    """A stored record the caller may change, with its site; 404 for unknown or foreign ids."""
    record = store.get(record_id.strip()) if isinstance(record_id, str) else None
    if record is None:
        # Authenticate first so a caller without credentials learns nothing about ids.
        authenticate(ctx, request)
        raise ApiError(404, f"{what} not found")
    return record, record_site(ctx, request, record, what)


def delete_record(ctx: Context, request: Any, store: Records, what: str) -> Response:
    """DELETE ?id=: remove a record the caller may change."""
    record, _ = record_in_reach(ctx, request, store, query_value(query_params(request), "id"), what)
    store.delete(record["id"])
    return empty()


def user_manager(ctx: Context, request: Any) -> Principal:
    """A caller acting for a user (user key or user client) that may change domain settings:
    only those add or remove domains and clients."""
    principal = authenticate(ctx, request)
    require_scope(principal, "domains", write=True)
    if principal.domain_id is not None or principal.user is None:
        raise ApiError(403, "a domain client cannot manage domains or clients")
    return principal

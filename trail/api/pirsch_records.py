"""What the per-site record routes share (filters, webhooks, email reports, links, alerts).

Reading a site's records needs the `domains` scope ("r"), changing them "w"; a site outside the
caller's reach is a 404, the same answer as a site that does not exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from robyn import Response

from trail.api.common import (
    ApiError,
    authenticate,
    authorize_site,
    json_body,
    query_params,
    query_value,
)
from trail.storage.documents import Record, Records

if TYPE_CHECKING:
    from trail.context import Context
    from trail.storage.meta import Site


def site_for(ctx: Context, request: Any, domain_id: Any, write: bool) -> Site:
    """The site `domain_id` if the caller may read (or change) its settings; 404 otherwise."""
    # authorize_site: 404 out of reach, then the domains scope and the role (Admin to write).
    site_id = domain_id.strip() if isinstance(domain_id, str) else ""
    return authorize_site(ctx, request, site_id, "domains", write=write)


def site_from_query(ctx: Context, request: Any, name: str = "domain_id") -> Site:
    domain_id = query_value(query_params(request), name)
    if not domain_id:
        raise ApiError(400, f"{name} (the domain id) is required", {name: "required"})
    return site_for(ctx, request, domain_id, write=False)


def record_in_reach(
    ctx: Context, request: Any, store: Records, record_id: Any, what: str
) -> tuple[Record, Site]:
    """A stored record the caller may change, with its site; 404 for unknown or foreign ids."""
    record = store.get(record_id.strip()) if isinstance(record_id, str) else None
    if record is None:
        # Authenticate first so a caller without credentials learns nothing about ids.
        authenticate(ctx, request)
        raise ApiError(404, f"{what} not found")
    try:
        site = site_for(ctx, request, record["domain_id"], write=True)
    except ApiError as e:
        if e.status == 404:
            raise ApiError(404, f"{what} not found") from None
        raise
    return record, site


def object_body(ctx: Context, request: Any) -> dict[str, Any]:
    body = json_body(request, ctx.config.limits.max_body_bytes)
    if not isinstance(body, dict):
        raise ApiError(400, "expected a JSON object", {"body": "expected a JSON object"})
    return body


def text_field(
    body: dict[str, Any],
    name: str,
    errors: dict[str, str],
    max_len: int = 500,
    required: bool = False,
) -> str:
    """A string field, stripped; records a validation error for wrong types, length or absence."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            errors[name] = "required"
        return ""
    if not isinstance(value, str):
        errors[name] = "must be a string"
        return ""
    value = value.strip()
    if required and not value:
        errors[name] = "required"
    elif len(value) > max_len:
        errors[name] = f"must be at most {max_len} characters"
    return value


def fail_on(errors: dict[str, str], what: str) -> None:
    if errors:
        raise ApiError(400, f"invalid {what}: " + ", ".join(sorted(errors)), errors)


def ok() -> Response:
    return Response(200, {}, b"")


def deleted(ctx: Context, request: Any, store: Records, what: str) -> Response:
    """DELETE ?id=: remove a record the caller may change."""
    record, _ = record_in_reach(ctx, request, store, query_value(query_params(request), "id"), what)
    store.delete(record["id"])
    return ok()

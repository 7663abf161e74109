"""Pirsch statistics: `GET /api/v1/statistics/<report>` (every report with the filter language),
`GET /api/v1/statistics` (CSV files in a zip), `DELETE /api/v1/statistics`, and
`/statistics/keywords` (not available: it needs Google Search Console).

Reads need the `statistics` scope (or a public domain, or an access link); deleting needs the
`domains` write scope, as Pirsch's settings actions do. Reports run on the query thread pool.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from robyn import Response

from trail.api.http import body_object, empty, json_response, query_params, query_value
from trail.api.pirsch.auth import authenticate, authorize_site, require_scope
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import FieldError
from trail.services import statistics
from trail.storage.meta import Site

routes = Routes()
PREFIX = "/api/v1/statistics/"
REPORT_PATHS = (
    "/api/v1/statistics/total",
    "/api/v1/statistics/visitor",
    "/api/v1/statistics/page",
    "/api/v1/statistics/page/entry",
    "/api/v1/statistics/page/exit",
    "/api/v1/statistics/event/page",
    "/api/v1/statistics/hostname",
    "/api/v1/statistics/active",
    "/api/v1/statistics/referrer",
    "/api/v1/statistics/platform",
    "/api/v1/statistics/tags",
    "/api/v1/statistics/tag/details",
    "/api/v1/statistics/hours",
    "/api/v1/statistics/minutes",
    "/api/v1/statistics/weekdays",
    "/api/v1/statistics/duration/session",
    "/api/v1/statistics/duration/page",
    "/api/v1/statistics/events",
    "/api/v1/statistics/event/meta",
    "/api/v1/statistics/event/list",
    "/api/v1/statistics/growth",
    "/api/v1/statistics/session/list",
    "/api/v1/statistics/session/details",
    "/api/v1/statistics/os",
    "/api/v1/statistics/os/version",
    "/api/v1/statistics/browser",
    "/api/v1/statistics/browser/version",
    "/api/v1/statistics/country",
    "/api/v1/statistics/region",
    "/api/v1/statistics/city",
    "/api/v1/statistics/language",
    "/api/v1/statistics/screen",
    "/api/v1/statistics/channel",
    "/api/v1/statistics/utm/source",
    "/api/v1/statistics/utm/medium",
    "/api/v1/statistics/utm/campaign",
    "/api/v1/statistics/utm/content",
    "/api/v1/statistics/utm/term",
    "/api/v1/statistics/options/referrer/name",
    "/api/v1/statistics/options/hostname",
    "/api/v1/statistics/options/page",
    "/api/v1/statistics/options/referrer",
    "/api/v1/statistics/options/event",
    "/api/v1/statistics/options/country",
    "/api/v1/statistics/options/region",
    "/api/v1/statistics/options/city",
    "/api/v1/statistics/options/language",
    "/api/v1/statistics/options/metadata",
    "/api/v1/statistics/options/utm/source",
    "/api/v1/statistics/options/utm/medium",
    "/api/v1/statistics/options/utm/campaign",
    "/api/v1/statistics/options/utm/content",
    "/api/v1/statistics/options/utm/term",
    "/api/v1/statistics/options/tag",
    "/api/v1/statistics/options/tag/value",
    "/api/v1/statistics/goals",
    "/api/v1/statistics/funnel",
    "/api/v1/statistics/overview",
)
KEYWORDS_MESSAGE = (
    "keywords need the Google Search Console integration, which is not available in "
    "self-hosted trail"
)


def _site(ctx: Context, request: Any) -> tuple[dict[str, list[str]], Site]:
    """The decoded query and the site it names, if the caller may read its statistics."""
    params = query_params(request)
    site_id = query_value(params, "id")
    if not site_id:
        raise FieldError("id", "required")
    site = authorize_site(ctx, request, site_id, "statistics")
    return {**params, "id": [site.id]}, site


def get_report(ctx: Context, request: Any) -> Response:
    """Every report of REPORT_PATHS: the report is the path after /api/v1/statistics/."""
    params, site = _site(ctx, request)
    name = request.url.path.removeprefix(PREFIX).strip("/")
    return json_response(statistics.run(ctx, name, params, site))


for _path in REPORT_PATHS:
    routes.get(_path, offload=True)(get_report)


@routes.get("/api/v1/statistics/keywords")
def get_keywords(ctx: Context, request: Any) -> Response:
    _site(ctx, request)  # authorization first: an outsider learns nothing
    raise FieldError("keywords", KEYWORDS_MESSAGE)


@routes.get("/api/v1/statistics", offload=True)
def export_statistics(ctx: Context, request: Any) -> Response:
    params, site = _site(ctx, request)
    headers = {
        "content-type": "application/zip",
        "content-disposition": 'attachment; filename="statistics.zip"',
    }
    return Response(200, headers, statistics.export(ctx, params, site))


# -- DELETE /api/v1/statistics ----------------------------------------------------------------


def _delete_params(ctx: Context, request: Any) -> dict[str, Any]:
    """The JSON body, or the query parameters when there is no body."""
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body and str(body).strip():
        return body_object(ctx, request)
    return {k: v[0] for k, v in query_params(request).items() if v}


def _date(data: dict[str, Any], name: str) -> date | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FieldError(name, "expected YYYY-MM-DD")
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise FieldError(name, "expected YYYY-MM-DD") from None


@routes.delete("/api/v1/statistics")
def delete_statistics(ctx: Context, request: Any) -> Response:
    """Body {"id", "kind": "" | "all" | "events" | "imported", "from", "to"} (query parameters
    are accepted too); dates are the site's local dates, a missing end leaves it open."""
    data = _delete_params(ctx, request)
    site_id = data.get("id")
    if not isinstance(site_id, str) or not site_id.strip():
        raise FieldError("id", "required")
    kind = data.get("kind") or ""
    if not isinstance(kind, str) or kind not in statistics.DELETION_KINDS:
        raise FieldError("kind", "one of '', all, events, imported")
    first, last = _date(data, "from"), _date(data, "to")
    if first and last and last < first:
        raise FieldError("to", "must not be before from")
    site = authorize_site(ctx, request, site_id.strip(), "domains")
    require_scope(authenticate(ctx, request), "domains", write=True)
    statistics.delete(ctx, site, kind, first, last)
    return empty()

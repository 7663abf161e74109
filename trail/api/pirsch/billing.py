"""Pirsch `GET /api/v1/billing`: page views per site for a period (usage only; trail bills nobody).

`from`/`to` are optional: the default is the current calendar month (UTC) up to today. Each
site's page views come from the statistics `total` report over its own time zone's days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trail.api.http import json_response, query_params, query_value
from trail.api.pirsch.auth import authenticate
from trail.api.routing import Routes
from trail.errors import ApiError
from trail.services.sites import domain_record

routes = Routes()


if TYPE_CHECKING:
    from robyn import Response

    from trail.context import Context

MAX_LISTED = 50  # more dashboards than this: one "All" row, as Pirsch does


@routes.get("/api/v1/billing")
def usage(ctx: Context, request: Any) -> Response:
    principal = authenticate(ctx, request)
    if principal.kind == "access_key" or not (
        principal.allows("billing") or principal.allows("statistics")
    ):
        raise ApiError(403, "the client lacks the billing (or statistics) scope")
    params = query_params(request)
    first, last = period(query_value(params, "from"), query_value(params, "to"))
    rows: list[dict[str, Any]] = [
        {"domain": domain_record(ctx, s), "page_views": page_views(ctx, s, first, last)}
        for s in ctx.meta.list_sites_for(principal)
    ]
    if len(rows) > MAX_LISTED:
        total = sum(r["page_views"] for r in rows)
        rows = [
            {"domain": {"id": "", "hostname": "All", "display_name": "All"}, "page_views": total}
        ]
    return json_response(rows)


def period(from_text: str, to_text: str) -> tuple[date, date]:
    """The requested dates, or the current month so far; 400 naming a bad one."""
    today = datetime.now(UTC).date()
    try:
        first = date.fromisoformat(from_text) if from_text else today.replace(day=1)
    except ValueError:
        raise ApiError(
            400, "from: must be a date YYYY-MM-DD", {"from": "must be a date YYYY-MM-DD"}
        ) from None
    try:
        last = date.fromisoformat(to_text) if to_text else today
    except ValueError:
        raise ApiError(
            400, "to: must be a date YYYY-MM-DD", {"to": "must be a date YYYY-MM-DD"}
        ) from None
    return (last, first) if first > last else (first, last)


def page_views(ctx: Context, site: Any, first: date, last: date) -> int:
    from trail.stats import reports
    from trail.stats.filters import parse_filter

    params = {"id": [site.id], "from": [first.isoformat()], "to": [last.isoformat()]}
    f = parse_filter(params, default_tz=site.timezone or "UTC")
    return int(reports.total(Path(ctx.data_dir), f)["views"])

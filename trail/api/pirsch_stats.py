"""Pirsch `GET /api/v1/statistics/<report>`: authorize, parse the filter, run the report, render."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from trail.stats import reports
from trail.stats.filters import Filter, FilterError, parse_filter

# Report name (the path after /statistics/) -> (function(data_dir, filter, site), needs from/to).
Report = Callable[[Path, Filter, Any], Any]
REPORTS: dict[str, tuple[Report, bool]] = {
    "total": (lambda d, f, s: reports.total(d, f), True),
    "visitor": (lambda d, f, s: reports.visitor(d, f), True),
    "page": (
        lambda d, f, s: reports.page(
            d, f, group_by_title=bool(getattr(s, "group_by_title", False))
        ),
        True,
    ),
    "page/entry": (lambda d, f, s: reports.entry_pages(d, f), True),
    "page/exit": (lambda d, f, s: reports.exit_pages(d, f), True),
    "active": (lambda d, f, s: reports.active(d, f), False),
    "referrer": (lambda d, f, s: reports.referrer(d, f), True),
    "platform": (lambda d, f, s: reports.platform(d, f), True),
    "hours": (lambda d, f, s: reports.hours(d, f), True),
    "weekdays": (lambda d, f, s: reports.weekdays(d, f), True),
    "duration/session": (lambda d, f, s: reports.session_duration(d, f), True),
    "growth": (lambda d, f, s: reports.growth(d, f), True),
}


def _dimension_report(name: str) -> Report:
    return lambda d, f, s: reports.dimension(d, f, name)


REPORTS.update({name: (_dimension_report(name), True) for name in reports.DIMENSIONS})


def run(ctx: Any, name: str, params: dict[str, list[str]], site: Any) -> Any:
    """Parse `params` for `site` and run report `name`; FilterError for bad input."""
    fn, needs_dates = REPORTS[name]
    f = parse_filter(params, default_tz=getattr(site, "timezone", "UTC") or "UTC")
    if name == "active" and not f.start:
        f = _with_start(f, int(getattr(site, "active_visitors_seconds", 600) or 600))
    if needs_dates:
        missing = [k for k in ("from", "to") if getattr(f, f"{k}_date") is None]
        if missing:
            raise FilterError(missing[0], "required")
    return fn(Path(ctx.data_dir), f, site)


def _with_start(f: Filter, seconds: int) -> Filter:
    from dataclasses import replace

    return replace(f, start=min(seconds, 3600))


def register(app: Any, ctx: Any) -> None:
    """Add the statistics routes to the Robyn app."""
    from trail.api.common import handler

    for name in REPORTS:
        app.get(f"/api/v1/statistics/{name}")(handler(_endpoint(ctx, name)))


def _endpoint(ctx: Any, name: str) -> Callable[[Any], Any]:
    def endpoint(request: Any) -> Any:
        from trail.api.common import ApiError, authorize_site, json_response, query_params

        params = query_params(request)
        site_id = next((v for v in params.get("id", []) if v.strip()), "")
        if not site_id:
            raise ApiError(400, "id is required", {"id": "required"})
        site = authorize_site(ctx, request, site_id, "statistics")
        params = {**params, "id": [str(getattr(site, "id", site_id))]}
        try:
            result = run(ctx, name, params, site)
        except FilterError as e:
            raise ApiError(400, f"{e.field}: {e.message}", {e.field: e.message}) from None
        return json_response(result)

    endpoint.__name__ = f"statistics_{name.replace('/', '_')}"
    return endpoint

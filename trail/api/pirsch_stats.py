"""Pirsch `GET /api/v1/statistics/<report>`: authorize, parse the filter, run the report, render.

Also `GET /api/v1/statistics` (CSV files in a zip) and `/statistics/keywords` (not available).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from trail.stats import events, goals, options, reports, sessions, tags
from trail.stats.export import SECTIONS, export_zip
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
    "event/page": (lambda d, f, s: events.event_pages(d, f), True),
    "hostname": (lambda d, f, s: reports.hostname(d, f), True),
    "active": (lambda d, f, s: reports.active(d, f), False),
    "referrer": (lambda d, f, s: reports.referrer(d, f), True),
    "platform": (lambda d, f, s: reports.platform(d, f), True),
    "tags": (lambda d, f, s: tags.tags(d, f), True),
    "tag/details": (lambda d, f, s: tags.tag_details(d, f), True),
    "hours": (lambda d, f, s: reports.hours(d, f), True),
    "minutes": (lambda d, f, s: reports.minutes(d, f), True),
    "weekdays": (lambda d, f, s: reports.weekdays(d, f), True),
    "duration/session": (lambda d, f, s: reports.session_duration(d, f), True),
    "duration/page": (lambda d, f, s: reports.page_duration(d, f), True),
    "events": (lambda d, f, s: events.events(d, f), True),
    "event/meta": (lambda d, f, s: events.event_meta(d, f), True),
    "event/list": (lambda d, f, s: events.event_list(d, f), True),
    "growth": (lambda d, f, s: reports.growth(d, f), True),
    "session/list": (lambda d, f, s: sessions.session_list(d, f), True),
    "session/details": (lambda d, f, s: sessions.session_details(d, f), True),
}


def _dimension_report(name: str) -> Report:
    return lambda d, f, s: reports.dimension(d, f, name)


def _options_report(name: str) -> Report:
    return lambda d, f, s: options.options(d, f, name)


REPORTS.update({name: (_dimension_report(name), True) for name in reports.DIMENSIONS})
REPORTS.update({f"options/{name}": (_options_report(name), True) for name in options.OPTIONS})

# Reports that also read definitions from the meta store: function(ctx, filter, site, params).
ContextReport = Callable[[Any, Filter, Any, dict[str, list[str]]], Any]


def _goals(ctx: Any, f: Filter, site: Any, params: dict[str, list[str]]) -> Any:
    from trail.storage.goals import goal_store

    return goals.goal_stats(Path(ctx.data_dir), f, goal_store(ctx.meta.env).list_goals(site.id))


def _funnel(ctx: Any, f: Filter, site: Any, params: dict[str, list[str]]) -> Any:
    from trail.storage.goals import goal_store

    definition = goal_store(ctx.meta.env).get_funnel(goals.require_funnel_id(params))
    if definition is None or definition.get("domain_id") != site.id:
        raise FilterError("funnel_id", "no such funnel for this domain")
    return goals.funnel(Path(ctx.data_dir), f, definition)


def _overview(ctx: Any, f: Filter, site: Any, params: dict[str, list[str]]) -> Any:
    out = reports.overview(Path(ctx.data_dir), f)
    out["member"] = ctx.meta.count_users(getattr(site, "account_id", None))
    return out


CONTEXT_REPORTS: dict[str, tuple[ContextReport, bool]] = {
    "goals": (_goals, True),
    "funnel": (_funnel, True),
    "overview": (_overview, False),
}

KEYWORDS_MESSAGE = (
    "keywords need the Google Search Console integration, which is not available in "
    "self-hosted trail"
)


def parse(params: dict[str, list[str]], site: Any, needs_dates: bool) -> Filter:
    """The filter of a statistics request for `site`; FilterError for bad or missing input."""
    f = parse_filter(params, default_tz=getattr(site, "timezone", "UTC") or "UTC")
    if needs_dates:
        missing = [k for k in ("from", "to") if getattr(f, f"{k}_date") is None]
        if missing:
            raise FilterError(missing[0], "required")
    return f


def run(ctx: Any, name: str, params: dict[str, list[str]], site: Any) -> Any:
    """Parse `params` for `site` and run report `name`; FilterError for bad input."""
    if name in CONTEXT_REPORTS:
        cfn, needs_dates = CONTEXT_REPORTS[name]
        return cfn(ctx, parse(params, site, needs_dates), site, params)
    fn, needs_dates = REPORTS[name]
    f = parse(params, site, needs_dates)
    if name == "active" and not f.start:
        f = replace(f, start=min(int(getattr(site, "active_visitors_seconds", 600) or 600), 3600))
    from trail.stats.cache import cached  # results over closed days (see trail.stats.cache)

    grouping = bool(getattr(site, "group_by_title", False))
    return cached(name, Path(ctx.data_dir), f, lambda: fn(Path(ctx.data_dir), f, site), grouping)


def export(ctx: Any, params: dict[str, list[str]], site: Any) -> bytes:
    """The zip of CSV files for the sections flagged `true` or `1`."""
    f = parse(params, site, True)
    chosen = [
        s for s in SECTIONS
        if any(v.strip().lower() in ("true", "1") for v in params.get(s, []))
    ]  # fmt: skip
    goal_list: list[dict[str, Any]] = []
    if "conversion_goals" in chosen:
        from trail.storage.goals import goal_store

        goal_list = goal_store(ctx.meta.env).list_goals(site.id)
    return export_zip(Path(ctx.data_dir), f, chosen, goal_list)


def register(app: Any, ctx: Any) -> None:
    """Add the statistics routes to the Robyn app."""
    from trail.api.common import handler, offloaded

    for name in [*REPORTS, *CONTEXT_REPORTS]:
        app.get(f"/api/v1/statistics/{name}")(offloaded(handler(_endpoint(ctx, name))))
    app.get("/api/v1/statistics/keywords")(handler(_keywords(ctx)))
    app.get("/api/v1/statistics")(offloaded(handler(_export_endpoint(ctx))))


def _site(ctx: Any, request: Any) -> tuple[dict[str, list[str]], Any]:
    """The decoded query and the site it names, if the caller may read its statistics."""
    from trail.api.common import ApiError, authorize_site, query_params

    params = query_params(request)
    site_id = next((v.strip() for v in params.get("id", []) if v.strip()), "")
    if not site_id:
        raise ApiError(400, "id is required", {"id": "required"})
    site = authorize_site(ctx, request, site_id, "statistics")
    return {**params, "id": [str(getattr(site, "id", site_id))]}, site


def _filter_error(e: FilterError) -> Exception:
    from trail.api.common import ApiError

    return ApiError(400, f"{e.field}: {e.message}", {e.field: e.message})


def _endpoint(ctx: Any, name: str) -> Callable[[Any], Any]:
    def endpoint(request: Any) -> Any:
        from trail.api.common import json_response

        params, site = _site(ctx, request)
        try:
            result = run(ctx, name, params, site)
        except FilterError as e:
            raise _filter_error(e) from None
        return json_response(result)

    endpoint.__name__ = f"statistics_{name.replace('/', '_')}"
    return endpoint


def _keywords(ctx: Any) -> Callable[[Any], Any]:
    def statistics_keywords(request: Any) -> Any:
        from trail.api.common import ApiError

        _site(ctx, request)  # authorization first: an outsider learns nothing
        raise ApiError(400, KEYWORDS_MESSAGE)

    return statistics_keywords


def _export_endpoint(ctx: Any) -> Callable[[Any], Any]:
    def statistics_export(request: Any) -> Any:
        from robyn import Response

        params, site = _site(ctx, request)
        try:
            body = export(ctx, params, site)
        except FilterError as e:
            raise _filter_error(e) from None
        headers = {
            "content-type": "application/zip",
            "content-disposition": 'attachment; filename="statistics.zip"',
        }
        return Response(200, headers, body)

    return statistics_export

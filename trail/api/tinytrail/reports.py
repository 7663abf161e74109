"""TinyTrail `GET /api/v1/reports/*`: authorize, parse, call the report functions (`ReportSource`:
trail.stats, or ClickHouse first with storage = "clickhouse"), shape JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robyn import Response

from trail.api.http import query_params
from trail.api.routing import Routes
from trail.api.tinytrail.auth import authenticate
from trail.api.tinytrail.errors import ok
from trail.api.tinytrail.websites import reachable_website
from trail.errors import FieldError
from trail.services.tinytrail_reports import ReportQuery, ReportSource, parse_query, report_source
from trail.stats import tinytrail_reports as tr
from trail.stats.scan import replanned
from trail.storage.meta import Site
from trail.validation import is_uuid

if TYPE_CHECKING:
    from trail.context import Context

routes = Routes()
PREFIX = "/api/v1/reports/"
REPORT_PATHS = (
    "/api/v1/reports/summary",
    "/api/v1/reports/pages",
    "/api/v1/reports/sources",
    "/api/v1/reports/devices",
    "/api/v1/reports/flow",
    "/api/v1/reports/funnel",
    "/api/v1/reports/realtime",
    "/api/v1/reports/custom-events",
    "/api/v1/reports/timeseries",
)
MAX_STEPS = 20
SUMMARY_METRICS = (
    "visits",
    "unique_visitors",
    "pageviews",
    "bounce_rate",
    "avg_session_duration_sec",
)
# A report: (report functions, parsed query, site, raw params) -> (JSON, CSV columns, CSV rows).
Report = Callable[
    [ReportSource, ReportQuery, Site, dict[str, list[str]]],
    tuple[dict[str, Any], list[str], list[dict[str, Any]]],
]


def get_report(ctx: Context, request: Any) -> Response:
    """Every report of REPORT_PATHS: the report is the path after /api/v1/reports/."""
    name = request.url.path.removeprefix(PREFIX).strip("/")
    principal = authenticate(ctx, request)
    params = query_params(request)
    site_id = _value(params, "website_id")
    if not site_id:
        raise FieldError("website_id", "required")
    if not is_uuid(site_id):
        raise FieldError("website_id", "must be a UUID")
    site = reachable_website(ctx, principal, site_id.lower())
    src = report_source(ctx)
    q = parse_query(params, site, Path(ctx.data_dir), clickhouse_url=src.clickhouse_url)
    data, columns, rows = replanned(lambda: REPORTS[name](src, q, site, params))
    if q.format == "csv":
        return csv_response(name, columns, rows)
    return ok(data)


def _value(params: dict[str, list[str]], name: str) -> str:
    return next((v.strip() for v in reversed(params.get(name, [])) if v.strip()), "")


def csv_response(name: str, columns: list[str], rows: list[dict[str, Any]]) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    headers = {
        "content-type": "text/csv; charset=utf-8",
        "content-disposition": f'attachment; filename="{name}.csv"',
    }
    return Response(200, headers, out.getvalue().encode())


def _period(q: ReportQuery) -> dict[str, str]:
    return {"start": q.start.isoformat(), "end": q.end.isoformat()}


def _paged(q: ReportQuery, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"period": _period(q), "page": q.page, "per_page": q.per_page, "rows": rows}


# -- the reports ------------------------------------------------------------------------------


def summary(src: ReportSource, q: ReportQuery, site: Site, params: dict[str, list[str]]) -> Any:
    current = src.summary(q.f, q.include_bots)
    previous_f = q.previous_filter()
    previous = src.summary(previous_f, q.include_bots) if previous_f is not None else None
    metrics: dict[str, dict[str, Any]] = {}
    for name in SUMMARY_METRICS:
        item: dict[str, Any] = {"value": current[name]}
        if previous is not None:
            item["previous"] = previous[name]
            item["change_pct"] = tr.change_pct(current[name], previous[name])
        metrics[name] = item
    data: dict[str, Any] = {"period": _period(q)}
    if q.previous is not None:
        data["comparison"] = f"{q.previous[0].isoformat()} to {q.previous[1].isoformat()}"
    data["metrics"] = metrics
    rows = [{"metric": k, **v} for k, v in metrics.items()]
    return data, ["metric", "value", "previous", "change_pct"], rows


def pages(src: ReportSource, q: ReportQuery, site: Site, params: dict[str, list[str]]) -> Any:
    got = src.pages(q.f, q.offset, q.per_page, q.include_bots)
    rows = [
        {
            "path": r["path"],
            "contentGroup": tr.content_group_of(r["path"], site.content_groups),
            "pageviews": r["pageviews"],
            "uniquePageviews": r["uniquePageviews"],
        }
        for r in got
    ]
    return _paged(q, rows), ["path", "contentGroup", "pageviews", "uniquePageviews"], rows


GROUPINGS = ("channel", "domain", "utm")
SOURCE_COLUMNS = {
    "channel": ["channel", "visits"],
    "domain": ["referrer", "visits"],
    "utm": ["utmSource", "utmMedium", "utmCampaign", "visits"],
}


def sources(src: ReportSource, q: ReportQuery, site: Site, params: dict[str, list[str]]) -> Any:
    group_by = _value(params, "group_by") or "channel"
    if group_by not in GROUPINGS:
        raise FieldError("group_by", f"must be one of {', '.join(GROUPINGS)}")
    rows = src.sources(q.f, group_by, q.offset, q.per_page)
    return _paged(q, rows), SOURCE_COLUMNS[group_by], rows


def devices(src: ReportSource, q: ReportQuery, site: Site, params: dict[str, list[str]]) -> Any:
    got = src.devices(q.f)
    return {"period": _period(q), **got}, ["deviceType", "visits"], got["device_types"]


def flow(src: ReportSource, q: ReportQuery, site: Site, params: dict[str, list[str]]) -> Any:
    got = src.flow(q.f, q.offset, q.per_page)
    return {"period": _period(q), **got}, ["path", "entries"], got["landing_pages"]


def funnel(src: ReportSource, q: ReportQuery, site: Site, params: dict[str, list[str]]) -> Any:
    steps = [s.strip() for s in params.get("steps[]", []) + params.get("steps", []) if s.strip()]
    if len(steps) < 2:
        raise FieldError("steps[]", "at least 2 steps are required (paths or event types)")
    if len(steps) > MAX_STEPS:
        raise FieldError("steps[]", f"at most {MAX_STEPS} steps")
    if any(len(s) > 2000 for s in steps):
        raise FieldError("steps[]", "a step is at most 2000 characters")
    got = src.funnel(q.f, steps)
    return {"period": _period(q), "funnel": got}, ["step", "sessions", "conversion_rate"], got


def realtime(src: ReportSource, q: ReportQuery, site: Site, params: dict[str, list[str]]) -> Any:
    got = src.realtime(q.f)
    return got, ["path", "visitors"], got["top_pages"]


def custom_events(
    src: ReportSource, q: ReportQuery, site: Site, params: dict[str, list[str]]
) -> Any:
    name = _value(params, "event_name") or None
    rows = src.custom_events(q.f, name, q.offset, q.per_page)
    return _paged(q, rows), ["name", "count"], rows


def timeseries(src: ReportSource, q: ReportQuery, site: Site, params: dict[str, list[str]]) -> Any:
    metric = _value(params, "metric") or "pageviews"
    if metric not in tr.METRICS:
        raise FieldError("metric", f"must be one of {', '.join(tr.METRICS)}")
    path = _value(params, "path") or None
    if path is not None and not path.startswith("/"):
        raise FieldError("path", "must be a path starting with /")
    series = src.timeseries(q.f, metric, path, q.include_bots)
    data = {"period": _period(q), "metric": metric, "path": path or "*", "series": series}
    return data, ["date", "value"], series


REPORTS: dict[str, Report] = {
    "summary": summary,
    "pages": pages,
    "sources": sources,
    "devices": devices,
    "flow": flow,
    "funnel": funnel,
    "realtime": realtime,
    "custom-events": custom_events,
    "timeseries": timeseries,
}

for _path in REPORT_PATHS:
    routes.get(_path, offload=True)(get_report)

"""Pirsch `DELETE /api/v1/statistics`: delete a domain's statistics by kind and date range.

Body (JSON; query parameters are accepted too): {"id": domain id, "kind": "" | "all" | "events" |
"imported", "from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}. Dates are the site's local dates (its time
zone); a missing `from`/`to` leaves that end open. The deletion is recorded as a tombstone
(trail.storage.tombstones) before the 200: queries stop seeing the rows at once, and compaction
removes them from the files of closed days (Pirsch, too, deletes asynchronously). Rows of the range
that are sealed later (a WAL replay after a crash) stay deleted. Needs the `domains` write scope,
as Pirsch's settings actions do; `statistics` is read-only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trail.api.common import (
    ApiError,
    authenticate,
    authorize_site,
    handler,
    json_body,
    query_params,
    require_scope,
)
from trail.context import Context
from trail.storage import tombstones

# Far enough for "everything": 1970 .. 9999.
_OPEN_START = 0
_OPEN_END = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)


def register(app: Any, ctx: Context) -> None:
    app.delete("/api/v1/statistics")(handler(lambda request: delete_statistics(ctx, request)))


def _params(request: Any) -> dict[str, Any]:
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body and str(body).strip():
        data = json_body(request)
        if not isinstance(data, dict):
            raise ApiError(400, "the body must be a JSON object", {"body": "object expected"})
        return data
    return {k: v[0] for k, v in query_params(request).items() if v}


def _date(data: dict[str, Any], name: str) -> date | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a date", {name: "expected YYYY-MM-DD"})
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise ApiError(400, f"{name} is not a valid date", {name: "expected YYYY-MM-DD"}) from None


def _instant(day: date, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, time(0), tz).astimezone(UTC).timestamp() * 1000)


def delete_statistics(ctx: Context, request: Any) -> Any:
    from robyn import Response

    data = _params(request)
    site_id = data.get("id")
    if not isinstance(site_id, str) or not site_id.strip():
        raise ApiError(400, "id is required", {"id": "required"})
    kind = data.get("kind") or ""
    if not isinstance(kind, str) or kind not in tombstones.KIND_TABLES:
        raise ApiError(400, "kind is invalid", {"kind": "one of '', all, events, imported"})
    first, last = _date(data, "from"), _date(data, "to")
    if first and last and last < first:
        raise ApiError(400, "to is before from", {"to": "must not be before from"})
    site = authorize_site(ctx, request, site_id.strip(), "domains")
    require_scope(authenticate(ctx, request), "domains", write=True)
    try:
        tz = ZoneInfo(getattr(site, "timezone", "") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    start = _instant(first, tz) if first else _OPEN_START
    end = _instant(last + timedelta(days=1), tz) if last else _OPEN_END
    tables = tombstones.KIND_TABLES[kind]
    if tables:
        tombstones.add(ctx.data_dir, site.id, tables, start, end)
    return Response(200, {}, b"")

"""TinyTrail `POST /api/v1/admin/aggregate` (admins only): compact every site's rows of one UTC
day now, instead of waiting for the maintenance process (default: yesterday)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from robyn import Response

from trail.api.http import body_object
from trail.api.routing import Routes
from trail.api.tinytrail.auth import require_admin
from trail.api.tinytrail.errors import ok
from trail.errors import FieldError

if TYPE_CHECKING:
    from trail.context import Context

routes = Routes()
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(value: Any, field: str = "date") -> date:
    if not isinstance(value, str) or not _DATE.match(value.strip()):
        raise FieldError(field, "must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise FieldError(field, "must be a valid calendar date YYYY-MM-DD") from None


@routes.post("/api/v1/admin/aggregate")
def aggregate(ctx: Context, request: Any) -> Response:
    # Compaction writes with pyarrow (~35 MiB RSS in a worker): only this request loads it.
    from trail.tasks import compaction

    require_admin(ctx, request)
    raw = request.body
    body = body_object(ctx, request) if raw and str(raw).strip() else {}
    value = body.get("date")
    day = parse_day(value) if value is not None else datetime.now(UTC).date() - timedelta(days=1)
    summary = compaction.compact_day(ctx.data_dir, day)
    skipped = summary.get("skipped")
    failed = summary.get("failed_dirs", 0)
    if skipped:
        message = f"Aggregation skipped for {day.isoformat()}: {skipped}"
    elif failed:
        message = f"Aggregation of {day.isoformat()} failed for {failed} directories (see failures)"
    else:
        message = f"Aggregation completed for {day.isoformat()}"
    return ok({"message": message, "summary": summary})

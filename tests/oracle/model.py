"""The reference model's front door: `answer(tables, site_tz, endpoint, params, now)`.

`endpoint` is the path after /api/v1/statistics/ (trail: trail/services/statistics.py `REPORTS`,
trail/api/pirsch/statistics.py `REPORT_PATHS`); `params` the query parameters as
{name: [values]}; `now` UTC milliseconds (active visitors, growth of today).

Not modelled: goals and funnel (they read stored definitions), keywords (not available),
`overview.member` (not statistics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.oracle import breakdowns, events, pages, reports
from tests.oracle.filters import parse, window
from tests.oracle.selection import Selection
from tests.oracle.sessions import Tables

Report = Callable[[Selection, int], Any]
REPORTS: dict[str, Report] = {
    "total": reports.total,
    "visitor": reports.visitor,
    "page": pages.page,
    "page/entry": pages.entry_exit("entry"),
    "page/exit": pages.entry_exit("exit"),
    "event/page": events.event_page,
    "hostname": breakdowns.hostname,
    "active": pages.active,
    "referrer": breakdowns.referrer,
    "platform": breakdowns.platform,
    "tags": pages.tags,
    "tag/details": pages.tag_details,
    "hours": reports.hours,
    "minutes": reports.minutes,
    "weekdays": reports.weekdays,
    "duration/session": reports.session_duration,
    "duration/page": reports.page_duration,
    "events": events.events,
    "event/meta": events.event_meta,
    "event/list": events.event_list,
    "growth": reports.growth_report,
    "session/list": pages.session_list,
    "session/details": pages.session_details,
    "overview": reports.overview,
    **{name: breakdowns.dimension(name) for name in breakdowns.DIMENSIONS},
    **{f"options/{name}": breakdowns.options(name) for name in breakdowns.OPTIONS},
}
# Reports that work without from/to: active reads the last `start` seconds; overview defaults
# to the last 7 days (API docs: "GET /api/v1/statistics/overview?id=...").
NO_DATES = ("active", "overview")
OVERVIEW_DAYS = 7


def answer(
    tables: Tables, site_tz: str, endpoint: str, params: dict[str, list[str]], now: int
) -> Any:
    """What `GET /api/v1/statistics/<endpoint>?<params>` should answer for one site's rows."""
    q = parse(params, site_tz)
    if endpoint == "active":
        q = replace(q, from_date=None, to_date=None)
        return REPORTS[endpoint](Selection(tables, q, 0, 0), now)
    if q.from_date is None or q.to_date is None:
        assert endpoint == "overview", f"{endpoint} needs from and to"
        today = datetime.fromtimestamp(now / 1000, UTC).astimezone(q.tz).date()
        q = replace(q, from_date=today - timedelta(days=OVERVIEW_DAYS - 1), to_date=today)
    start, end = window(q)
    return REPORTS[endpoint](Selection(tables, q, start, end), now)

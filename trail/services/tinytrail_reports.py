"""TinyTrail report parameters -> one validated `ReportQuery` (a shared `Filter` plus paging),
and `ReportSource`: the report functions, from ClickHouse first with storage = "clickhouse".

Periods are local dates in the website's time zone, ending today:
today, yesterday, 7d/30d/90d (the last N days including today), 12m (one year back + 1 day),
ytd (since January 1), all (since the website's earliest stored day, at most MAX_BUCKETS days
back, so that its day series fits; with storage = "clickhouse" the earliest in ClickHouse or in
this node's data directory). `start_date`/`end_date` override the period (either alone:
from that day to today / the 7 days ending that day); `start_date` after `end_date` is an error,
and dates are moved into [1970-01-01, tomorrow] like the Pirsch filter's (trail.stats.filters).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from trail.errors import FieldError
from trail.stats import tinytrail_reports as tr
from trail.stats.buckets import MAX_BUCKETS
from trail.stats.filters import FIRST_DAY, Filter, clamp_day
from trail.stats.tinytrail_reports import content_group_filter
from trail.storage import layout
from trail.storage.meta import Site

PERIODS = ("yesterday", "today", "7d", "30d", "90d", "12m", "ytd", "all")
COMPARES = ("previous_period", "yoy")
FORMATS = ("json", "csv")
MAX_PER_PAGE = 500
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT = re.compile(r"^\d{1,9}$")


class QueryError(FieldError):
    """A report query parameter that cannot be used."""


@dataclass(frozen=True)
class ReportQuery:
    f: Filter
    start: date
    end: date
    previous: tuple[date, date] | None
    include_bots: bool
    page: int
    per_page: int
    format: str

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    def previous_filter(self) -> Filter | None:
        if self.previous is None:
            return None
        from dataclasses import replace

        return replace(self.f, from_date=self.previous[0], to_date=self.previous[1])


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = [v.strip() for v in params.get(name, []) if v.strip()]
    return values[-1] if values else None


def _date(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        if _DATE.match(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise QueryError(name, "must be a date YYYY-MM-DD")


def _int(name: str, value: str | None, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not _INT.match(value) or not low <= int(value) <= high:
        raise QueryError(name, f"must be an integer from {low} to {high}")
    return int(value)


def _choice(name: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    if value is not None and value not in choices:
        raise QueryError(name, f"must be one of {', '.join(choices)}")
    return value


def earliest_day(data_dir: Path, site_id: str, clickhouse_url: str = "") -> date | None:
    """The first UTC day with stored sessions or bot requests of a site (from FIRST_DAY on):
    in this node's data directory, and with `clickhouse_url` (storage = "clickhouse") in
    ClickHouse too, which holds every node's rows."""
    days = [
        d
        for table in ("sessions", "requests")
        for d in layout.site_days(data_dir, table, site_id)
        if d >= FIRST_DAY
    ]
    if clickhouse_url:
        shared = _clickhouse_earliest_day(clickhouse_url, data_dir, site_id)
        days += [shared] if shared is not None else []
    return min(days, default=None)


# The first day of either table: each subquery reads one granule of the (site_id, toDate(time))
# order. minOrNull: an empty set is NULL, not 1970-01-01.
_EARLIEST_SQL = """
SELECT minOrNull(day) FROM (
    (SELECT toDate(time) AS day FROM {db}.sessions WHERE site_id = {{site:String}}
     AND toDate(time) >= {{first:Date}} ORDER BY day LIMIT 1)
    UNION ALL
    (SELECT toDate(time) AS day FROM {db}.requests WHERE site_id = {{site:String}}
     AND toDate(time) >= {{first:Date}} ORDER BY day LIMIT 1)
)"""


def _clickhouse_earliest_day(url: str, data_dir: Path, site_id: str) -> date | None:
    """The first day ClickHouse holds for the site; None when it holds none or cannot say
    (a busy chDB directory, a deletion not applied yet: this node's days answer alone)."""
    from trail.clickhouse import backend

    def first(client: Any, database: str, g: Filter, s: Any) -> date | None:
        sql = _EARLIEST_SQL.format(db=database)
        params = {"site": site_id, "first": FIRST_DAY}
        day: date | None = client.query(sql, parameters=params).result_rows[0][0]
        return day

    window = Filter(site_id=site_id, from_date=FIRST_DAY, to_date=date.today())
    day: date | None = backend.answer_with(
        url, data_dir, "tinytrail/earliest-day", first, window, None
    )
    return day


def minus_year(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # February 29
        return d.replace(year=d.year - 1, day=28)


def period_range(period: str, today: date, first: date | None) -> tuple[date, date]:
    if period == "today":
        return today, today
    if period == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if period in ("7d", "30d", "90d"):
        return today - timedelta(days=int(period[:-1]) - 1), today
    if period == "12m":
        return minus_year(today) + timedelta(days=1), today
    if period == "ytd":
        return today.replace(month=1, day=1), today
    oldest = today - timedelta(days=MAX_BUCKETS - 1)
    return max(min(first or today, today), oldest), today  # all


def compare_range(compare: str, start: date, end: date) -> tuple[date, date]:
    if compare == "yoy":
        return minus_year(start), minus_year(end)
    length = (end - start).days + 1
    return start - timedelta(days=length), start - timedelta(days=1)


def parse_query(
    params: dict[str, list[str]],
    site: Site,
    data_dir: Path,
    now: datetime | None = None,
    clickhouse_url: str = "",
) -> ReportQuery:
    """Validate the common report parameters; QueryError names the first bad one.
    `clickhouse_url`: where the `all` period looks for the site's first day besides `data_dir`."""
    try:
        tz = ZoneInfo(site.timezone or "UTC")
    except Exception:  # noqa: BLE001  a bad stored zone must not break reports
        tz = ZoneInfo("UTC")
    today = (now or datetime.now(UTC)).astimezone(tz).date()
    tomorrow = today + timedelta(days=1)
    period = _choice("period", _one(params, "period"), PERIODS) or "7d"
    start_date = _date("start_date", _one(params, "start_date"))
    end_date = _date("end_date", _one(params, "end_date"))
    if start_date or end_date:
        end = clamp_day(end_date or today, tomorrow)
        start = clamp_day(start_date or end - timedelta(days=6), tomorrow)
        if start > end or (start_date and end_date and start_date > end_date):
            raise QueryError("start_date", "must not be after end_date")
    else:
        first = earliest_day(data_dir, site.id, clickhouse_url) if period == "all" else None
        start, end = period_range(period, today, first)
    compare = _choice("compare", _one(params, "compare"), COMPARES)
    bots = (_one(params, "include_bots") or "false").lower()
    if bots not in ("true", "false", "1", "0"):
        raise QueryError("include_bots", "must be true or false")
    pattern = None
    group = _one(params, "content_group")
    if group is not None:
        pattern = content_group_filter(site.content_groups, group)
        if pattern is None:
            raise QueryError("content_group", f"the website has no content group {group!r}")
    f = Filter(site_id=site.id, from_date=start, to_date=end, tz=tz, pattern=pattern)
    return ReportQuery(
        f=f,
        start=start,
        end=end,
        previous=compare_range(compare, start, end) if compare else None,
        include_bots=bots in ("true", "1"),
        page=_int("page", _one(params, "page"), 1, 1, 1_000_000),
        per_page=_int("per_page", _one(params, "per_page"), 50, 1, MAX_PER_PAGE),
        format=_choice("format", _one(params, "format"), FORMATS) or "json",
    )


class ReportSource:
    """TinyTrail's report functions (trail.stats.tinytrail_reports) over one data directory.

    With storage = "clickhouse" each asks ClickHouse first (trail.clickhouse.reports_tinytrail)
    under the rules of the statistics endpoints (trail.clickhouse.backend.answer_with): None,
    after a deletion in the window, a filter the SQL does not compile or a busy chDB directory,
    means the embedded engine answers; a ClickHouse failure is a 503."""

    def __init__(self, data_dir: Path, clickhouse_url: str = "") -> None:
        self.data_dir = data_dir
        self.clickhouse_url = clickhouse_url

    def _answer(
        self, name: str, f: Filter, sql: Callable[[Any, str], Any], embedded: Callable[[], Any]
    ) -> Any:
        if self.clickhouse_url:
            from trail.clickhouse import backend

            got = backend.answer_with(
                self.clickhouse_url, self.data_dir, f"tinytrail/{name}",
                lambda client, database, g, s: sql(client, database), f, None,
            )  # fmt: skip
            if got is not None:
                return got
        return embedded()

    def summary(self, f: Filter, include_bots: bool) -> dict[str, float]:
        return self._answer(
            "summary", f,
            lambda c, d: ch().summary(c, d, f, include_bots),
            lambda: tr.summary(self.data_dir, f, include_bots),
        )  # fmt: skip

    def pages(self, f: Filter, offset: int, limit: int, include_bots: bool) -> list[Any]:
        return self._answer(
            "pages", f,
            lambda c, d: ch().pages(c, d, f, offset, limit, include_bots),
            lambda: tr.pages(self.data_dir, f, offset, limit, include_bots),
        )  # fmt: skip

    def sources(self, f: Filter, group_by: str, offset: int, limit: int) -> list[Any]:
        return self._answer(
            "sources", f,
            lambda c, d: ch().sources(c, d, f, group_by, offset, limit),
            lambda: tr.sources(self.data_dir, f, group_by, offset, limit),
        )  # fmt: skip

    def devices(self, f: Filter) -> dict[str, list[Any]]:
        return self._answer(
            "devices", f, lambda c, d: ch().devices(c, d, f), lambda: tr.devices(self.data_dir, f)
        )

    def flow(self, f: Filter, offset: int, limit: int) -> dict[str, list[Any]]:
        return self._answer(
            "flow", f,
            lambda c, d: ch().flow(c, d, f, offset, limit),
            lambda: tr.flow(self.data_dir, f, offset, limit),
        )  # fmt: skip

    def funnel(self, f: Filter, steps: list[str]) -> list[Any]:
        return self._answer(
            "funnel", f,
            lambda c, d: ch().funnel(c, d, f, steps),
            lambda: tr.funnel(self.data_dir, f, steps),
        )  # fmt: skip

    def realtime(self, f: Filter) -> dict[str, Any]:
        # deletions are looked up over the local days of the last 30 minutes, not the period
        now = datetime.now(f.tz)
        start = now - timedelta(seconds=tr.REALTIME_SECONDS + 1)
        window = replace(f, from_date=start.date(), to_date=now.date())
        return self._answer(
            "realtime", window,
            lambda c, d: ch().realtime(c, d, f),
            lambda: tr.realtime(self.data_dir, f),
        )  # fmt: skip

    def custom_events(self, f: Filter, name: str | None, offset: int, limit: int) -> list[Any]:
        return self._answer(
            "custom-events", f,
            lambda c, d: ch().custom_events(c, d, f, name, offset, limit),
            lambda: tr.custom_events(self.data_dir, f, name, offset, limit),
        )  # fmt: skip

    def timeseries(self, f: Filter, metric: str, path: str | None, include_bots: bool) -> list[Any]:
        return self._answer(
            "timeseries", f,
            lambda c, d: ch().timeseries(c, d, f, metric, path, include_bots),
            lambda: tr.timeseries(self.data_dir, f, metric, path, include_bots),
        )  # fmt: skip


def ch() -> Any:
    """trail.clickhouse.reports_tinytrail, imported when ClickHouse answers."""
    from trail.clickhouse import reports_tinytrail

    return reports_tinytrail


def report_source(ctx: Any) -> ReportSource:
    """The report functions of `ctx`'s data directory and storage."""
    config: Any = getattr(ctx, "config", None)
    storage = getattr(config, "storage", "embedded")
    url = config.clickhouse_url if storage == "clickhouse" else ""
    return ReportSource(Path(ctx.data_dir), url)

"""Statistics: which function answers each Pirsch report, the filter it needs, the result cache.

`run` is what `GET /api/v1/statistics/<report>` does once the caller is authorized; `export` is
`GET /api/v1/statistics` (CSV files in a zip); `delete` is `DELETE /api/v1/statistics`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from trail.stats import events, goals, imported, options, reports, sessions, tags
from trail.stats.export import SECTIONS, export_zip
from trail.stats.filters import Filter, FilterError, parse_filter
from trail.stats.scan import replanned
from trail.storage import deletion_log, tombstones
from trail.storage import imported as imported_rows

# Far enough for "everything": 1970 .. 9999.
_OPEN_START = 0
_EPOCH_DAY = date(1970, 1, 2)  # local midnights before it may fall before 1970 UTC
_OPEN_END = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)

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

    data_dir, found = Path(ctx.data_dir), goal_store(ctx.meta).list_goals(site.id)
    got = _from_clickhouse(ctx, "goals", f, found)
    if got is not None:
        return got
    return _cached("goals", data_dir, f, lambda: goals.goal_stats(data_dir, f, found), found)


def _funnel(ctx: Any, f: Filter, site: Any, params: dict[str, list[str]]) -> Any:
    from trail.storage.goals import goal_store

    definition = goal_store(ctx.meta).get_funnel(goals.require_funnel_id(params))
    if definition is None or definition.get("domain_id") != site.id:
        raise FilterError("funnel_id", "no such funnel for this domain")
    got = _from_clickhouse(ctx, "funnel", f, definition)
    if got is not None:
        return got
    data_dir = Path(ctx.data_dir)
    return _cached("funnel", data_dir, f, lambda: goals.funnel(data_dir, f, definition), definition)


def _from_clickhouse(ctx: Any, name: str, f: Filter, definitions: Any) -> Any | None:
    """A context report from ClickHouse with storage = "clickhouse", given the `definitions` it
    read from the meta store; None: the embedded engine answers (trail.clickhouse.backend)."""
    config: Any = getattr(ctx, "config", None)
    if getattr(config, "storage", "embedded") != "clickhouse":
        return None
    from trail.clickhouse import backend

    return backend.answer(config.clickhouse_url, Path(ctx.data_dir), name, f, definitions)


def _cached(name: str, data_dir: Path, f: Filter, compute: Callable[[], Any], stored: Any) -> Any:
    """A report over the result cache, keyed also by the definitions it read as stored (every
    field, ids and modification times included: the answer repeats them)."""
    from trail.stats.cache import cached

    key = orjson.dumps(stored, option=orjson.OPT_SORT_KEYS)
    return replanned(lambda: cached(name, data_dir, f, compute, key))


def _overview(ctx: Any, f: Filter, site: Any, params: dict[str, list[str]]) -> Any:
    data_dir, f = Path(ctx.data_dir), reports.overview_filter(f)
    got = _from_clickhouse(ctx, "overview", f, site)
    out = imported.overview(data_dir, f, reports.overview(data_dir, f) if got is None else got)
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
    data_dir = Path(ctx.data_dir)

    def compute() -> Any:  # the collected answer plus imported statistics (trail.stats.imported)
        return imported.report(name, data_dir, f, lambda g: fn(data_dir, g, site), titles=grouping)

    config: Any = getattr(ctx, "config", None)  # benches and tests pass data_dir alone
    if getattr(config, "storage", "embedded") == "clickhouse":
        from trail.clickhouse import backend, reports_sessions

        if backend.has_sql(name):  # ClickHouse's rows change under closed days: not cached

            def collected(g: Filter) -> Any:  # None: the embedded engine answers (backend)
                asked = reports_sessions.active_dates(g) if name == "active" else g
                got = backend.answer(config.clickhouse_url, data_dir, name, asked, site)
                return replanned(lambda: fn(data_dir, g, site)) if got is None else got

            return imported.report(name, data_dir, f, collected, titles=grouping)
    return replanned(lambda: cached(name, data_dir, f, compute, grouping))


def export(ctx: Any, params: dict[str, list[str]], site: Any) -> bytes:
    """The zip of CSV files for the sections flagged `true` or `1`. Section names such as `os`
    or `country` are flags here, not filters: they are left out of the filter."""
    f = parse({k: v for k, v in params.items() if k not in SECTIONS}, site, True)
    chosen = [
        s for s in SECTIONS
        if any(v.strip().lower() in ("true", "1") for v in params.get(s, []))
    ]  # fmt: skip
    goal_list: list[dict[str, Any]] = []
    if "conversion_goals" in chosen:
        from trail.storage.goals import goal_store

        goal_list = goal_store(ctx.meta).list_goals(site.id)
    data_dir = Path(ctx.data_dir)
    config: Any = getattr(ctx, "config", None)
    answer = None
    if getattr(config, "storage", "embedded") == "clickhouse":
        from trail.clickhouse import backend

        def answer(name: str, g: Filter) -> Any | None:  # as the JSON report's collected rows
            return backend.answer(config.clickhouse_url, data_dir, name, g, None)

    return export_zip(data_dir, f, chosen, goal_list, answer)


# -- DELETE /api/v1/statistics ----------------------------------------------------------------

DELETION_KINDS = tuple(tombstones.KIND_TABLES)
IMPORTED_KINDS = ("", "imported")


def _instant(day: date, tz: ZoneInfo) -> int:
    """Milliseconds of local midnight starting `day`; the ends of time beyond 1970 and 9999."""
    if day <= _EPOCH_DAY:
        return _OPEN_START
    if day >= date.max:
        return _OPEN_END
    return int(datetime.combine(day, time(0), tz).astimezone(UTC).timestamp() * 1000)


def delete(ctx: Any, site: Any, kind: str, first: date | None, last: date | None) -> None:
    """Delete a site's rows of `kind` between two local dates (None = open end).

    Collected rows: recorded as a tombstone (trail.storage.tombstones) before the caller answers:
    queries stop seeing the rows at once and compaction removes them from the files of closed
    days (Pirsch, too, deletes asynchronously). Rows of the range sealed later (a WAL replay
    after a crash) stay deleted. Imported statistics (kind "" or "imported"; "all" is Pirsch's
    "collected statistics, excluding imported ones") are removed from their files at once.
    """
    if kind in IMPORTED_KINDS:
        imported_rows.delete(ctx.data_dir, site.id, first, last)
    try:
        tz = ZoneInfo(getattr(site, "timezone", "") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    start = _instant(first, tz) if first else _OPEN_START
    end = _instant(last + timedelta(days=1), tz) if last and last < date.max else _OPEN_END
    tables = tombstones.KIND_TABLES[kind]
    if tables:
        now = int(datetime.now(UTC).timestamp() * 1000)
        stone = tombstones.Tombstone(tables, start, end, now)
        # The meta store's record first: every node's shipper applies it to ClickHouse
        # (trail.clickhouse.deletions), and copies it into its own tombstones.
        deletion_log.record_range(ctx.meta, site.id, stone)
        tombstones.put(ctx.data_dir, site.id, [stone])

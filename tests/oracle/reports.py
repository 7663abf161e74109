"""Totals, time series, durations and growth (§5); the helpers every list report uses.

Every report takes a `Selection` (tables + query + window) and `now` (UTC ms) and returns what
the endpoint answers. Lists whose order the API defines only up to ties come back as `Page`s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from tests.oracle.filters import Query, local, local_midnight, window
from tests.oracle.selection import Selection, rate

ZERO = {"visitors": 0, "sessions": 0, "views": 0, "bounces": 0}


@dataclass
class Page:
    """One page of a sorted list. `order`: the fields the order is defined by (§5 "ordered by
    visitors desc then field asc"); rows equal on all of them may come in any order, also
    across the page boundary, so `full` holds every row."""

    rows: list[dict[str, Any]]
    full: list[dict[str, Any]]
    order: tuple[str, ...]


def paged(
    rows: list[dict[str, Any]], q: Query, allowed: tuple[str, ...], default: str, tie: str
) -> Page:
    """§5 / API docs: `sort` (one of `allowed`, else `default`) in `direction` (desc by default),
    ties by the primary field ascending; then `offset` and `limit`."""
    field = q.sort if q.sort in allowed else default
    ordered = sorted(rows, key=lambda r: r[tie])
    ordered.sort(key=lambda r: r[field], reverse=q.direction != "asc")
    order = (field,) if field == tie else (field, tie)
    return Page(ordered[q.offset : q.offset + q.limit], ordered, order)


def searched(value: str, q: Query) -> bool:
    """§5 "`search` = case-insensitive contains on the primary field"."""
    return not q.search or q.search.lower() in value.lower()


def growth(current: float, previous: float) -> float:
    """§5 "growth = (cur - prev)/prev; both 0 -> 0; prev 0 -> 1" (scenario 8)."""
    if previous == 0:
        return 0.0 if current == 0 else 1.0
    return (current - previous) / previous


# -- totals and series --------------------------------------------------------------------------


def total(sel: Selection, now: int) -> dict[str, Any]:
    """§5 total: visitors, views, sessions, bounces, bounce_rate; cr; custom metrics."""
    avg, tot = sel.custom_metric()
    m = {**(sel.core() or ZERO), "custom_metric_avg": avg, "custom_metric_total": tot}
    return series_item(m, sel.all_visitors())


def bucket_start(day: date, scale: str) -> date:
    """The local date a bucket starts on; trail/Pirsch weeks start on Monday (Pirsch's
    `toStartOfWeek(..., WeekdayMode)`, trail stats/buckets.py)."""
    if scale == "week":
        return day - timedelta(days=day.weekday())
    if scale == "month":
        return day.replace(day=1)
    if scale == "year":
        return day.replace(month=1, day=1)
    return day


def buckets(q: Query) -> list[tuple[date, date]]:
    """(first local date, first date of the next bucket) of every bucket of the range."""
    assert q.from_date is not None and q.to_date is not None
    out = []
    start = bucket_start(q.from_date, q.scale)
    while start <= q.to_date:
        day = start
        while bucket_start(day, q.scale) == start:
            day += timedelta(days=1)
        out.append((start, day))
        start = day
    return out


def in_bucket(sel: Selection, first: date, after: date) -> Selection:
    """The selection restricted to one bucket (and still to the filter's window)."""
    start = max(local_midnight(first, sel.q.tz), sel.start)
    end = min(local_midnight(after, sel.q.tz), sel.end)
    return sel.at(start, max(start, end))


def labelled(q: Query, first: date) -> dict[str, Any]:
    """§5 visitor: "only the matching day/week/month/year field set, the others null";
    a bucket is printed as its local date at midnight with a Z (API docs examples)."""
    item: dict[str, Any] = {"day": None, "week": None, "month": None, "year": None}
    item[q.scale] = f"{first.isoformat()}T00:00:00Z"
    return item


def visitor(sel: Selection, now: int) -> list[dict[str, Any]]:
    """§5 visitor: per bucket in tz, empty buckets as zeros; cr against the bucket's
    unfiltered visitors (Pirsch FieldCRPeriod joins unique visitors per period)."""
    out = []
    for first, after in buckets(sel.q):
        part = in_bucket(sel, first, after)
        m = part.core() or ZERO
        avg, tot = part.custom_metric()
        item = labelled(sel.q, first)
        item.update(m)
        item["bounce_rate"] = rate(m["bounces"], m["sessions"])
        item["cr"] = rate(m["visitors"], part.all_visitors())
        item["custom_metric_avg"] = avg
        item["custom_metric_total"] = tot
        out.append(item)
    return out


def by_time(
    sel: Selection, part: Callable[[int], tuple[int, ...]], grid: Sequence[tuple[int, ...]]
) -> dict[tuple[int, ...], dict[str, Any]]:
    """§5 "page/hour/minute grouping reads page views": core metrics of the matching page views
    per local time part, every grid point present, plus custom metrics of the matching events
    of that time part."""
    views: dict[tuple[int, ...], list[dict[str, Any]]] = defaultdict(list)
    for pv in sel.matching_views():
        views[part(pv["time"])].append(pv)
    events: dict[tuple[int, ...], list[dict[str, Any]]] = defaultdict(list)
    for ev in sel.matching_events():
        events[part(ev["time"])].append(ev)
    out = {}
    for point in grid:
        m = sel.view_metrics(views[point])
        avg, tot = sel.custom_metric(events[point])
        out[point] = {**m, "custom_metric_avg": avg, "custom_metric_total": tot}
    return out


def series_item(m: dict[str, Any], all_visitors: int) -> dict[str, Any]:
    """The core metrics with bounce_rate and cr, and the custom metrics (total and series)."""
    return {
        "visitors": m["visitors"],
        "views": m["views"],
        "sessions": m["sessions"],
        "bounces": m["bounces"],
        "bounce_rate": rate(m["bounces"], m["sessions"]),
        # §5 "cr = visitors / max(1, unfiltered distinct visitors of the period)": the period
        # is the whole range here (Pirsch divides by the hour's own unfiltered visitors).
        "cr": rate(m["visitors"], all_visitors),
        "custom_metric_avg": m["custom_metric_avg"],
        "custom_metric_total": m["custom_metric_total"],
    }


def hours(sel: Selection, now: int) -> list[dict[str, Any]]:
    """§5 "hours/minutes/weekdays: filled 0..23, 0..59" by local time in tz."""
    grid = [(h,) for h in range(24)]
    got = by_time(sel, lambda t: (local(t, sel.q.tz).hour,), grid)
    return [{"hour": h, **series_item(got[(h,)], sel.all_visitors())} for (h,) in grid]


def minutes(sel: Selection, now: int) -> list[dict[str, Any]]:
    grid = [(m,) for m in range(60)]
    got = by_time(sel, lambda t: (local(t, sel.q.tz).minute,), grid)
    return [{"minute": m, **series_item(got[(m,)], sel.all_visitors())} for (m,) in grid]


def weekdays(sel: Selection, now: int) -> list[dict[str, Any]]:
    """§5 weekdays: "0..6 (Monday = 0)", by hour (the API: "grouped by weekday and the full
    hour"): 7 x 24 entries of visitors, views, sessions, bounces."""
    grid = [(d, h) for d in range(7) for h in range(24)]

    def part(t: int) -> tuple[int, ...]:
        when = local(t, sel.q.tz)
        return (when.weekday(), when.hour)

    got = by_time(sel, part, grid)
    return [{"weekday": d, "hour": h, **{k: got[(d, h)][k] for k in ZERO}} for (d, h) in grid]


# -- durations ----------------------------------------------------------------------------------


def scaled_averages(
    sel: Selection, per_day: dict[date, float], **extra: Any
) -> list[dict[str, Any]]:
    """Daily averages -> one value per scale bucket: §2 "other scales average the daily values",
    rounded half to even (§2 "banker's rounding in ClickHouse"); days without a value do not
    count; a bucket without any is 0."""
    out = []
    for first, after in buckets(sel.q):
        values = [v for d, v in sorted(per_day.items()) if first <= d < after]
        item = labelled(sel.q, first)
        item.update(extra)
        item["average_time_spent_seconds"] = round(sum(values) / len(values)) if values else 0
        out.append(item)
    return out


def days(sel: Selection) -> list[date]:
    assert sel.q.from_date is not None and sel.q.to_date is not None
    n = (sel.q.to_date - sel.q.from_date).days + 1
    return [sel.q.from_date + timedelta(days=i) for i in range(n)]


def session_duration(sel: Selection, now: int) -> list[dict[str, Any]]:
    """§2 "Session duration: per day, sum(duration*sign)/sum(sign) excluding duration 0":
    the live sessions of each day (final state that day) that pass the filter."""
    per_day = {}
    for day in days(sel):
        part = in_bucket(sel, day, day + timedelta(days=1))
        durations = [s["duration_seconds"] for s in part.live_sessions()]
        durations = [d for d in durations if d > 0]
        if durations:
            per_day[day] = sum(durations) / len(durations)
    return scaled_averages(sel, per_day)


def page_duration(sel: Selection, now: int) -> list[dict[str, Any]]:
    """§2 "Time on page" of the page views that pass the filter, zeros excluded, averaged per
    local day of the view, then per scale bucket. `path` names the page when the filter is
    one `path=` value (trail's answer shape; the API docs show the field, not its rule)."""
    spent: dict[date, list[int]] = defaultdict(list)
    for pv, seconds in sel.time_on_page():
        if seconds > 0 and sel.view_match(pv):
            spent[local(pv["time"], sel.q.tz).date()].append(seconds)
    per_day = {d: sum(v) / len(v) for d, v in spent.items()}
    c = sel.q.fields.get("path")
    path = c.equal[0] if c and len(c.equal) == 1 and not c.not_equal else ""
    return scaled_averages(sel, per_day, path=path)


# -- growth ---------------------------------------------------------------------------------------


def previous(sel: Selection, now: int) -> Selection:
    """§5 growth: "a range compares with the previous window of equal length ending the day
    before `from`; a single day compares with the same day 7 days earlier (today: up to the
    current time)". from_time/to_time move with the day (trail stats/reports.py
    `previous_rows`)."""
    q = sel.q
    assert q.from_date is not None and q.to_date is not None
    n = (q.to_date - q.from_date).days + 1
    shift = timedelta(days=7 if n == 1 else n)
    before = replace(q, from_date=q.from_date - shift, to_date=q.to_date - shift)
    start, end = window(before)
    if n == 1 and sel.start <= now < sel.end:
        end = now - 7 * 24 * 3600 * 1000
    return sel.at(start, end, before)


def time_spent(sel: Selection) -> int:
    """§5 "time_spent_growth compares sums (session durations; time on page with a path filter;
    event durations with an event filter)" (Pirsch visitors.go `Growth`: an event name first,
    then a `path` filter; pattern and tags select sessions)."""
    if "event" in sel.q.fields:
        return sum(ev["duration_seconds"] for ev in sel.matching_events())
    if "path" in sel.q.fields:
        return sum(s for pv, s in sel.time_on_page() if s > 0 and sel.view_match(pv))
    return sum(s["duration_seconds"] for s in sel.live_sessions())


def growth_report(sel: Selection, now: int) -> dict[str, Any]:
    cur, prev = total(sel, now), total(previous(sel, now), now)
    return {
        "visitors_growth": growth(cur["visitors"], prev["visitors"]),
        "views_growth": growth(cur["views"], prev["views"]),
        "sessions_growth": growth(cur["sessions"], prev["sessions"]),
        # §5 "bounces_growth is the growth of the bounce *rate*"
        "bounces_growth": growth(cur["bounce_rate"], prev["bounce_rate"]),
        "time_spent_growth": growth(time_spent(sel), time_spent(previous(sel, now))),
        "cr_growth": growth(cur["cr"], prev["cr"]),
        "custom_metric_avg_growth": growth(cur["custom_metric_avg"], prev["custom_metric_avg"]),
        "custom_metric_total_growth": growth(
            cur["custom_metric_total"], prev["custom_metric_total"]
        ),
    }


def overview(sel: Selection, now: int) -> dict[str, Any]:
    """The API's overview: totals, their growth and the daily series (`member` is not
    statistics and is not modelled)."""
    cur, prev = total(sel, now), total(previous(sel, now), now)
    visitors_growth = growth(cur["visitors"], prev["visitors"])
    return {
        "visitors": cur["visitors"],
        "views": cur["views"],
        "visitors_growth": visitors_growth,
        "visitor_growth": visitors_growth,  # both spellings are in the API docs
        "views_growth": growth(cur["views"], prev["views"]),
        "visitors_time_series": visitor(
            sel.at(sel.start, sel.end, replace(sel.q, scale="day")), now
        ),
    }

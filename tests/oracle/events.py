"""Event reports: events, event/meta, event/list, event/page (§5 "events").

Event rows are filtered directly: the event name, metadata and metadata-key conditions, the
session dimensions, and the page-level conditions read on the event (its path; tags in its
metadata: see `Query.event_page_match`). `views` are the views of the sessions that fired the
event (§5 "event fields read events with the session's views and bounces joined"), each session
counted once per group (trail stats/events.py; Pirsch sums them per event row).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import Any

from tests.oracle.pages import PAGE_SORTS, average_time_on_page, latest_title
from tests.oracle.reports import Page, paged, searched
from tests.oracle.selection import Selection, key, rate

EVENT_SORTS = ("name", "count", "visitors", "views", "cr", "average_duration_seconds")


def session_views(sel: Selection, events: list[dict[str, Any]]) -> int:
    """The live views (final state in the range) of the distinct sessions of `events`."""
    total = 0
    for k in {key(ev) for ev in events}:
        state = sel.live(k)
        total += state["page_views"] if state else 0
    return total


def event_stats(
    sel: Selection, group: Callable[[dict[str, Any]], Hashable]
) -> dict[Any, dict[str, Any]]:
    """count (rows), visitors, views, cr, average_duration_seconds per group of the matching
    events (search: the event name)."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ev in sel.matching_events():
        if searched(ev["event_name"], sel.q):
            groups[group(ev)].append(ev)
    out = {}
    for g, evs in groups.items():
        visitors = len({ev["visitor_id"] for ev in evs})
        durations = [ev["duration_seconds"] for ev in evs]
        out[g] = {
            "count": len(evs),
            "visitors": visitors,
            "views": session_views(sel, evs),
            "cr": rate(visitors, sel.all_visitors()),
            # §5 "event average_duration_seconds (truncated)"
            "average_duration_seconds": int(sum(durations) / len(durations)),
            "_events": evs,
        }
    return out


def events(sel: Selection, now: int) -> Page:
    """One entry per event name with its metadata keys."""
    rows = []
    for name, s in event_stats(sel, lambda ev: ev["event_name"]).items():
        keys = sorted({k for ev in s.pop("_events") for k in ev["event_meta_keys"]})
        rows.append({"name": name, **s, "meta_keys": keys})
    return paged(rows, sel.q, EVENT_SORTS, "visitors", "name")


def meta_value(ev: dict[str, Any], meta_key: str) -> str:
    keys = ev["event_meta_keys"]
    return ev["event_meta_values"][keys.index(meta_key)] if meta_key in keys else ""


def event_meta(sel: Selection, now: int) -> Page:
    """One event's values of one metadata key (`event` and `event_meta_key` required; the key
    is also a condition: events without it are not read)."""
    meta_key = sel.q.event_meta_key
    assert meta_key and "event" in sel.q.fields, "event/meta needs event and event_meta_key"
    rows = []
    groups = event_stats(sel, lambda ev: (ev["event_name"], meta_value(ev, meta_key)))
    for (name, value), s in groups.items():
        s.pop("_events")
        rows.append({"name": name, **s, "meta_value": value})
    return paged(rows, sel.q, (*EVENT_SORTS, "meta_value"), "visitors", "meta_value")


def event_list(sel: Selection, now: int) -> Page:
    """§5 "event/list groups by name + full meta map, ordered by count" (then visitors, name and
    the metadata, so that pages are stable)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for ev in sel.matching_events():
        if searched(ev["event_name"], sel.q):
            meta = (tuple(ev["event_meta_keys"]), tuple(ev["event_meta_values"]))
            groups[(ev["event_name"], meta)].append(ev)
    ordered = sorted(groups.items(), key=lambda g: (-len(g[1]),
                     -len({ev["visitor_id"] for ev in g[1]}), g[0][0], g[0][1]))  # fmt: skip
    rows = [
        {
            "name": name,
            "meta": dict(zip(*meta, strict=True)),
            "visitors": len({ev["visitor_id"] for ev in evs}),
            "count": len(evs),
        }
        for (name, meta), evs in ordered
    ]
    q = sel.q
    return Page(rows[q.offset : q.offset + q.limit], rows, ("count", "visitors", "name", "meta"))


def event_page(sel: Selection, now: int) -> Page:
    """The pages an event (`event` required) was fired on, with page-style metrics: visitors and
    sessions of the matching events on the page; views = the page's views in those sessions;
    bounces = those sessions that bounced; relative values against the unfiltered totals."""
    assert "event" in sel.q.fields, "event/page needs event"
    by_path: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in sel.matching_events():
        if searched(ev["path"], sel.q):
            by_path[ev["path"]].append(ev)
    times = average_time_on_page(sel) if sel.q.include_avg_time_on_page else {}
    rows = []
    for path, evs in by_path.items():
        sessions = {key(ev) for ev in evs}
        views = len([pv for pv in sel.page_views if pv["path"] == path and key(pv) in sessions])
        visitors = len({ev["visitor_id"] for ev in evs})
        bounces = len([k for k in sessions if sel.bounced(k)])
        rows.append({
            "path": path,
            "title": latest_title(evs),
            "visitors": visitors,
            "views": views,
            "sessions": len(sessions),
            "bounces": bounces,
            "relative_visitors": rate(visitors, sel.all_visitors()),
            "relative_views": rate(views, sel.all_views()),
            "bounce_rate": rate(bounces, len(sessions)),
            "average_time_spent_seconds": times.get(path, 0),
        })  # fmt: skip
    return paged(rows, sel.q, PAGE_SORTS, "visitors", "path")

"""Page reports (pages, entry and exit pages, tags, active visitors) and the session reports."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from tests.oracle.reports import Page, paged, searched
from tests.oracle.selection import Selection, key, rate
from tests.oracle.sessions import DIM_NAMES

PAGE_SORTS = ("path", "title", "visitors", "views", "sessions", "bounces", "relative_visitors",
              "relative_views", "bounce_rate", "average_time_spent_seconds")  # fmt: skip


def average_time_on_page(sel: Selection, path_ok: Any = None) -> dict[str, int]:
    """Per path: §2 "zeros excluded (exit pages, bounces contribute nothing); average =
    round(avg) (banker's rounding in ClickHouse)", over the page views that pass the filter."""
    spent: dict[str, list[int]] = defaultdict(list)
    for pv, seconds in sel.time_on_page():
        if seconds > 0 and sel.view_match(pv) and (path_ok is None or path_ok(pv["path"])):
            spent[pv["path"]].append(seconds)
    return {path: round(sum(v) / len(v)) for path, v in spent.items()}


def latest_title(rows: list[dict[str, Any]], column: str = "title") -> str:
    """The title of the latest row, rows of the same time: the greatest title (trail: "the
    latest view's", ties broken by value so that row order does not matter; Pirsch groups by
    path and, with titles on, title)."""
    return max(rows, key=lambda r: (r["time"], r[column]))[column]


def page(sel: Selection, now: int) -> Page:
    """§5 page: per path, visitors/sessions/views of the page views that pass the filter;
    bounces = "sessions containing the page that bounced"; relative values against the
    unfiltered visitors and views; average_time_spent_seconds with include_avg_time_on_page."""
    q = sel.q
    views: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pv in sel.matching_views():
        if searched(pv["path"], q):
            views[pv["path"]].append(pv)
    times = (
        average_time_on_page(sel, lambda p: searched(p, q)) if q.include_avg_time_on_page else {}
    )
    rows = []
    for path, pvs in views.items():
        m = sel.view_metrics(pvs)
        rows.append({
            "path": path,
            "title": latest_title(pvs),
            "visitors": m["visitors"],
            "views": m["views"],
            "sessions": m["sessions"],
            "bounces": m["bounces"],
            "relative_visitors": rate(m["visitors"], sel.all_visitors()),
            "relative_views": rate(m["views"], sel.all_views()),
            "bounce_rate": rate(m["bounces"], m["sessions"]),
            "average_time_spent_seconds": times.get(path, 0),
        })  # fmt: skip
    return paged(rows, q, PAGE_SORTS, "visitors", "path")


def entry_exit(kind: str) -> Any:
    """§5 "entry/exit: entries/exits from entry_path/exit_path counts; their visitors and
    sessions are the page's totals from page views"; entry_rate/exit_rate = entries or exits /
    unfiltered sessions. Entries are the live sessions (final state in the range) that pass the
    filter, by their entry (exit) page. "The page's totals" are its page views with the filter's
    page conditions (path, pattern, tags, entry/exit path, search) left out: Pirsch pages.go
    `totalVisitorsSessions` clears exactly those before counting the listed paths."""
    count, rate_name = ("entries", "entry_rate") if kind == "entry" else ("exits", "exit_rate")

    def report(sel: Selection, now: int) -> Page:
        q = sel.q
        by_path: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for state in sel.live_sessions():
            if searched(state[f"{kind}_path"], q):
                by_path[state[f"{kind}_path"]].append(state)
        views: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for pv in sel.page_views:
            if q.dims_match(pv) and sel.has_event(key(pv)):
                views[pv["path"]].append(pv)
        times = {}
        if kind == "entry" and q.include_avg_time_on_page:
            times = average_time_on_page(sel)
        rows = []
        for path, states in by_path.items():
            m = sel.view_metrics(views[path])
            row = {
                "path": path,
                "title": latest_title(states, f"{kind}_title"),
                "visitors": m["visitors"],
                "sessions": m["sessions"],
                count: len(states),
                rate_name: rate(len(states), sel.all_sessions()),
            }
            if kind == "entry":
                row["average_time_spent_seconds"] = times.get(path, 0)
            rows.append(row)
        allowed = tuple(rows[0]) if rows else ()
        return paged(rows, q, allowed, count, "path")

    return report


# -- tags ---------------------------------------------------------------------------------------

TAG_SORTS = ("key", "value", "visitors", "views", "relative_visitors", "relative_views")


def tag_rows(sel: Selection, only: str | None) -> Page:
    """API "Tags": per key (or, for one key, per value) the visitors and views of the page
    views that pass the filter and carry it; a view counts once for each of its tags."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for pv in sel.matching_views():
        for k, v in zip(pv["tag_keys"], pv["tag_values"], strict=True):
            if only is None:
                groups[(k,)].append(pv)
            elif k == only:
                groups[(k, v)].append(pv)
    names = ("key",) if only is None else ("key", "value")
    rows = []
    for group, pvs in groups.items():
        if not searched(group[-1], sel.q):
            continue
        visitors = len({pv["visitor_id"] for pv in pvs})
        rows.append({
            **dict(zip(names, group, strict=True)),
            "visitors": visitors,
            "views": len(pvs),
            "relative_visitors": rate(visitors, sel.all_visitors()),
            "relative_views": rate(len(pvs), sel.all_views()),
        })  # fmt: skip
    # Only the fields the answer has can be sorted by (`value` is not one of /tags).
    allowed = tuple(f for f in TAG_SORTS if f != "value" or only is not None)
    return paged(rows, sel.q, allowed, "visitors", names[-1])


def tags(sel: Selection, now: int) -> Page:
    return tag_rows(sel, None)


def tag_details(sel: Selection, now: int) -> Page:
    """With `tag`: per value of that tag (tag_rows). Without (the Go SDK's `Tags()`): per
    (key, value) pair of every tag, same fields; `search` on the value; ordered by `sort`
    (default visitors desc), ties by key then value ascending."""
    if sel.q.tag:
        return tag_rows(sel, sel.q.tag)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for pv in sel.matching_views():
        for k, v in zip(pv["tag_keys"], pv["tag_values"], strict=True):
            groups[(k, v)].append(pv)
    rows: list[dict[str, Any]] = []
    for (k, v), pvs in groups.items():
        if not searched(v, sel.q):
            continue
        visitors = len({pv["visitor_id"] for pv in pvs})
        rows.append({
            "key": k,
            "value": v,
            "visitors": visitors,
            "views": len(pvs),
            "relative_visitors": rate(visitors, sel.all_visitors()),
            "relative_views": rate(len(pvs), sel.all_views()),
        })  # fmt: skip
    field = sel.q.sort if sel.q.sort in TAG_SORTS else "visitors"
    ordered = sorted(rows, key=lambda r: (r["key"], r["value"]))
    ordered.sort(key=lambda r: r[field], reverse=sel.q.direction != "asc")
    order = tuple(dict.fromkeys((field, "key", "value")))
    return Page(ordered[sel.q.offset : sel.q.offset + sel.q.limit], ordered, order)


# -- active visitors -----------------------------------------------------------------------------


def active(sel: Selection, now: int) -> dict[str, Any]:
    """§5 "active: last `start` seconds (default 600, max 3600): visitors per path plus total
    (and per country)", with the filter applied to all three."""
    seconds = sel.q.start or 600
    part = sel.at(now - seconds * 1000, now + 1000)
    views: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pv in part.matching_views():
        views[pv["path"]].append(pv)
    stats: list[dict[str, Any]] = [
        {"path": p, "title": latest_title(v), "visitors": len({pv["visitor_id"] for pv in v})}
        for p, v in views.items()
    ]
    stats.sort(key=lambda r: r["path"])
    stats.sort(key=lambda r: r["visitors"], reverse=True)
    m = part.core()
    total = m["visitors"] if m else 0
    countries = [
        {"visitors": c["visitors"], "relative_visitors": rate(c["visitors"], total),
         "country_code": code}
        for code, c in part.core_by(lambda r: r["country_code"]).items()
    ]  # fmt: skip
    countries.sort(key=lambda r: r["country_code"])
    countries.sort(key=lambda r: r["visitors"], reverse=True)
    return {"stats": stats, "countries": countries, "visitors": total}


# -- sessions ------------------------------------------------------------------------------------

LIST_DIMS = [d for d in DIM_NAMES if d != "hostname"]
SESSION_FIELDS = ["visitor_id", "session_id", "time", "start", "duration_seconds", "entry_path",
                  "exit_path", "page_views", "is_bounce", "entry_title", "exit_title",
                  *LIST_DIMS, "extended"]  # fmt: skip


def stamp(time_ms: int) -> str:
    """API docs: "2024-04-10T15:16:56Z" (whole seconds, UTC)."""
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def session_list(sel: Selection, now: int) -> Page:
    """API "Sessions": the sessions for the filter, latest first, each as its state in the range
    (the live one: its final state). `search` looks at the exit path (trail's choice; the API
    does not list session/list among the searchable reports)."""
    rows = []
    for state in sel.live_sessions():
        if not searched(state["exit_path"], sel.q):
            continue
        row = {f: state[f] for f in SESSION_FIELDS}
        row["time"], row["start"] = stamp(state["time"]), stamp(state["start"])
        row["referrer_icon"] = ""
        row["_time_ms"] = state["time"]
        rows.append(row)
    rows.sort(key=lambda r: r["_time_ms"], reverse=True)
    for r in rows:
        del r["_time_ms"]
    q = sel.q
    return Page(rows[q.offset : q.offset + q.limit], rows, ("time",))


def session_details(sel: Selection, now: int) -> list[dict[str, Any]]:
    """API "Session Breakdown"; §5 "details merge page views and events chronologically, each
    page view's duration = rounded gap to the next, last = 0". Only `visitor_id`, `session_id`
    and the range apply."""
    k = (sel.q.visitor_id, int(sel.q.session_id or 0))
    views = sorted((pv for pv in sel.page_views if key(pv) == k), key=lambda pv: pv["time"])
    items: list[tuple[int, int, dict[str, Any]]] = []
    for i, pv in enumerate(views):
        gap = round((views[i + 1]["time"] - pv["time"]) / 1000) if i + 1 < len(views) else 0
        item = {f: pv[f] for f in ("visitor_id", "session_id", "path", "title", *LIST_DIMS,
                                   "tag_keys", "tag_values")}  # fmt: skip
        item.update(time=stamp(pv["time"]), duration_seconds=gap, referrer_icon="")
        items.append((pv["time"], 0, {"page_view": item, "event": None}))
    for ev in sel.events:
        if key(ev) != k:
            continue
        item = {f: ev[f] for f in ("visitor_id", "session_id", "duration_seconds", "path",
                                   "title", *LIST_DIMS)}  # fmt: skip
        item.update(time=stamp(ev["time"]), name=ev["event_name"], referrer_icon="",
                    meta_keys=ev["event_meta_keys"], meta_values=ev["event_meta_values"])  # fmt: skip
        items.append((ev["time"], 1, {"page_view": None, "event": item}))
    items.sort(key=lambda t: (t[0], t[1]))  # a page view before an event of the same time
    return [item for _, _, item in items]

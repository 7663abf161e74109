"""Which rows a report reads for a filter, and the four core metrics over them (§1, §5).

Two ways to count, as §5 "Which rows" says:

- session reads (no page-level filter): the session rows (with their signs) whose `time` is in
  the window. §1: visitors = distinct visitor_id, views = sum(page_views*sign), bounces =
  sum(is_bounce*sign). A session's states cancel pairwise, so views and bounces come from its
  final state, on the day of that state, while every state shows its visitor ("a session that
  crosses midnight counts as a visitor on both days; its views and bounces land on the day of
  its final time").
  Deliberate difference from Pirsch (trail: stats/metrics.py): sessions = sum(sign), the
  sessions whose final state lies in the window, counted there once like their views and
  bounces; Pirsch counts distinct (visitor_id, session_id) among the rows and drops groups
  with sum(sign) <= 0. trail keeps every group that shows a visitor.
- page-view reads (a path, pattern or tag filter; page/hour/minute groupings): the page views
  in the window that match. visitors and sessions are distinct ids, views the number of rows,
  bounces the sessions among them that bounced (Pirsch: `uniqIf((visitor_id, session_id),
  bounces = 1)` over the joined, collapsed session, i.e. its final state in the window).

Conditions on sessions (entry/exit path, events, pages) are answered per session:
- entry_path: the entry page, the same in every state of a session;
- exit_path: the exit page of the session's state in the window that is live (its final
  state); a session whose final state lies outside the window has no exit in it (trail:
  stats/sources.py `live_keys`; Pirsch: a join on sessions `HAVING sum(sign) > 0`);
- events: the session has a matching event in the window (§5 "Filtering by an event returns
  the stats of whole sessions that contain the event");
- pages (on session reads): the session has a matching page view in the window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import Any

from tests.oracle.filters import Query
from tests.oracle.sessions import Tables

Key = tuple[str, int]  # (visitor_id, session_id)
EMPTY_EVENT: dict[str, Any] = {"event_name": "", "event_meta_keys": [], "event_meta_values": []}


def key(row: dict[str, Any]) -> Key:
    return (row["visitor_id"], row["session_id"])


def _in_order(pv: dict[str, Any]) -> tuple[Any, ...]:
    return (pv["time"], pv["duration_seconds"], pv["path"], pv["title"], pv["tag_keys"],
            pv["tag_values"])  # fmt: skip


class Selection:
    """One site's tables seen through one query and one window [start, end) of UTC ms."""

    def __init__(self, tables: Tables, q: Query, start: int, end: int) -> None:
        self.tables = tables
        self.q = q
        self.start = start
        self.end = end
        self.final: dict[Key, dict[str, Any]] = {}
        for row in tables.sessions:  # rows are in the order they were written
            if row["sign"] == 1:
                self.final[key(row)] = row
        self.session_rows = [r for r in tables.sessions if self.inside(r)]
        self.page_views = [r for r in tables.page_views if self.inside(r)]
        self.events = [r for r in tables.events if self.inside(r)]

    def inside(self, row: dict[str, Any]) -> bool:
        return self.start <= row["time"] < self.end

    def at(self, start: int, end: int, q: Query | None = None) -> Selection:
        """The same tables through another window (and query)."""
        return Selection(self.tables, q or self.q, start, end)

    # -- sessions ----------------------------------------------------------------------------

    def live(self, k: Key) -> dict[str, Any] | None:
        """The session's final state, if it lies in the window (sum(sign) over its rows = 1)."""
        state = self.final[k]
        return state if self.inside(state) else None

    def bounced(self, k: Key) -> bool:
        state = self.live(k)
        return bool(state and state["is_bounce"])

    def entry_exit_match(self, k: Key) -> bool:
        q = self.q
        if "entry_path" in q.fields and not q.fields["entry_path"].matches(
            self.final[k]["entry_path"]
        ):
            return False
        if "exit_path" in q.fields:
            state = self.live(k)
            if state is None or not q.fields["exit_path"].matches(state["exit_path"]):
                return False
        return True

    def has_event(self, k: Key) -> bool:
        """Whether the session passes the event conditions (true when there are none)."""
        if not self.q.event_level:
            return True
        own = [e for e in self.events if key(e) == k]
        if self.q.event_negated and not own:
            own = [EMPTY_EVENT]  # Pirsch's LEFT JOIN: no event reads as one empty event
        return any(self.q.event_match(e) for e in own)

    def has_page(self, k: Key) -> bool:
        """Whether the session has a page view in the window that passes the page conditions."""
        return any(key(pv) == k and self.q.page_match(pv) for pv in self.page_views)

    def session_match(self, row: dict[str, Any]) -> bool:
        """A session row passes: its dimensions, its session's entry/exit, events and (only
        when the filter has page-level conditions) pages."""
        k = key(row)
        if not self.q.dims_match(row) or not self.entry_exit_match(k) or not self.has_event(k):
            return False
        return not self.q.page_level or self.has_page(k)

    def view_match(self, pv: dict[str, Any]) -> bool:
        k = key(pv)
        return (
            self.q.dims_match(pv)
            and self.q.page_match(pv)
            and self.entry_exit_match(k)
            and self.has_event(k)
        )

    def event_match(self, ev: dict[str, Any]) -> bool:
        """An event row for the event reports: event, page-level and session conditions."""
        return (
            self.q.dims_match(ev)
            and self.q.event_match(ev)
            and self.q.event_page_match(ev)
            and self.entry_exit_match(key(ev))
        )

    def matching_session_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.session_rows if self.session_match(r)]

    def matching_views(self) -> list[dict[str, Any]]:
        return [pv for pv in self.page_views if self.view_match(pv)]

    def matching_events(self) -> list[dict[str, Any]]:
        return [ev for ev in self.events if self.event_match(ev)]

    def live_sessions(self) -> list[dict[str, Any]]:
        """Final states in the window of the sessions that pass (entries, exits, durations,
        session list: the things only a whole session has)."""
        return [s for s in self.final.values() if self.inside(s) and self.session_match(s)]

    # -- metrics -----------------------------------------------------------------------------

    def core(self) -> dict[str, int] | None:
        """visitors, sessions, views, bounces for the filter, read as §5 says."""
        if self.q.page_level:
            return self.view_metrics(self.matching_views())
        return self.session_metrics(self.matching_session_rows())

    def core_by(self, group: Callable[[dict[str, Any]], Hashable]) -> dict[Any, dict[str, int]]:
        """core() per value of `group` (a function of a row's session-level columns)."""
        if self.q.page_level:
            views: dict[Any, list[dict[str, Any]]] = defaultdict(list)
            for pv in self.matching_views():
                views[group(pv)].append(pv)
            return {g: self.view_metrics(rows) for g, rows in views.items()}
        rows_by: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for row in self.matching_session_rows():
            rows_by[group(row)].append(row)
        out = {}
        for g, rows in rows_by.items():
            m = self.session_metrics(rows)
            if m is not None:
                out[g] = m
        return out

    @staticmethod
    def session_metrics(rows: list[dict[str, Any]]) -> dict[str, int] | None:
        """§1 over session rows (sessions: see the module's note); None without rows."""
        if not rows:
            return None
        return {
            "visitors": len({r["visitor_id"] for r in rows}),
            "sessions": sum(r["sign"] for r in rows),
            "views": sum(r["page_views"] * r["sign"] for r in rows),
            "bounces": sum(int(r["is_bounce"]) * r["sign"] for r in rows),
        }

    def view_metrics(self, views: list[dict[str, Any]]) -> dict[str, int]:
        sessions = {key(pv) for pv in views}
        return {
            "visitors": len({pv["visitor_id"] for pv in views}),
            "sessions": len(sessions),
            "views": len(views),
            "bounces": len([k for k in sessions if self.bounced(k)]),
        }

    # -- denominators: §5 "only site and date range apply" -------------------------------------

    def all_visitors(self) -> int:
        return len({r["visitor_id"] for r in self.session_rows})

    def all_sessions(self) -> int:
        return sum(r["sign"] for r in self.session_rows)

    def all_views(self) -> int:
        return sum(r["page_views"] * r["sign"] for r in self.session_rows)

    # -- times -------------------------------------------------------------------------------

    def time_on_page(self) -> list[tuple[dict[str, Any], int]]:
        """§2 "Time on page: for each page view, the duration_seconds of the next page view in
        the same session (ordered by time)"; the next view may be of any page, but only views
        in the window are read; views of one instant follow each other by their duration,
        path, title and tags (trail's order, trail.stats.kernels.TIE_ORDER, written out here).
        Every page view in the window with its time on page (0 for the last of its session)."""
        by_session: dict[Key, list[dict[str, Any]]] = defaultdict(list)
        for pv in self.page_views:
            by_session[key(pv)].append(pv)
        out = []
        for views in by_session.values():
            views.sort(key=_in_order)
            for i, pv in enumerate(views):
                out.append((pv, views[i + 1]["duration_seconds"] if i + 1 < len(views) else 0))
        return out

    def custom_metric(self, events: list[dict[str, Any]] | None = None) -> tuple[float, float]:
        """§5 "custom_metric_avg/total need an event name plus custom_metric_key and
        custom_metric_type (integer|float parse of the meta value)": over the matching events
        (or `events`, a part of them), values that do not parse are left out (trail: a failed
        cast is null). (avg, total); (0, 0) without the three parameters or values."""
        q = self.q
        if not ("event" in q.fields and q.custom_metric_key and q.custom_metric_type):
            return 0.0, 0.0
        values: list[float] = []
        for ev in self.matching_events() if events is None else events:
            if q.custom_metric_key not in ev["event_meta_keys"]:
                continue
            raw = ev["event_meta_values"][ev["event_meta_keys"].index(q.custom_metric_key)]
            try:
                values.append(int(raw) if q.custom_metric_type == "integer" else float(raw))
            except ValueError:
                continue
        if not values:
            return 0.0, 0.0
        return sum(values) / len(values), float(sum(values))


def rate(numerator: float, denominator: float) -> float:
    """§5 "bounce_rate = bounces / sessions (0 sessions treated as 1)"; the same for relative
    values and cr ("visitors / max(1, ...)")."""
    return numerator / max(denominator, 1)

"""Which rows a report reads, as ClickHouse SQL: trail.stats.sources.Rows, condition for condition.

A filter is compiled once into WHERE clauses over the four tables a report reads, with every
value a bound parameter (`{p0:String}`, sent apart from the SQL text); column names come from
trail's schema, never from the request. The conditions keep their meaning from
trail.stats.sources and trail.stats.predicates:

- dimensions, platform, visitor and session id: row conditions on every table that has the
  column (equal on every row of a session);
- entry path: the session has a state in the window that matches; exit path: its live state
  in the window matches (`sum(sign) > 0` over the matching rows);
- page conditions (path, pattern, tags): the session has a matching page view in the window;
  events are tested on their own path and metadata;
- event conditions (name, metadata): the session has a matching event in the window; `event=!x`
  also passes sessions without events.

Which visitors a window sees (any state in it, trail.stats.metrics) is read from
`session_states`, which merges never collapse; sums over `sign` from `sessions`, where a merge
drops a +1/-1 pair and leaves every sum as it was. With buckets (the visitor series), page and
event conditions hold inside each bucket, as trail.stats.sources.Rows.by_bucket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trail.stats.filters import FieldFilter, Filter
from trail.stats.predicates import empty_event_matches
from trail.storage.schema import TABLES

KEYS = "visitor_id, session_id"
_TIME = "DateTime64(3, 'UTC')"
_STRING_COLUMNS = {
    table: {name for name, kind in columns.items() if str(kind) == "String"}
    for table, columns in TABLES.items()
}
_PAGE_ONLY = {"path", "title"}
_PLATFORMS = {"desktop": "desktop", "mobile": "mobile", "unknown": "(NOT desktop AND NOT mobile)"}

# Local date of a row -> the start of its bucket (weeks start on Monday, trail.stats.buckets).
BUCKETS = {
    "day": "toDate(time, {tz:String})",
    "week": "toMonday(toDate(time, {tz:String}))",
    "month": "toStartOfMonth(toDate(time, {tz:String}))",
    "year": "toStartOfYear(toDate(time, {tz:String}))",
}


class Unsupported(ValueError):
    """A filter this module does not compile; `field` names the parameter."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: not compiled to ClickHouse SQL yet")
        self.field = field


@dataclass
class Params:
    """The bound parameters of one query, named p0, p1, ..."""

    values: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any, kind: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{kind}}}"


def _all(parts: list[str]) -> str:
    return " AND ".join(f"({p})" for p in parts) or "1"


def field_sql(p: Params, value: str, ff: FieldFilter) -> str:
    """Positives (eq, contains) OR together, negatives AND (trail.stats.predicates.field_expr);
    contains is case-insensitive: the filter's values are lower case already."""
    lowered = f"lowerUTF8({value})"
    positives = [f"{value} = {p.bind(v, 'String')}" for v in ff.eq]
    positives += [f"position({lowered}, {p.bind(v, 'String')}) > 0" for v in ff.contains]
    parts = [f"{value} != {p.bind(v, 'String')}" for v in ff.neq]
    parts += [f"position({lowered}, {p.bind(v, 'String')}) = 0" for v in ff.not_contains]
    if positives:
        parts.append(" OR ".join(positives))
    return _all(parts)


def pair_value(p: Params, keys: str, values: str, key: str) -> str:
    """The value of `key` in parallel key/value arrays, "" when absent (the first one)."""
    k = p.bind(key, "String")
    return f"if(has({keys}, {k}), arrayElement({values}, indexOf({keys}, {k})), '')"


@dataclass
class Rows:
    """One site, one window, one filter: WHERE clauses of the rows reports start from, over
    `database`. With `bucket` (a scale of BUCKETS), page and event conditions hold per bucket."""

    f: Filter
    database: str
    p: Params = field(default_factory=Params)
    bucket: str | None = None
    start: Any = None
    end: Any = None

    def __post_init__(self) -> None:
        if self.start is None:
            self.start, self.end = self.f.window()
        self.p.values["tz"] = self.f.tz.key
        self._window = (
            f"site_id = {self.p.bind(self.f.site_id, 'String')} "
            f"AND time >= {self.p.bind(self.start, _TIME)} AND time < {self.p.bind(self.end, _TIME)}"
        )

    def unfiltered(self) -> Rows:
        """The same site and window without other conditions, sharing the parameters."""
        return Rows(self.f.without_dims(), self.database, self.p, None, self.start, self.end)

    def table(self, name: str) -> str:
        return f"{self.database}.{name}"

    @property
    def window(self) -> str:
        return self._window

    # -- row sets -----------------------------------------------------------------------------

    def sessions(self, table: str = "sessions") -> str:
        """WHERE of the session rows (of `sessions`, or `session_states` for visitor counts) of
        the sessions that pass."""
        parts = [self.window, *self.dims("sessions")]
        if self.f.page_level:
            parts.append(f"{self.on} IN ({self.page_keys()})")
        parts += self.session_conditions(events=True)
        return _all(parts)

    def page_views(self, *, with_paths: bool = True) -> str:
        """WHERE of the page views that match (without `with_paths`: every page view of the
        sessions that pass the other conditions)."""
        parts = [self.window, *self.dims("page_views", with_paths=with_paths)]
        return _all(parts + self.session_conditions(events=True))

    def events(self) -> str:
        """WHERE of the events that match, of sessions that pass the entry/exit conditions."""
        parts = [self.window, *self.dims("events")]
        return _all(parts + self.session_conditions(events=False))

    # -- sessions by condition ------------------------------------------------------------------

    @property
    def on(self) -> str:
        """What page and event conditions join on: the session, with `bucket` its bucket too."""
        return f"({KEYS})" if self.bucket is None else f"({BUCKETS[self.bucket]}, {KEYS})"

    def _select_on(self) -> str:
        return self.on[1:-1]

    def page_keys(self) -> str:
        where = _all([self.window, *self.dims("page_views")])
        return f"SELECT {self._select_on()} FROM {self.table('page_views')} WHERE {where}"

    def event_keys(self) -> str:
        where = _all([self.window, *self.dims("events", with_paths=False)])
        return f"SELECT {self._select_on()} FROM {self.table('events')} WHERE {where}"

    def live_keys(self) -> str:
        where = _all([self.window, *self.dims("sessions")])
        on = self._select_on()
        return (
            f"SELECT {on} FROM {self.table('sessions')} WHERE {where} "
            f"GROUP BY {on} HAVING sum(sign) > 0"
        )

    def bounced_keys(self, *, bucketed: bool = False) -> str:
        """Sessions whose live state in the window bounced (no other condition); `bucketed`:
        with the bucket of that state."""
        b = f"{BUCKETS[self.bucket]} AS b, " if bucketed and self.bucket else ""
        out = "b, " if b else ""
        inner = (
            f"SELECT {b}{KEYS}, version FROM {self.table('sessions')} "
            f"WHERE {self.window} AND is_bounce AND sign != 0 "
            f"GROUP BY {out}{KEYS}, version HAVING sum(sign) > 0"
        )
        return f"SELECT {out}{KEYS} FROM ({inner})"

    def session_conditions(self, *, events: bool) -> list[str]:
        f, parts = self.f, []
        if "exit_path" in f.fields:
            parts.append(f"{self.on} IN ({self.live_keys()})")
        elif "entry_path" in f.fields:
            where = _all([self.window, *self.dims("sessions")])
            parts.append(
                f"({KEYS}) IN (SELECT {KEYS} FROM {self.table('session_states')} WHERE {where})"
            )
        if events and f.event_level:
            if empty_event_matches(f):
                matched = _all(self.dims("events", with_paths=False))
                on = self._select_on()
                unmatched = (
                    f"SELECT {on} FROM {self.table('events')} WHERE {self.window} "
                    f"GROUP BY {on} HAVING countIf({matched}) = 0"
                )
                parts.append(f"{self.on} NOT IN ({unmatched})")
            else:
                parts.append(f"{self.on} IN ({self.event_keys()})")
        return parts

    # -- row conditions ---------------------------------------------------------------------------

    def dims(self, table: str, *, with_paths: bool = True) -> list[str]:
        """trail.stats.predicates.dims_predicate: what `table`'s own columns answer."""
        f, p = self.f, self.p
        columns = TABLES[table]
        parts = []
        for column, ff in f.fields.items():
            if column not in columns or (not with_paths and column in _PAGE_ONLY):
                continue
            assert column in _STRING_COLUMNS[table]  # FIELD_COLUMNS are all strings
            parts.append(field_sql(p, column, ff))
        if f.platform and "desktop" in columns:
            positives = [_PLATFORMS[name] for name, negated in f.platform if not negated]
            parts += [f"NOT {_PLATFORMS[name]}" for name, negated in f.platform if negated]
            if positives:
                parts.append(" OR ".join(positives))
        if f.visitor_id is not None:
            parts.append(f"visitor_id = {p.bind(f.visitor_id, 'UInt64')}")
        if f.session_id is not None and "session_id" in columns:
            parts.append(f"session_id = {p.bind(f.session_id, 'UInt32')}")
        if table == "page_views" and with_paths:
            parts += self.page_parts("tag_keys", "tag_values")
        if table == "events":
            if f.event_meta_key:
                parts.append(f"has(event_meta_keys, {p.bind(f.event_meta_key, 'String')})")
            for key, ff in f.meta.items():
                value = pair_value(p, "event_meta_keys", "event_meta_values", key)
                parts.append(field_sql(p, value, ff))
            if with_paths:
                parts += self.page_parts("event_meta_keys", "event_meta_values")
        return parts

    def page_parts(self, keys: str, values: str) -> list[str]:
        """Pattern and tag conditions (trail.stats.predicates.page_parts)."""
        f, p, parts = self.f, self.p, []
        if f.pattern and "path" not in f.fields:
            parts.append(f"match(path, {p.bind(f.pattern, 'String')})")
        if f.tag:
            parts.append(f"has({keys}, {p.bind(f.tag, 'String')})")
        for key, ff in f.tags.items():
            parts.append(field_sql(p, pair_value(p, keys, values, key), ff))
        return parts

"""The filter language: query parameters -> `Query`, and what each condition means on a row.

Written from §5 "Filters" and "Dates" of the semantics notes and Pirsch's API docs
("Filter" in Pirsch's API documentation), without looking at trail's parser for meanings;
trail's parser was read only for what the notes leave open (marked "trail:").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

MAX_LIMIT = 100  # §5 "limit hard-capped at 100"

# Query parameter -> the row column it tests. Session-level ones are on every table (§2
# "Page views and events inherit the session's ... values"); `path` lives on page views and
# events; `entry_path`/`exit_path` on sessions; `event` on events.
SESSION_FIELDS = {
    "hostname": "hostname", "language": "language", "country": "country_code",
    "region": "region", "city": "city", "referrer": "referrer", "referrer_name": "referrer_name",
    "os": "os", "os_version": "os_version", "browser": "browser",
    "browser_version": "browser_version", "screen_class": "screen_class",
    "utm_source": "utm_source", "utm_medium": "utm_medium", "utm_campaign": "utm_campaign",
    "utm_content": "utm_content", "utm_term": "utm_term", "channel": "channel",
}  # fmt: skip
OTHER_FIELDS = ("path", "entry_path", "exit_path", "event")
# §5 "For language and country, `~`/`^` take a comma-separated list (in / not in)."
LIST_FIELDS = ("language", "country")


@dataclass
class Condition:
    """The values given for one field. §5: "Several positive values of one field OR together;
    negated values AND; different fields AND"."""

    equal: list[str] = field(default_factory=list)
    not_equal: list[str] = field(default_factory=list)
    contains: list[str] = field(default_factory=list)  # lowercased
    not_contains: list[str] = field(default_factory=list)  # lowercased

    def matches(self, value: str) -> bool:
        positives = [value == v for v in self.equal]
        positives += [
            v in value.lower() for v in self.contains
        ]  # "~ = contains (case-insensitive)"
        if positives and not any(positives):
            return False
        if any(value == v for v in self.not_equal):  # "! = not equal"
            return False
        return not any(v in value.lower() for v in self.not_contains)  # "^ = not contains"


@dataclass
class Query:
    from_date: date | None
    to_date: date | None
    from_time: time | None
    to_time: time | None
    tz: ZoneInfo
    scale: str
    start: int | None  # active: seconds
    fields: dict[str, Condition]  # query parameter name -> condition
    pattern: str | None
    platform: list[tuple[str, bool]]  # (desktop|mobile|unknown, negated)
    tag: str | None
    tags: dict[str, Condition]
    meta: dict[str, Condition]
    event_meta_key: str | None
    custom_metric_key: str | None
    custom_metric_type: str | None
    visitor_id: str | None
    session_id: str | None
    offset: int
    limit: int
    sort: str | None
    direction: str  # "asc" | "desc"
    search: str | None
    include_avg_time_on_page: bool

    # -- which kind of filter (§5 "Which rows") ----------------------------------------------

    @property
    def page_level(self) -> bool:
        """§5: "a path, pattern or tag filter ... reads page views"."""
        return bool("path" in self.fields or self.pattern or self.tag or self.tags)

    @property
    def event_level(self) -> bool:
        """An event name, metadata or metadata-key condition. §5 "Filtering by an event returns
        the stats of whole sessions that contain the event". (Pirsch ignores meta_ without an
        event name on session reads; trail, like this model, treats it as an event filter.)"""
        return bool("event" in self.fields or self.meta or self.event_meta_key)

    @property
    def event_negated(self) -> bool:
        """Pirsch (pkg/analyzer filter.go `joinOrLeftJoinEvents`): an event name given with `!`
        is answered with a LEFT JOIN of events, so a session without events counts as having one
        event with empty name and metadata."""
        c = self.fields.get("event")
        return bool(c and c.not_equal)

    # -- conditions on rows --------------------------------------------------------------------

    def dims_match(self, row: dict[str, Any]) -> bool:
        """The session-level conditions (every table carries these columns)."""
        for name, column in SESSION_FIELDS.items():
            if name in self.fields and not self.fields[name].matches(row[column]):
                return False
        return self.platform_match(row)

    def platform_match(self, row: dict[str, Any]) -> bool:
        """§5 "`platform` in desktop|mobile|unknown with optional `!`"; §4 "Chrome OS neither
        (= unknown)". Positive values OR together, negated ones AND, like every field."""
        kind = "desktop" if row["desktop"] else "mobile" if row["mobile"] else "unknown"
        positives = [name for name, negated in self.platform if not negated]
        negatives = [name for name, negated in self.platform if negated]
        if positives and kind not in positives:
            return False
        return kind not in negatives

    def path_match(self, path: str) -> bool:
        """The path condition, else the pattern (§5 "A `path` filter overrides `pattern`").
        A pattern is a regular expression searched anywhere in the path (Pirsch: ClickHouse
        `match`, RE2; the generator only writes patterns Python's `re` reads the same way)."""
        if "path" in self.fields:
            return self.fields["path"].matches(path)
        if self.pattern:
            return re.search(self.pattern, path) is not None
        return True

    def page_match(self, pv: dict[str, Any]) -> bool:
        """Path/pattern and tag conditions of one page view. `tag=k`: the view has tag k;
        `tag_k=v`: the view's value of k ("" when it has none, so `null` and `!v` match views
        without the tag). §5 "all `tag_<k>` and `meta_<k>` pairs AND"."""
        if not self.path_match(pv["path"]):
            return False
        return pairs_match(pv["tag_keys"], pv["tag_values"], self.tag, self.tags)

    def event_match(self, ev: dict[str, Any]) -> bool:
        """Event name, `event_meta_key` (the event has that key) and `meta_k` conditions."""
        if "event" in self.fields and not self.fields["event"].matches(ev["event_name"]):
            return False
        return pairs_match(
            ev["event_meta_keys"], ev["event_meta_values"], self.event_meta_key, self.meta
        )

    def event_page_match(self, ev: dict[str, Any]) -> bool:
        """Page-level conditions read on an event row (event reports): path and pattern test the
        event's own path; tags test the event metadata, which holds the page's tags (§2 "Event
        metadata = page tags overridden by event meta"; Pirsch filter_fields/query.go read
        tag filters on events from event_meta_keys/values)."""
        if not self.path_match(ev["path"]):
            return False
        return pairs_match(ev["event_meta_keys"], ev["event_meta_values"], self.tag, self.tags)


def pairs_match(
    keys: list[str], values: list[str], has_key: str | None, conditions: dict[str, Condition]
) -> bool:
    if has_key and has_key not in keys:
        return False
    for key, condition in conditions.items():
        value = values[keys.index(key)] if key in keys else ""
        if not condition.matches(value):
            return False
    return True


# -- parsing ----------------------------------------------------------------------------------


def parse(params: dict[str, list[str]], site_tz: str) -> Query:
    """Query parameters (repeated keys kept) -> Query. §7: empty values mean unset (the Go SDK
    sends every parameter); a parameter given twice keeps its last value unless it is a field."""
    p = {k: [v.strip() for v in vs if v.strip()] for k, vs in params.items()}
    one = {k: vs[-1] for k, vs in p.items() if vs}
    fields = {
        name: condition(p[name], name in LIST_FIELDS)
        for name in (*SESSION_FIELDS, *OTHER_FIELDS)
        if p.get(name)
    }
    limit = int(one.get("limit", "0"))
    return Query(
        from_date=date.fromisoformat(one["from"][:10]) if "from" in one else None,
        to_date=date.fromisoformat(one["to"][:10]) if "to" in one else None,
        from_time=clock(one.get("from_time")),
        to_time=clock(one.get("to_time")),
        tz=ZoneInfo(one.get("tz") or site_tz or "UTC"),  # §5 "tz defaults to the domain's"
        scale=one.get("scale", "day"),
        start=min(int(one["start"]), 3600) if "start" in one else None,  # §5 "max 3600"
        fields=fields,
        pattern=None if "path" in fields else one.get("pattern"),
        platform=[(v.lstrip("!"), v.startswith("!")) for v in p.get("platform", [])],
        tag=one.get("tag"),
        tags=pairs(p, "tag_"),
        meta=pairs(p, "meta_"),
        event_meta_key=one.get("event_meta_key"),
        custom_metric_key=one.get("custom_metric_key"),
        custom_metric_type=one.get("custom_metric_type"),
        visitor_id=one.get("visitor_id"),
        session_id=one.get("session_id"),
        offset=int(one.get("offset", "0")),
        limit=min(limit, MAX_LIMIT) if limit > 0 else MAX_LIMIT,  # §7 "limit=0 as the default"
        sort=one.get("sort"),
        direction=one.get("direction", "desc").lower(),
        search=one.get("search"),
        include_avg_time_on_page=one.get("include_avg_time_on_page", "").lower() in ("true", "1"),
    )


def condition(values: list[str], is_list: bool) -> Condition:
    c = Condition()
    for raw in values:
        op, value = (raw[0], raw[1:]) if raw[0] in "!~^" else ("", raw)
        if op in ("~", "^") and is_list:
            items = [null(v.strip()) for v in value.split(",") if v.strip()]
            (c.equal if op == "~" else c.not_equal).extend(items)
        elif op == "~":
            c.contains.append(value.lower())
        elif op == "^":
            c.not_contains.append(value.lower())
        elif op == "!":
            c.not_equal.append(null(value))
        else:
            c.equal.append(null(value))
    return c


def null(value: str) -> str:
    """§5 "'null' matches the empty value"."""
    return "" if value == "null" else value


def pairs(p: dict[str, list[str]], prefix: str) -> dict[str, Condition]:
    return {
        k[len(prefix) :]: condition(vs, False)
        for k, vs in p.items()
        if k.startswith(prefix) and len(k) > len(prefix) and vs
    }


def clock(value: str | None) -> time | None:
    if value is None:
        return None
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


# -- dates ------------------------------------------------------------------------------------


def local_midnight(day: date, tz: ZoneInfo) -> int:
    """UTC milliseconds of 00:00 of `day` in `tz`."""
    return ms(datetime.combine(day, time(0), tz))


def ms(value: datetime) -> int:
    return int(value.astimezone(UTC).timestamp() * 1000)


def window(q: Query) -> tuple[int, int]:
    """[start, end) in UTC ms. §5 "dates compare as local dates in tz"; "from_time/to_time
    (HH:MM) apply only when from == to". trail: to_time names a whole minute, which is included
    (Pirsch: `toDateTime(time) <= to`, to the second)."""
    assert q.from_date is not None and q.to_date is not None
    start = local_midnight(q.from_date, q.tz)
    end = local_midnight(q.to_date + timedelta(days=1), q.tz)
    if q.from_date == q.to_date and q.from_time is not None:
        start = ms(datetime.combine(q.from_date, q.from_time, q.tz))
    if q.from_date == q.to_date and q.to_time is not None:
        end = ms(datetime.combine(q.from_date, q.to_time, q.tz) + timedelta(minutes=1))
    return start, end


def local(time_ms: int, tz: ZoneInfo) -> datetime:
    """A row's time as a local date-time in `tz`."""
    return datetime.fromtimestamp(time_ms / 1000, UTC).astimezone(tz)

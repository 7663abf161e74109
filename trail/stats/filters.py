"""The one filter parser of the statistics API: query parameters -> a typed, validated `Filter`.

Values arrive percent-decoded as `dict[str, list[str]]` (repeated keys kept). Empty values mean
"unset" (the Go SDK sends every parameter). Prefixes: `!` not equal, `~` contains
(case-insensitive), `^` does not contain; "null" stands for the empty value.

Dates: `from` after `to` is an error naming `from`. A date before FIRST_DAY or after tomorrow (in
the filter's time zone) is moved to that end: no row can be there, and a far date would overflow
the date arithmetic of reports (the previous window of growth, time zone conversions). Series
reports have a bound of their own (trail.stats.buckets.MAX_BUCKETS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from trail.errors import FieldError

MAX_LIMIT = 100
MAX_START_SECONDS = 3600
DEFAULT_START_SECONDS = 600
SCALES = ("day", "week", "month", "year")
# No stored row is older than the Unix epoch: ingest refuses hit times outside a sane window.
FIRST_DAY = date(1970, 1, 1)
PLATFORMS = ("desktop", "mobile", "unknown")
METRIC_TYPES = ("integer", "float")

# Query parameter -> column holding it. `path` and `title` live on page views and events,
# `entry_path`/`exit_path` on sessions, everything else on every table.
FIELD_COLUMNS: dict[str, str] = {
    "path": "path",
    "entry_path": "entry_path",
    "exit_path": "exit_path",
    "hostname": "hostname",
    "language": "language",
    "country": "country_code",
    "region": "region",
    "city": "city",
    "referrer": "referrer",
    "referrer_name": "referrer_name",
    "os": "os",
    "os_version": "os_version",
    "browser": "browser",
    "browser_version": "browser_version",
    "screen_class": "screen_class",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_content": "utm_content",
    "utm_term": "utm_term",
    "channel": "channel",
    "event": "event_name",
}
# For these, `~a,b` / `^a,b` mean "in"/"not in" a list rather than substring matches.
LIST_FIELDS = frozenset({"language", "country"})

# A date, or a date-time whose date part is used: the JS SDK sends Date objects as ISO strings.
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?=$|T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$)")
_CLOCK = re.compile(r"^(\d{2}):(\d{2})$")
_UINT = re.compile(r"^\d{1,20}$")


class FilterError(FieldError):
    """A query parameter that cannot be used; `field` names it for the validation response."""


@dataclass(frozen=True)
class FieldFilter:
    """Conditions on one column: positives (eq, contains) OR together, negatives AND."""

    eq: tuple[str, ...] = ()
    neq: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()


@dataclass(frozen=True)
class Filter:
    site_id: str = ""
    from_date: date | None = None
    to_date: date | None = None
    from_time: time | None = None
    to_time: time | None = None
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    start: int | None = None
    scale: str = "day"
    fields: dict[str, FieldFilter] = field(default_factory=dict)  # column -> conditions
    pattern: str | None = None
    platform: tuple[tuple[str, bool], ...] = ()  # (platform, negated)
    tags: dict[str, FieldFilter] = field(default_factory=dict)
    meta: dict[str, FieldFilter] = field(default_factory=dict)
    tag: str | None = None
    event_meta_key: str | None = None
    custom_metric_key: str | None = None
    custom_metric_type: str | None = None
    visitor_id: int | None = None
    session_id: int | None = None
    offset: int = 0
    limit: int = MAX_LIMIT
    include_avg_time_on_page: bool = False
    sort: str | None = None
    direction: str | None = None
    search: str | None = None

    def window(self) -> tuple[datetime, datetime]:
        """The UTC instants [start, end) covering the local dates (and times) in `tz`."""
        if self.from_date is None or self.to_date is None:
            raise FilterError("from", "from and to are required")
        start = datetime.combine(self.from_date, time(0), self.tz)
        end = datetime.combine(self.to_date + timedelta(days=1), time(0), self.tz)
        if self.from_date == self.to_date and self.from_time is not None:
            start = datetime.combine(self.from_date, self.from_time, self.tz)
        if self.from_date == self.to_date and self.to_time is not None:
            # to_time names a whole minute, so it is included.
            end = datetime.combine(self.from_date, self.to_time, self.tz) + timedelta(minutes=1)
        return start.astimezone(UTC), end.astimezone(UTC)

    def without_dims(self) -> Filter:
        """The same site, dates and tz with no other filter: the denominator of relative values."""
        return Filter(
            site_id=self.site_id,
            from_date=self.from_date,
            to_date=self.to_date,
            from_time=self.from_time,
            to_time=self.to_time,
            tz=self.tz,
            start=self.start,
            scale=self.scale,
        )

    @property
    def page_level(self) -> bool:
        """Whether the filter needs page view rows (path, pattern, tags)."""
        return bool("path" in self.fields or self.pattern or self.tags or self.tag)

    @property
    def event_level(self) -> bool:
        return bool("event_name" in self.fields or self.meta or self.event_meta_key)

    @property
    def is_unfiltered(self) -> bool:
        return not (
            self.fields or self.pattern or self.platform or self.tags or self.meta or self.tag
        )


def parse_filter(
    params: dict[str, list[str]],
    *,
    default_tz: str = "UTC",
    now: datetime | None = None,
) -> Filter:
    """Parse query parameters into a Filter; raises FilterError naming the offending field."""
    p = {k: [v.strip() for v in vs if v.strip()] for k, vs in params.items()}
    one = {k: vs[-1] for k, vs in p.items() if vs}
    tz = _parse_tz(one.get("tz"), default_tz)
    from_date = _parse_date("from", one.get("from"))
    to_date = _parse_date("to", one.get("to"))
    if from_date and to_date and from_date > to_date:
        raise FilterError("from", "must not be after to")
    metric_type = _parse_choice("custom_metric_type", one.get("custom_metric_type"), METRIC_TYPES)
    for a, b in (
        ("custom_metric_key", "custom_metric_type"),
        ("custom_metric_type", "custom_metric_key"),
    ):
        if a in one and b not in one:
            raise FilterError(b, f"required together with {a}")
    tomorrow = tomorrow_in(tz, now)
    return Filter(
        site_id=one.get("id", ""),
        from_date=clamp_day(from_date, tomorrow) if from_date else None,
        to_date=clamp_day(to_date, tomorrow) if to_date else None,
        from_time=_parse_clock("from_time", one.get("from_time")),
        to_time=_parse_clock("to_time", one.get("to_time")),
        tz=tz,
        start=_parse_start(one.get("start")),
        scale=_parse_choice("scale", one.get("scale"), SCALES) or "day",
        fields=_parse_fields(p),
        pattern=_parse_pattern(one.get("pattern")) if "path" not in p else None,
        platform=_parse_platform(p.get("platform", [])),
        tags=_parse_pairs(p, "tag_"),
        meta=_parse_pairs(p, "meta_"),
        tag=one.get("tag"),
        event_meta_key=one.get("event_meta_key"),
        custom_metric_key=one.get("custom_metric_key"),
        custom_metric_type=metric_type,
        visitor_id=_parse_uint("visitor_id", one.get("visitor_id"), 2**64 - 1),
        session_id=_parse_uint("session_id", one.get("session_id"), 2**32 - 1),
        offset=_parse_uint("offset", one.get("offset"), 2**31) or 0,
        limit=min(_parse_uint("limit", one.get("limit"), 2**63) or MAX_LIMIT, MAX_LIMIT),
        include_avg_time_on_page=_parse_bool(
            "include_avg_time_on_page", one.get("include_avg_time_on_page")
        ),
        sort=one.get("sort"),
        direction=_parse_choice(
            "direction", one.get("direction", "").lower() or None, ("asc", "desc")
        ),
        search=one.get("search"),
    )


def tomorrow_in(tz: ZoneInfo, now: datetime | None = None) -> date:
    """The local date after today in `tz`: the last date a window may reach."""
    return (now or datetime.now(UTC)).astimezone(tz).date() + timedelta(days=1)


def clamp_day(day: date, tomorrow: date) -> date:
    """`day` moved into [FIRST_DAY, tomorrow], the dates that can have rows."""
    return min(max(day, FIRST_DAY), tomorrow)


def _parse_tz(value: str | None, default: str) -> ZoneInfo:
    name = value or default or "UTC"
    try:
        return ZoneInfo(name)
    except Exception:  # noqa: BLE001  ZoneInfoNotFoundError, ValueError on odd keys, OSError on paths
        if value is None:  # a bad site default must not make every query fail
            return ZoneInfo("UTC")
        raise FilterError("tz", "unknown time zone") from None


def _parse_date(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        if _DATE.match(value):
            return date.fromisoformat(value[:10])
    except ValueError:
        pass
    raise FilterError(name, "invalid date, expected YYYY-MM-DD")


def _parse_clock(name: str, value: str | None) -> time | None:
    if value is None:
        return None
    m = _CLOCK.match(value)
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise FilterError(name, "invalid time, expected HH:MM")
    return time(int(m.group(1)), int(m.group(2)))


def _parse_uint(name: str, value: str | None, maximum: int) -> int | None:
    if value is None:
        return None
    if not _UINT.match(value) or int(value) > maximum:
        raise FilterError(name, "must be a non-negative integer")
    return int(value)


def _parse_bool(name: str, value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() not in ("true", "1", "false", "0"):
        raise FilterError(name, "must be true or false")
    return value.lower() in ("true", "1")


def _parse_start(value: str | None) -> int | None:
    seconds = _parse_uint("start", value, 2**63)
    return None if seconds is None else min(seconds, MAX_START_SECONDS)


def _parse_choice(name: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if value not in choices:
        raise FilterError(name, f"must be one of {', '.join(choices)}")
    return value


def _parse_platform(values: list[str]) -> tuple[tuple[str, bool], ...]:
    out = []
    for raw in values:
        negated = raw.startswith("!")
        name = raw[1:] if negated else raw
        if name not in PLATFORMS:
            raise FilterError("platform", "must be desktop, mobile or unknown")
        out.append((name, negated))
    return tuple(out)


def _parse_pattern(value: str | None) -> str | None:
    if value is None:
        return None
    import polars as pl  # the regex engine that will run it decides what is valid

    try:
        pl.select(pl.lit("").str.contains(value))
    except Exception:  # noqa: BLE001  polars raises ComputeError and friends for bad patterns
        raise FilterError("pattern", "invalid regular expression") from None
    return value


def _parse_fields(p: dict[str, list[str]]) -> dict[str, FieldFilter]:
    out = {}
    for name, column in FIELD_COLUMNS.items():
        if p.get(name):
            out[column] = _field_filter(p[name], split_lists=name in LIST_FIELDS)
    return out


def _parse_pairs(p: dict[str, list[str]], prefix: str) -> dict[str, FieldFilter]:
    return {
        key[len(prefix) :]: _field_filter(values)
        for key, values in p.items()
        if key.startswith(prefix) and len(key) > len(prefix) and values
    }


def _field_filter(values: list[str], split_lists: bool = False) -> FieldFilter:
    eq: list[str] = []
    neq: list[str] = []
    contains: list[str] = []
    not_contains: list[str] = []
    for raw in values:
        op, value = (raw[0], raw[1:]) if raw[0] in "!~^" else ("", raw)
        if op in ("~", "^") and split_lists:
            items = [_null(v.strip()) for v in value.split(",") if v.strip()]
            (eq if op == "~" else neq).extend(items)
        elif op == "~":
            contains.append(value.lower())
        elif op == "^":
            not_contains.append(value.lower())
        else:
            (neq if op == "!" else eq).append(_null(value))
    return FieldFilter(tuple(eq), tuple(neq), tuple(contains), tuple(not_contains))


def _null(value: str) -> str:
    return "" if value == "null" else value

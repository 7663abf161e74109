"""The filter parser: table-driven cases and a Hypothesis property (only FilterError escapes)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trail.stats.filters import FieldFilter, FilterError, parse_filter

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
BASE = {"id": ["site"], "from": ["2024-03-01"], "to": ["2024-03-05"]}


def parse(**params: str | list[str]):
    p = {**BASE, **{k: v if isinstance(v, list) else [v] for k, v in params.items()}}
    return parse_filter(p, now=NOW)


@pytest.mark.parametrize(
    ("params", "field", "expected"),
    [
        ({"path": "/a"}, "path", FieldFilter(eq=("/a",))),
        ({"path": "!/a"}, "path", FieldFilter(neq=("/a",))),
        ({"path": "~Blog"}, "path", FieldFilter(contains=("blog",))),
        ({"path": "^Blog"}, "path", FieldFilter(not_contains=("blog",))),
        ({"country": "null"}, "country_code", FieldFilter(eq=("",))),
        ({"country": "!null"}, "country_code", FieldFilter(neq=("",))),
        ({"country": ["de", "us"]}, "country_code", FieldFilter(eq=("de", "us"))),
        ({"country": ["!de", "!us"]}, "country_code", FieldFilter(neq=("de", "us"))),
        ({"language": "~de,en"}, "language", FieldFilter(eq=("de", "en"))),
        ({"language": "^de, null"}, "language", FieldFilter(neq=("de", ""))),
        ({"event": "Sign up"}, "event_name", FieldFilter(eq=("Sign up",))),
        ({"utm_source": ["", " "]}, "utm_source", None),  # empty values are unset
    ],
)
def test_field_operators(params, field, expected) -> None:
    assert parse(**params).fields.get(field) == expected


def test_defaults_and_date_bounds() -> None:
    f = parse_filter(
        {"id": ["s"], "from": ["2024-03-01"], "to": ["2024-03-05"], "limit": ["0"], "sort": [""]},
        now=NOW,
    )
    assert (f.from_date, f.to_date) == (date(2024, 3, 1), date(2024, 3, 5))
    assert f.limit == 100 and f.offset == 0 and f.scale == "day" and f.sort is None
    assert f.tz.key == "UTC" and f.include_avg_time_on_page is False
    # Dates are moved into [1970-01-01, tomorrow] (NOW is 2024-03-10): no row can be outside.
    assert parse(to="2030-01-01").to_date == date(2024, 3, 11)
    assert parse(**{"from": "9999-01-01", "to": "9999-12-31"}).from_date == date(2024, 3, 11)
    far = parse(**{"from": "0001-01-01", "to": "0001-12-31"})
    assert (far.from_date, far.to_date) == (date(1970, 1, 1), date(1970, 1, 1))
    assert parse(**{"from": "0001-01-01"}).from_date == date(1970, 1, 1)
    assert parse(limit="5000").limit == 100
    assert parse(start="99999").start == 3600
    assert parse(include_avg_time_on_page="true").include_avg_time_on_page is True


def test_tz_defaults_to_site_and_shifts_window() -> None:
    f = parse_filter(
        {**BASE, "from": ["2024-03-10"], "to": ["2024-03-10"]},
        default_tz="America/New_York",
        now=NOW,
    )
    assert f.tz.key == "America/New_York"
    # 2024-03-10 is the US DST switch: 00:00 EST = 05:00 UTC, next midnight EDT = 04:00 UTC.
    start, end = f.window()
    assert (start.hour, end.day, end.hour) == (5, 11, 4)
    # A bad site default falls back to UTC rather than failing every query.
    assert parse_filter(BASE, default_tz="Not/AZone", now=NOW).tz.key == "UTC"


def test_from_time_to_time_only_for_one_day() -> None:
    f = parse(
        **{"from": "2024-03-10", "to": "2024-03-10", "from_time": "12:30", "to_time": "13:05"}
    )
    assert (f.from_time, f.to_time) == (time(12, 30), time(13, 5))
    start, end = f.window()
    assert (start.hour, start.minute, end.hour, end.minute) == (12, 30, 13, 6)
    start, end = parse(from_time="12:30").window()  # from != to: ignored
    assert (start.day, start.hour, end.day) == (1, 0, 6)


def test_pairs_platform_and_misc() -> None:
    f = parse(
        tag_author="alice",
        meta_plan=["!pro"],
        platform=["!mobile", "unknown"],
        tag="author",
        pattern="^/blog/.*$",
        visitor_id="18446744073709551615",
        session_id="4294967295",
    )
    assert f.tags == {"author": FieldFilter(eq=("alice",))}
    assert f.meta == {"plan": FieldFilter(neq=("pro",))}
    assert f.platform == (("mobile", True), ("unknown", False))
    assert f.pattern == "^/blog/.*$" and f.page_level and f.event_level
    assert (f.visitor_id, f.session_id) == (2**64 - 1, 2**32 - 1)
    assert parse(path="/a", pattern="^/b").pattern is None  # path overrides pattern


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"from": "2024-13-01"}, "from"),
        ({"from": "2024-03-06"}, "from"),  # after `to`: refused, not swapped
        ({"from": "9999-12-31", "to": "0001-01-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from_time": "25:00"}, "from_time"),
        ({"to_time": "1:5"}, "to_time"),
        ({"scale": "decade"}, "scale"),
        ({"platform": "tablet"}, "platform"),
        ({"limit": "-1"}, "limit"),
        ({"offset": "ten"}, "offset"),
        ({"start": "1e3"}, "start"),
        ({"visitor_id": "18446744073709551616"}, "visitor_id"),
        ({"session_id": "4294967296"}, "session_id"),
        ({"direction": "sideways"}, "direction"),
        ({"custom_metric_type": "string"}, "custom_metric_type"),
        ({"pattern": "(unclosed"}, "pattern"),
    ],
)
def test_errors_name_the_field(params, field) -> None:
    with pytest.raises(FilterError) as e:
        parse(**params)
    assert e.value.field == field


KEYS = st.sampled_from(
    [
        "id",
        "from",
        "to",
        "from_time",
        "to_time",
        "tz",
        "start",
        "scale",
        "path",
        "pattern",
        "event",
        "meta_x",
        "tag_y",
        "tag",
        "language",
        "country",
        "platform",
        "limit",
        "offset",
        "visitor_id",
        "session_id",
        "direction",
        "sort",
        "search",
        "custom_metric_type",
        "include_avg_time_on_page",
        "meta_",
    ]
)
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ["!", "~", "^", "null", "!null", "0", "2024-02-30", "12:60", "0001-01-01", "9999-12-31"]
    ),
    st.dates().map(date.isoformat),
)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(st.one_of(KEYS, st.text(max_size=10)), st.lists(VALUES, max_size=3), max_size=8)
)
def test_parser_only_raises_filter_error(params) -> None:
    try:
        f = parse_filter(params, now=NOW)
    except FilterError as e:
        assert e.field and e.message
        return
    assert 1 <= f.limit <= 100 and f.offset >= 0
    for day in (f.from_date, f.to_date):
        assert day is None or date(1970, 1, 1) <= day <= date(2024, 3, 11)
    if f.from_date and f.to_date:
        assert f.from_date <= f.to_date
        f.window()

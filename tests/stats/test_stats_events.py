"""Event, tag, hostname, minute and time-on-page reports over the hand-built `shop` day."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from segment_rows import SITE, SiteData
from shop import DAY, build_shop

from trail.stats import events, reports, tags
from trail.stats.filters import FilterError, parse_filter

NOW = datetime(2024, 3, 20, tzinfo=UTC)


def q(**params: str | list[str]):
    p = {"id": [SITE], "from": [DAY], "to": [DAY]}
    p.update({k: v if isinstance(v, list) else [v] for k, v in params.items()})
    return parse_filter(p, now=NOW)


@pytest.fixture
def shop(site: SiteData) -> Path:
    return build_shop(site)


def test_totals_of_the_fixture(shop: Path) -> None:
    t = reports.total(shop, q())
    assert (t["visitors"], t["sessions"], t["views"], t["bounces"]) == (5, 6, 8, 1)


def test_events(shop: Path) -> None:
    # signup: 3 events of v1, v3, v5; views of their sessions 2 + 1 + 1 = 4; cr 3/5.
    # download: v4/s1 only (1 view; v4/s2 had no event); cr 1/5.
    assert events.events(shop, q()) == [
        {"name": "signup", "count": 3, "visitors": 3, "views": 4, "cr": 0.6,
         "average_duration_seconds": 0, "meta_keys": ["amount", "plan"]},
        {"name": "download", "count": 1, "visitors": 1, "views": 1, "cr": 0.2,
         "average_duration_seconds": 0, "meta_keys": []},
    ]  # fmt: skip
    assert [e["name"] for e in events.events(shop, q(sort="name", direction="asc"))] == [
        "download",
        "signup",
    ]
    assert [e["name"] for e in events.events(shop, q(search="DOWN"))] == ["download"]
    # Dimension filters apply to events too: only v1 is in "de".
    [de] = events.events(shop, q(country="de"))
    assert (de["name"], de["count"], de["visitors"], de["views"], de["cr"]) == (
        "signup",
        1,
        1,
        2,
        0.2,
    )


def test_event_meta(shop: Path) -> None:
    rows = events.event_meta(shop, q(event="signup", event_meta_key="plan"))
    # pro: v1 (2 views) + v5 (1 view); free: v3 (1 view).
    assert [(r["meta_value"], r["count"], r["visitors"], r["views"], r["cr"]) for r in rows] == [
        ("pro", 2, 2, 3, 0.4),
        ("free", 1, 1, 1, 0.2),
    ]
    assert all(r["name"] == "signup" for r in rows)
    with pytest.raises(FilterError) as e:
        events.event_meta(shop, q(event="signup"))
    assert e.value.field == "event_meta_key"
    with pytest.raises(FilterError) as e:
        events.event_meta(shop, q(event_meta_key="plan"))
    assert e.value.field == "event"


def test_event_list(shop: Path) -> None:
    # Grouped by name + full metadata, by count desc, ties by name.
    assert events.event_list(shop, q()) == [
        {"name": "signup", "meta": {"plan": "pro", "amount": "10"}, "visitors": 2, "count": 2},
        {"name": "download", "meta": {}, "visitors": 1, "count": 1},
        {"name": "signup", "meta": {"plan": "free", "amount": "5"}, "visitors": 1, "count": 1},
    ]
    assert len(events.event_list(shop, q(meta_plan="free"))) == 1
    assert len(events.event_list(shop, q(path="/"))) == 2  # events fired on "/": pro + download


def test_event_pages(shop: Path) -> None:
    rows = events.event_pages(shop, q(event="signup"))
    # "/": v1 and v5 fired signup there (1 view of "/" each); "/p": v3.
    assert [
        (r["path"], r["title"], r["visitors"], r["sessions"], r["views"], r["bounces"])
        for r in rows
    ] == [
        ("/", "/", 2, 2, 2, 0),
        ("/p", "/P", 1, 1, 1, 0),
    ]
    assert rows[0]["relative_visitors"] == pytest.approx(2 / 5)
    assert rows[0]["relative_views"] == pytest.approx(2 / 8)
    with pytest.raises(FilterError):
        events.event_pages(shop, q())


def test_tags(shop: Path) -> None:
    # Tagged views: v1 "/a" author=alice; v2 "/" author=bob, kind=post. 5 visitors, 8 views in all.
    assert tags.tags(shop, q()) == [
        {
            "key": "author",
            "visitors": 2,
            "views": 2,
            "relative_visitors": 0.4,
            "relative_views": 0.25,
        },
        {
            "key": "kind",
            "visitors": 1,
            "views": 1,
            "relative_visitors": 0.2,
            "relative_views": 0.125,
        },
    ]
    assert tags.tag_details(shop, q(tag="author")) == [
        {"key": "author", "value": "alice", "visitors": 1, "views": 1, "relative_visitors": 0.2,
         "relative_views": 0.125},
        {"key": "author", "value": "bob", "visitors": 1, "views": 1, "relative_visitors": 0.2,
         "relative_views": 0.125},
    ]  # fmt: skip
    assert [r["value"] for r in tags.tag_details(shop, q(tag="author", tag_author="!bob"))] == [
        "alice"
    ]
    # Without `tag` (the Go SDK's Tags()): every (key, value) pair, ties by key then value.
    assert tags.tag_details(shop, q()) == [
        {"key": "author", "value": "alice", "visitors": 1, "views": 1, "relative_visitors": 0.2,
         "relative_views": 0.125},
        {"key": "author", "value": "bob", "visitors": 1, "views": 1, "relative_visitors": 0.2,
         "relative_views": 0.125},
        {"key": "kind", "value": "post", "visitors": 1, "views": 1, "relative_visitors": 0.2,
         "relative_views": 0.125},
    ]  # fmt: skip
    # Sorting by value: tags have no value column (the default order), tag details do.
    assert tags.tags(shop, q(sort="value")) == tags.tags(shop, q())
    by_value = tags.tag_details(shop, q(tag="author", sort="value", direction="desc"))
    assert [r["value"] for r in by_value] == ["bob", "alice"]


def test_tag_details_without_tag(site: SiteData) -> None:
    # v1 views /a (author=zed) and /b (author=alice, kind=post); v2 views /c (author=alice);
    # v3 views /d (kind=news) twice. 3 visitors, 5 views.
    site.visit(
        1,
        1,
        [(f"{DAY} 10:00:00", "/a"), (f"{DAY} 10:01:00", "/b")],
        tags={0: {"author": "zed"}, 1: {"author": "alice", "kind": "post"}},
    )
    site.visit(2, 1, [(f"{DAY} 11:00:00", "/c")], tags={0: {"author": "alice"}})
    site.visit(3, 1, [(f"{DAY} 12:00:00", "/d"), (f"{DAY} 12:01:00", "/d")],
               tags={0: {"kind": "news"}, 1: {"kind": "news"}})  # fmt: skip
    site.write()
    d = site.data_dir

    def pairs(**params: str) -> list[tuple[str, str, int, int]]:
        return [(r["key"], r["value"], r["visitors"], r["views"])
                for r in tags.tag_details(d, q(**params))]  # fmt: skip

    # Visitors desc, ties by key then value: author/zed before kind/news and kind/post.
    assert pairs() == [("author", "alice", 2, 2), ("author", "zed", 1, 1),
                       ("kind", "news", 1, 2), ("kind", "post", 1, 1)]  # fmt: skip
    row = tags.tag_details(d, q())[0]
    assert row["relative_visitors"] == pytest.approx(2 / 3)
    assert row["relative_views"] == pytest.approx(2 / 5)
    assert [p[:2] for p in pairs(sort="views")] == [("author", "alice"), ("kind", "news"),
                                                   ("author", "zed"), ("kind", "post")]  # fmt: skip
    assert [p[:2] for p in pairs(sort="value", direction="asc")] == [
        ("author", "alice"), ("kind", "news"), ("kind", "post"), ("author", "zed")]  # fmt: skip
    assert [p[:2] for p in pairs(sort="key", direction="desc")] == [
        ("kind", "news"), ("kind", "post"), ("author", "alice"), ("author", "zed")]  # fmt: skip
    assert [p[:2] for p in pairs(search="E")] == [("author", "alice"), ("author", "zed"),
                                                 ("kind", "news")]  # fmt: skip
    assert pairs(offset="1", limit="2") == pairs()[1:3]
    # A tag filter narrows the views, as with `tag`; with `tag` only its values remain.
    assert pairs(tag_kind="post") == [("author", "alice", 1, 1), ("kind", "post", 1, 1)]
    assert pairs(tag="kind") == [("kind", "news", 1, 2), ("kind", "post", 1, 1)]


def test_hostname(shop: Path) -> None:
    rows = reports.hostname(shop, q())
    # example.com: v1, v3, v4 (2 sessions), v5 = 4 visitors, 5 sessions, 6 views, 1 bounce (v4/s2).
    assert rows[0] == {"hostname": "example.com", "visitors": 4, "views": 6, "sessions": 5,
                       "bounces": 1, "relative_visitors": 0.8, "relative_views": 0.75,
                       "bounce_rate": 0.2}  # fmt: skip
    assert rows[1]["hostname"] == "blog.example.com" and rows[1]["views"] == 2
    assert [r["hostname"] for r in reports.hostname(shop, q(search="blog"))] == ["blog.example.com"]


def test_minutes(shop: Path) -> None:
    m = reports.minutes(shop, q())
    assert [r["minute"] for r in m] == list(range(60))
    # Page views: minute 0 holds all but v2's 11:01:00 view; every session started in minute 0.
    assert (m[0]["visitors"], m[0]["views"], m[0]["sessions"], m[0]["bounces"]) == (5, 7, 6, 1)
    assert (m[1]["visitors"], m[1]["views"], m[1]["sessions"], m[1]["bounces"]) == (1, 1, 1, 0)
    assert sum(r["views"] for r in m) == 8
    # from_time/to_time on one day: 11:00 .. 11:00 (inclusive minute) = v2's first view only;
    # its session's +1 and the cancel row of that state both start at 11:00, so no bounce.
    m = reports.minutes(shop, q(from_time="11:00", to_time="11:00"))
    assert [(r["minute"], r["views"], r["bounces"]) for r in m if r["views"]] == [(0, 1, 0)]
    # Zones with half-hour offsets shift minutes: Kolkata is UTC+5:30, St. John's UTC-2:30 (DST).
    for tz in ("Asia/Kolkata", "America/St_Johns"):
        m = reports.minutes(shop, q(tz=tz, **{"from": "2024-03-10", "to": "2024-03-11"}))
        assert [(r["minute"], r["views"]) for r in m if r["views"]] == [(30, 7), (31, 1)], tz


def test_page_duration(shop: Path) -> None:
    # Time on page: v1 "/" 9 s, v2 "/" 60 s; nothing else has a next view. avg 34.5 -> 34 (even).
    [day] = reports.page_duration(shop, q())
    assert (day["day"], day["path"], day["average_time_spent_seconds"]) == (
        "2024-03-10T00:00:00Z", "", 34,
    )  # fmt: skip
    assert reports.page_duration(shop, q(path="/"))[0]["path"] == "/"
    assert reports.page_duration(shop, q(path="/a"))[0]["average_time_spent_seconds"] == 0
    [week] = reports.page_duration(shop, q(scale="week"))
    assert week["week"] == "2024-03-04T00:00:00Z" and week["average_time_spent_seconds"] == 34


@pytest.mark.parametrize("order", [("b", "a", "c"), ("c", "a", "b")])
def test_event_list_ties_are_ordered_by_metadata(tmp_path: Path, order: tuple[str, ...]) -> None:
    # Three "click" groups with equal count and visitors: the metadata decides, whatever order
    # the rows were written in.
    site = SiteData(tmp_path)
    for i, value in enumerate(order, start=1):
        site.visit(i, i, [(f"{DAY} 10:0{i}:00", "/")], events={0: ("click", {"k": value})})
    site.write()
    got = [r["meta"]["k"] for r in events.event_list(tmp_path, q())]
    assert got == ["a", "b", "c"]
    assert [r["meta"]["k"] for r in events.event_list(tmp_path, q(offset="1", limit="1"))] == ["b"]

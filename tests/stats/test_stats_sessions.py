"""Session list/details and the filter options over the `shop` day (see shop.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from segment_rows import SITE, SiteData
from shop import DAY, build_shop

from trail.stats import options, sessions
from trail.stats.filters import FilterError, parse_filter

NOW = datetime(2024, 3, 20, tzinfo=UTC)


def q(**params: str | list[str]):
    p = {"id": [SITE], "from": [DAY], "to": [DAY]}
    p.update({k: v if isinstance(v, list) else [v] for k, v in params.items()})
    return parse_filter(p, now=NOW)


@pytest.fixture
def shop(site: SiteData) -> Path:
    return build_shop(site)


def test_session_list(shop: Path) -> None:
    rows = sessions.session_list(shop, q())
    # Latest first by the live state's time; visitor ids are strings.
    assert [(r["visitor_id"], r["session_id"]) for r in rows] == [
        ("5", 1), ("4", 2), ("4", 1), ("3", 1), ("2", 1), ("1", 1),
    ]  # fmt: skip
    v1 = rows[-1]
    assert (v1["entry_path"], v1["exit_path"], v1["page_views"], v1["duration_seconds"]) == (
        "/",
        "/a",
        2,
        9,
    )
    assert (v1["time"], v1["start"], v1["is_bounce"]) == (
        "2024-03-10T10:00:09Z",
        "2024-03-10T10:00:00Z",
        False,
    )
    assert (v1["country_code"], v1["entry_title"], v1["exit_title"]) == ("de", "/", "/A")
    assert rows[1]["is_bounce"] is True  # v4/s2
    assert [r["visitor_id"] for r in sessions.session_list(shop, q(limit="2", offset="1"))] == [
        "4",
        "4",
    ]
    assert [r["visitor_id"] for r in sessions.session_list(shop, q(path="/x"))] == ["2"]
    assert [r["visitor_id"] for r in sessions.session_list(shop, q(event="download"))] == ["4"]
    assert [r["visitor_id"] for r in sessions.session_list(shop, q(country="!null"))] == ["2", "1"]


def test_session_details(shop: Path) -> None:
    items = sessions.session_details(shop, q(visitor_id="1", session_id="1"))
    # "/" at 10:00:00 (9 s until "/a"), the signup event 1 ms later, "/a" last (0).
    kinds = [
        ("pv", i["page_view"]["path"]) if i["page_view"] else ("ev", i["event"]["name"])
        for i in items
    ]
    assert kinds == [("pv", "/"), ("ev", "signup"), ("pv", "/a")]
    assert [i["page_view"]["duration_seconds"] for i in items if i["page_view"]] == [9, 0]
    event = items[1]["event"]
    assert (event["meta_keys"], event["meta_values"], event["time"]) == (
        ["plan", "amount"], ["pro", "10"], "2024-03-10T10:00:00Z",
    )  # fmt: skip
    assert items[2]["page_view"]["tag_keys"] == ["author"] and items[0]["event"] is None
    assert sessions.session_details(shop, q(visitor_id="1", session_id="7")) == []
    for missing, given in (
        ("session_id", {"visitor_id": "1"}),
        ("visitor_id", {"session_id": "1"}),
    ):
        with pytest.raises(FilterError) as e:
            sessions.session_details(shop, q(**given))
        assert e.value.field == missing


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("page", {}, ["/", "/a", "/p", "/x"]),
        ("page", {"search": "A"}, ["/a"]),
        ("event", {}, ["download", "signup"]),
        ("metadata", {}, ["amount", "plan"]),
        ("tag", {}, ["author", "kind"]),
        ("tag/value", {"tag": "author"}, ["alice", "bob"]),
        ("tag/value", {"tag": "kind"}, ["post"]),
        ("hostname", {}, ["blog.example.com", "example.com"]),
        ("country", {}, ["de", "us"]),  # empty values are left out
        ("referrer", {}, []),
        ("utm/source", {}, []),
        ("page", {"country": "us"}, ["/", "/a", "/p", "/x"]),  # only site and dates apply
    ],
)
def test_options(shop: Path, name: str, params: dict[str, str], expected: list[str]) -> None:
    assert options.options(shop, q(**params), name) == expected


def test_options_list_and_cap(site: SiteData) -> None:
    assert len(options.OPTIONS) == 17
    for i in range(250):
        site.visit(
            i + 1,
            1,
            [(f"{DAY} 10:00:00", f"/p{i:03d}")]
            + [(f"{DAY} 10:00:0{k}", f"/p{i:03d}") for k in range(1, 1 + (i < 10))],
        )
    site.write()
    got = options.options(site.data_dir, q(), "page")
    # At most 200 values: the most frequent first (/p000../p009 have 2 views), then by name.
    assert len(got) == 200 and got == sorted(got)
    assert "/p000" in got and "/p009" in got and "/p249" not in got
    with pytest.raises(FilterError):
        options.options(site.data_dir, q(), "tag/value")

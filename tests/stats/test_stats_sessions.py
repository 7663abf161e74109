"""Session list/details and the filter options over the `shop` day (see shop.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from segment_rows import SITE, SiteData
from shop import DAY, build_shop

from bench.stats_gen import FIRST_DAY, Generator, write_day
from bench.stats_gen import SITE as GENERATED_SITE
from trail.stats import options, sessions
from trail.stats.filters import Filter, FilterError, parse_filter
from trail.stats.sources import live_states, rows_for
from trail.tasks import compaction

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


def test_session_list_passes_sessions_by_what_they_did_the_day_before(site: SiteData) -> None:
    """The list reads the newest day first; a session whose live state lies on it passes a page
    or event condition met before midnight, in the window."""
    site.visit(1, 1, [("2024-03-10 23:59:50", "/x"), ("2024-03-11 00:00:10", "/y")])
    site.visit(2, 1, [("2024-03-10 23:59:40", "/a"), ("2024-03-11 00:00:20", "/b")],
               events={0: ("signup", {})})  # fmt: skip
    site.visit(3, 1, [("2024-03-11 08:00:00", "/x")], events={0: ("other", {})})
    site.write()

    def listed(**params: str) -> list[tuple[str, str]]:
        p = {"id": [SITE], "from": ["2024-03-10"], "to": ["2024-03-11"]}
        f = parse_filter({**p, **{k: [v] for k, v in params.items()}}, now=NOW)
        return [(r["visitor_id"], r["exit_path"]) for r in sessions.session_list(site.data_dir, f)]

    assert listed() == [("3", "/x"), ("2", "/b"), ("1", "/y")]
    assert listed(path="/x") == [("3", "/x"), ("1", "/y")]
    assert listed(event="signup") == [("2", "/b")]
    assert listed(path="/x", offset="1") == [("1", "/y")]


GENERATED_DAYS = 4
LIST_CASES = [
    {}, {"limit": "7"}, {"offset": "95", "limit": "10"}, {"offset": "1500", "limit": "100"},
    {"offset": "100000"}, {"tz": "America/New_York", "offset": "40"}, {"tz": "Asia/Tokyo"},
    {"from": "2024-03-02", "to": "2024-03-02", "offset": "3"}, {"search": "docs"},
    {"search": "no-such-page"}, {"path": "/"}, {"event": "signup", "offset": "20"},
    {"event": "!signup"}, {"exit_path": "/"}, {"entry_path": "/", "offset": "250"},
    {"country": "de"}, {"platform": "mobile", "offset": "12"}, {"to": "2024-03-09"},
]  # fmt: skip


def naive_session_list(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """The session list read the plain way: every live state of the window, sorted, sliced."""
    rows = rows_for(data_dir, f)
    live = live_states(rows.sessions([*sessions.SESSION_FIELDS, "sign", "version"]))
    if f.search:
        needle = f.search.lower()
        live = live.filter(
            pl.col("exit_path").str.to_lowercase().str.contains(needle, literal=True)
        )
    live = live.sort(["time", "visitor_id", "session_id"], descending=True)
    out = []
    for r in live.slice(f.offset, f.limit).collect().iter_rows(named=True):
        item = {k: r[k] for k in sessions.SESSION_FIELDS}
        item["visitor_id"] = str(r["visitor_id"])
        item["time"], item["start"] = sessions._stamp(r["time"]), sessions._stamp(r["start"])
        item["referrer_icon"] = ""
        out.append(item)
    return out


@pytest.fixture(scope="module", params=["fresh", "compacted"])
def generated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four days of generated traffic: segments with -1 rows, or compacted (sign 0 rows)."""
    root = tmp_path_factory.mktemp(f"sessions-{request.param}")
    g = Generator(page_views=4_000, days=GENERATED_DAYS, seed=9, paths=40)
    for i in range(GENERATED_DAYS):
        write_day(root, i, g.day(i))
    if request.param == "compacted":
        after = FIRST_DAY + timedelta(days=GENERATED_DAYS + 2)
        compaction.run_round(root, now=datetime.combine(after, datetime.min.time(), UTC)
                             .timestamp(), grace=0)  # fmt: skip
    return root


@pytest.mark.parametrize("params", LIST_CASES, ids=repr)
def test_session_list_pages_match_reading_every_session(
    generated: Path, params: dict[str, str]
) -> None:
    """The list reads the newest days first and only the listed rows in full: every page is
    the one the plain full read gives."""
    last = (FIRST_DAY + timedelta(days=GENERATED_DAYS - 1)).isoformat()
    p = {"id": GENERATED_SITE, "from": FIRST_DAY.isoformat(), "to": last, **params}
    f = parse_filter({k: [v] for k, v in p.items()})
    want = naive_session_list(generated, f)
    assert sessions.session_list(generated, f) == want
    if params.get("offset") != "100000" and "no-such-page" not in params.values():
        assert want, "a case that lists nothing would not tell the two apart"


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


@pytest.mark.parametrize("first", ["/b", "/a"])
def test_session_details_at_one_instant_list_by_path(site: SiteData, first: str) -> None:
    """Two views at one instant list by path, whichever was written first (the order the rows
    are read in is not kept, see details_in_order)."""
    second = "/a" if first == "/b" else "/b"
    at = f"{DAY} 10:00:00"
    site.visit(1, 1, [(at, first), (at, second), (f"{DAY} 10:00:05", "/c")])
    site.write()
    items = sessions.session_details(site.data_dir, q(visitor_id="1", session_id="1"))
    views = [(i["page_view"]["path"], i["page_view"]["duration_seconds"]) for i in items]
    assert views == [("/a", 0), ("/b", 5), ("/c", 0)]


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

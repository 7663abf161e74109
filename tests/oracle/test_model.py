"""The reference model pinned by hand-worked examples (§6 conformance scenarios and the rules of
§1, §2, §5 of the semantics notes). If one of these fails, the model is wrong, not trail."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.oracle import model
from tests.oracle.filters import Condition, condition, parse
from tests.oracle.reports import Page, growth
from tests.oracle.sessions import Tables, ingest
from tests.oracle.traffic import SOURCES, Site, Visitor, make_hit

SITE = Site("s", "example.com", "UTC")
DAY = date(2026, 11, 20)
V1 = Visitor(ua=0, network=0, host=1, language=0, screen=5)  # Chrome/Windows, gb, en, Full HD
V2 = Visitor(ua=5, network=1, host=2, language=1, screen=1)  # Safari/iOS, se, de, XS
V3 = Visitor(ua=8, network=3, host=3, language=4, screen=0)  # Chrome OS (unknown), no country
NOW = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)
SOURCE = {s.name: s for s in SOURCES}


def at(clock: str, day: date = DAY) -> int:
    h, m, s = (int(x) for x in clock.split(":"))
    return int(datetime(day.year, day.month, day.day, h, m, s, tzinfo=UTC).timestamp() * 1000)


def pv(clock: str, path: str, v: Visitor = V1, day: date = DAY, **kw: Any) -> dict[str, Any]:
    return make_hit("page_view", at(clock, day), SITE, v, path, follow_up=not kw.get("source"),
                    **kw)  # fmt: skip


def ev(clock: str, name: str, path: str = "/", v: Visitor = V1, **kw: Any) -> dict[str, Any]:
    return make_hit("event", at(clock, kw.pop("day", DAY)), SITE, v, path, event_name=name,
                    follow_up=True, **kw)  # fmt: skip


def ping(clock: str, v: Visitor = V1, path: str = "/", with_url: bool = False) -> dict[str, Any]:
    return make_hit("keep_alive", at(clock), SITE, v, path, follow_up=True, with_url=with_url)


def final_states(t: Tables) -> list[dict[str, Any]]:
    last: dict[Any, dict[str, Any]] = {}
    for r in t.sessions:
        if r["sign"] == 1:
            last[(r["visitor_id"], r["session_id"])] = r
    return list(last.values())


def ask(hits: list[dict[str, Any]], endpoint: str, day: date = DAY, **params: Any) -> Any:
    query = {"from": [day.isoformat()], "to": [day.isoformat()]}
    for k, v in params.items():
        query[k] = v if isinstance(v, list) else [str(v)]
    got = model.answer(ingest(hits), SITE.timezone, endpoint, query, NOW)
    return got.rows if isinstance(got, Page) else got


# -- §6 scenarios 1-4: the session state machine -------------------------------------------------


def test_scenario_1_durations() -> None:
    hits, t = [pv("10:00:00", "/")], 0
    for i, gap in enumerate([9, 2, 5, 3, 10, 7]):
        t += gap
        hits.append(pv(f"10:00:{t:02d}", ["/a", "/b"][i % 2]))
    tables = ingest(hits)
    [s] = final_states(tables)
    assert (s["page_views"], s["duration_seconds"]) == (7, 36)
    assert [p["duration_seconds"] for p in tables.page_views] == [0, 9, 2, 5, 3, 10, 7]
    assert sum(r["sign"] for r in tables.sessions) == 1


@pytest.mark.parametrize(
    ("hits", "page_views", "events", "bounce"),
    [
        # page view, interactive event, page view on the same path: not bounced.
        ([pv("10:00:00", "/"), ev("10:00:01", "signup"), pv("10:00:02", "/")], 2, 1, False),
        # A lone event: a bounced session plus a page view.
        ([ev("10:00:00", "signup")], 1, 1, True),
        # A second event adds no page view and clears the bounce.
        ([ev("10:00:00", "signup"), ev("10:00:05", "signup")], 1, 2, False),
        # A non-interactive event keeps the session bounced.
        ([pv("10:00:00", "/"), ev("10:00:01", "scroll", non_interactive=True)], 1, 1, True),
        # A reload does not un-bounce (§8 "Reloads count as page views but don't clear it").
        ([pv("10:00:00", "/a"), pv("10:00:03", "/a")], 2, 0, True),
    ],
)
def test_scenario_2_bounce(
    hits: list[dict[str, Any]], page_views: int, events: int, bounce: bool
) -> None:
    tables = ingest(hits)
    [s] = final_states(tables)
    assert (len(tables.page_views), len(tables.events), s["is_bounce"]) == (
        page_views, events, bounce,
    )  # fmt: skip


def test_scenario_2_page_view_event_page_view_numbers() -> None:
    [s] = final_states(ingest([pv("10:00:00", "/"), ev("10:00:01", "e"), pv("10:00:02", "/")]))
    assert (s["page_views"], s["duration_seconds"]) == (2, 2)


def test_scenario_3_keep_alive() -> None:
    tables = ingest([pv("10:00:00", "/"), ping("10:00:02")])
    [s] = final_states(tables)
    assert (s["extended"], s["duration_seconds"], s["exit_path"]) == (1, 2, "/")
    [s] = final_states(ingest([pv("10:00:00", "/"), ping("10:00:02"), ping("10:00:04")]))
    assert (s["extended"], s["duration_seconds"], s["page_views"]) == (2, 4, 1)
    # A ping that names a page overwrites the exit page.
    [s] = final_states(ingest([pv("10:00:00", "/"), ping("10:00:02", path="/blog", with_url=True)]))
    assert (s["exit_path"], s["exit_title"]) == ("/blog", "Blog")
    # A ping without a session is dropped.
    tables = ingest([ping("10:00:00")])
    assert tables.sessions == [] and [r for _, r in tables.dropped] == ["no_session"]


def test_scenario_4_campaign_change_starts_a_new_session_of_the_same_visitor() -> None:
    hits = [
        pv("10:00:00", "/", source=SOURCE["gclid"]),  # medium "(gclid)", referrer Google
        pv("10:01:00", "/b", source=SOURCE["newsletter"]),
        pv("10:02:00", "/c"),  # no campaign values: continues the newsletter session
    ]
    tables = ingest(hits)
    assert hits[0]["dims"]["utm_medium"] == "(gclid)"
    views = tables.page_views
    assert views[0]["visitor_id"] == views[1]["visitor_id"] == views[2]["visitor_id"]
    assert views[0]["session_id"] != views[1]["session_id"] == views[2]["session_id"]
    assert views[1]["utm_medium"] == "email"


@pytest.mark.parametrize(
    ("second", "same_session"),
    [("10:30:00", True), ("10:30:01", False)],  # §2 "Timeout 30 minutes since last time"
)
def test_timeout(second: str, same_session: bool) -> None:
    views = ingest([pv("10:00:00", "/"), pv(second, "/a")]).page_views
    assert (views[0]["session_id"] == views[1]["session_id"]) is same_session
    assert views[1]["duration_seconds"] == (1800 if same_session else 0)


def test_midnight_rule_keeps_yesterdays_visitor_id() -> None:
    nxt = DAY + timedelta(days=1)
    hits = [pv("23:50:00", "/a"), pv("00:10:00", "/b", day=nxt), pv("00:35:00", "/c", day=nxt)]
    views = ingest(hits).page_views
    assert len({(p["visitor_id"], p["session_id"]) for p in views}) == 1
    # A session that starts on the next UTC day is another visitor (the salt is per UTC day).
    later = ingest([pv("23:50:00", "/a"), pv("01:00:00", "/b", day=nxt)]).page_views
    assert later[0]["visitor_id"] != later[1]["visitor_id"]


def test_event_time_is_the_session_time_plus_one_ms() -> None:
    tables = ingest([pv("10:00:00", "/"), ev("10:05:00", "signup"), pv("10:06:00", "/a")])
    assert tables.events[0]["time"] == at("10:00:00") + 1
    # the next page view's duration counts from the event's 1 ms: 359.999 s -> 359
    assert tables.page_views[1]["duration_seconds"] == 359


def test_event_metadata_is_tags_overridden_by_meta() -> None:
    hit = ev("10:00:00", "signup", tags={"author": "alice", "plan": "x"},
             event_meta={"plan": "pro", "amount": " 12 "})  # fmt: skip
    [e] = ingest([hit]).events
    assert (e["event_meta_keys"], e["event_meta_values"]) == (
        ["amount", "author", "plan"], ["12", "alice", "pro"],
    )  # fmt: skip


# -- §6 scenarios 7, 8 and the statistics rules of §5 ---------------------------------------------


def test_scenario_7_session_duration() -> None:
    hits = []
    visitors = [Visitor(ua=0, network=0, host=10 + i, language=0, screen=0) for i in range(6)]
    for i, (v, seconds) in enumerate(zip(visitors, [28, 5, 0, 35, 2, 0], strict=True)):
        hits.append(pv(f"1{i}:00:00", "/", v))
        if seconds:
            hits.append(pv(f"1{i}:00:{seconds:02d}", "/a", v))
    got = ask(hits, "duration/session")
    assert got == [{"day": "2026-11-20T00:00:00Z", "week": None, "month": None, "year": None,
                    "average_time_spent_seconds": 18}]  # fmt: skip


@pytest.mark.parametrize(
    ("current", "previous", "want"), [(100, 50, 1.0), (50, 100, -0.5), (0, 0, 0.0), (7, 0, 1.0)]
)
def test_scenario_8_growth(current: int, previous: int, want: float) -> None:
    assert growth(current, previous) == want


def day_of_traffic() -> list[dict[str, Any]]:
    """V1: / -> /pricing -> /pricing (not bounced); V2: /blog (bounced) and, an hour later,
    /blog -> /docs with an event; V3: /pricing (bounced)."""
    return [
        pv("09:00:00", "/", V1, source=SOURCE["google"], tags={"author": "alice"}),
        pv("09:00:30", "/pricing", V1),
        pv("09:01:00", "/pricing", V1),
        pv("10:00:00", "/blog", V2, source=SOURCE["newsletter"]),
        pv("11:00:00", "/blog", V2, source=SOURCE["newsletter"]),
        pv("11:00:10", "/docs", V2),
        ev("11:00:20", "signup", "/docs", V2, event_meta={"plan": "pro"}, event_duration=5),
        pv("12:00:00", "/pricing", V3, source=SOURCE["hn"]),
    ]


def test_total() -> None:
    got = ask(day_of_traffic(), "total")
    assert got == {"visitors": 3, "views": 7, "sessions": 4, "bounces": 2, "bounce_rate": 0.5,
                   "cr": 1.0, "custom_metric_avg": 0.0, "custom_metric_total": 0.0}  # fmt: skip


def test_total_with_a_path_filter_reads_page_views() -> None:
    # /pricing: V1 (2 views, not bounced) and V3 (1 view, bounced); cr against all 3 visitors.
    got = ask(day_of_traffic(), "total", path="/pricing")
    assert (got["visitors"], got["views"], got["sessions"], got["bounces"]) == (2, 3, 2, 1)
    assert got["cr"] == 2 / 3 and got["bounce_rate"] == 0.5


def test_event_filter_selects_whole_sessions() -> None:
    got = ask(day_of_traffic(), "total", event="signup")
    assert (got["visitors"], got["views"], got["sessions"], got["bounces"]) == (1, 2, 1, 0)


def test_negated_event_reads_sessions_without_events_as_an_empty_event() -> None:
    got = ask(day_of_traffic(), "total", event="!signup")
    assert (got["visitors"], got["sessions"]) == (3, 3)  # all but V2's second session


def test_page_report() -> None:
    rows = ask(day_of_traffic(), "page", include_avg_time_on_page="true")
    by_path = {r["path"]: r for r in rows}
    assert [r["path"] for r in rows] == ["/pricing", "/", "/blog", "/docs"]
    pricing = by_path["/pricing"]
    assert (pricing["visitors"], pricing["views"], pricing["sessions"], pricing["bounces"]) == (
        2, 3, 2, 1,
    )  # fmt: skip
    assert pricing["relative_views"] == 3 / 7 and pricing["bounce_rate"] == 0.5
    # Time on page: "/" 30 s (the next view's duration); /pricing 30 s then 0 (reload, last)
    # -> 30; /blog 10 s in V2's second session, 0 in the bounced one -> 10; /docs: the event
    # does not count, the session has no later view -> 0.
    assert {p: r["average_time_spent_seconds"] for p, r in by_path.items()} == {
        "/": 30, "/pricing": 30, "/blog": 10, "/docs": 0,
    }  # fmt: skip


def test_time_on_page_rounds_half_to_even() -> None:
    v = [Visitor(ua=0, network=0, host=20 + i, language=0, screen=0) for i in range(2)]
    hits = [pv("10:00:00", "/", v[0]), pv("10:00:02", "/a", v[0]),
            pv("11:00:00", "/", v[1]), pv("11:00:03", "/a", v[1])]  # fmt: skip
    rows = ask(hits, "page", include_avg_time_on_page="true")
    assert {r["path"]: r["average_time_spent_seconds"] for r in rows}["/"] == 2  # 2.5 -> 2


def test_entry_and_exit_pages() -> None:
    entries = {r["path"]: r for r in ask(day_of_traffic(), "page/entry")}
    assert {p: r["entries"] for p, r in entries.items()} == {"/": 1, "/blog": 2, "/pricing": 1}
    assert entries["/blog"]["entry_rate"] == 0.5
    # visitors and sessions are the page's own totals from page views
    assert (entries["/pricing"]["visitors"], entries["/pricing"]["sessions"]) == (2, 2)
    exits = {r["path"]: r["exits"] for r in ask(day_of_traffic(), "page/exit")}
    assert exits == {"/pricing": 2, "/blog": 1, "/docs": 1}


def test_referrer_and_relative_visitors() -> None:
    rows = ask(day_of_traffic(), "referrer")
    assert [(r["referrer_name"], r["visitors"], r["sessions"], r["bounces"]) for r in rows] == [
        ("Google", 1, 1, 0), ("Hacker News", 1, 1, 1), ("newsletter", 1, 2, 1),
    ]  # fmt: skip
    assert rows[0]["relative_visitors"] == 1 / 3 and rows[0]["referrer"] == "https://www.google.com"


def test_platform() -> None:
    got = ask(day_of_traffic(), "platform")
    assert (got["platform_desktop"], got["platform_mobile"], got["platform_unknown"]) == (1, 1, 1)


def test_events_report() -> None:
    hits = day_of_traffic() + [
        ev("12:00:05", "signup", "/pricing", V3, event_meta={"plan": "free"}, event_duration=2),
    ]
    [row] = ask(hits, "events")
    # views: the live views of the two sessions (V2's second: 2, V3's: 1).
    assert row == {"name": "signup", "count": 2, "visitors": 2, "views": 3, "cr": 2 / 3,
                   "average_duration_seconds": 3, "meta_keys": ["plan"]}  # fmt: skip
    meta = ask(hits, "event/meta", event="signup", event_meta_key="plan")
    assert [(r["meta_value"], r["count"]) for r in meta] == [("free", 1), ("pro", 1)]


def test_hours_read_page_views() -> None:
    rows = ask(day_of_traffic(), "hours")
    assert {r["hour"]: r["views"] for r in rows if r["views"]} == {9: 3, 10: 1, 11: 2, 12: 1}
    assert rows[11]["bounces"] == 0 and rows[10]["bounces"] == 1


def test_a_session_crossing_midnight() -> None:
    """§1 "a session that crosses midnight counts as a visitor on both days; its views and
    bounces land on the day of its final time"; trail counts the session there too (see
    selection.py: the deliberate difference from Pirsch's distinct pairs)."""
    nxt = DAY + timedelta(days=1)
    hits = [pv("10:00:00", "/docs", V2), pv("23:55:00", "/blog"), pv("00:05:00", "/about", day=nxt)]
    first = ask(hits, "total")
    assert (first["visitors"], first["sessions"], first["views"], first["bounces"]) == (2, 1, 1, 1)
    second = ask(hits, "total", day=nxt)
    assert (second["visitors"], second["sessions"], second["views"]) == (1, 1, 2)


def test_a_group_of_sessions_that_end_elsewhere_keeps_its_visitor() -> None:
    """On the first day the crossing session's group has only a cancelled state: it shows its
    visitor with no session (Pirsch drops groups with sum(sign) <= 0; trail keeps every group
    that shows a visitor, like the visitor series does)."""
    nxt = DAY + timedelta(days=1)
    hits = [pv("10:00:00", "/docs", V2), pv("23:55:00", "/blog"), pv("00:05:00", "/about", day=nxt)]
    assert [(r["os"], r["visitors"]) for r in ask(hits, "os")] == [("Windows", 1), ("iOS", 1)]
    [day] = ask(hits, "visitor", os="Windows")
    assert (day["visitors"], day["sessions"], day["views"]) == (1, 0, 0)


def test_options_ignore_filters() -> None:
    assert ask(day_of_traffic(), "options/page", path="/blog") == [
        "/",
        "/blog",
        "/docs",
        "/pricing",
    ]
    assert ask(day_of_traffic(), "options/referrer/name", search="NEWS") == [
        "Hacker News", "newsletter",
    ]  # fmt: skip


def test_active_visitors() -> None:
    now = at("12:05:00")
    hits = day_of_traffic()
    got = model.answer(ingest(hits), "UTC", "active", {"start": ["600"]}, now)
    assert got["visitors"] == 1 and got["stats"] == [
        {"path": "/pricing", "title": "Pricing", "visitors": 1}
    ]


# -- the filter language (§5 Filters) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "is_list", "value", "want"),
    [
        (["en"], False, "en", True),
        (["en"], False, "EN", False),  # equality is exact
        (["!en"], False, "en", False),
        (["!en"], False, "", True),
        (["~BLO"], False, "/blog", True),  # contains, case-insensitive
        (["^blo"], False, "/Blog", False),
        (["null"], False, "", True),
        (["!null"], False, "", False),
        (["en", "de"], False, "de", True),  # positives OR
        (["!en", "!de"], False, "de", False),  # negatives AND
        (["~o", "!/about"], False, "/about", False),
        (["~en,de"], True, "de", True),  # language/country: a list
        (["~en,de"], True, "fr", False),
        (["^en,de"], True, "fr", True),
        (["~en,null"], True, "", True),
    ],
)
def test_condition(values: list[str], is_list: bool, value: str, want: bool) -> None:
    assert condition(values, is_list).matches(value) is want


def test_parse() -> None:
    q = parse({"from": ["2026-11-20"], "to": ["2026-11-20"], "path": ["/a"], "pattern": ["x"],
               "limit": ["0"], "platform": ["!mobile"], "tag_author": ["alice"], "sort": [""],
               "meta_plan": ["~pr"]}, "Europe/Berlin")  # fmt: skip
    assert q.pattern is None  # §5 "A `path` filter overrides `pattern`"
    assert q.limit == 100 and q.sort is None and q.tz.key == "Europe/Berlin"
    assert q.platform == [("mobile", True)]
    assert q.tags == {"author": Condition(equal=["alice"])}
    assert q.meta == {"plan": Condition(contains=["pr"])}


def test_tag_filter_reads_page_views() -> None:
    got = ask(day_of_traffic(), "total", tag_author="alice")
    assert (got["visitors"], got["views"], got["sessions"], got["bounces"]) == (1, 1, 1, 0)
    got = ask(day_of_traffic(), "total", tag_author="null")  # views without the tag
    assert got["views"] == 6


def test_time_window_in_a_time_zone() -> None:
    # 23:30 UTC on DAY is 00:30 the next day in Berlin.
    hits = [pv("23:30:00", "/", V1)]
    berlin = {"from": [(DAY + timedelta(days=1)).isoformat()], "to": [(DAY + timedelta(days=1)).isoformat()],
              "tz": ["Europe/Berlin"]}  # fmt: skip
    assert model.answer(ingest(hits), "UTC", "total", berlin, NOW)["visitors"] == 1
    assert ask(hits, "total", tz="Europe/Berlin")["visitors"] == 0
    rows = model.answer(ingest(hits), "UTC", "hours", berlin, NOW)
    assert rows[0]["views"] == 1  # hour 0 in Berlin


def test_entry_pages_under_a_path_filter() -> None:
    """Entries: the sessions that viewed the filtered page, by their entry page; visitors and
    sessions: the listed page's own totals, page conditions left out (Pirsch pages.go
    `totalVisitorsSessions`)."""
    hits = [pv("10:00:00", "/", V1), pv("10:00:10", "/pricing", V1), pv("10:00:20", "/about", V1),
            pv("11:00:00", "/pricing", V2)]  # fmt: skip
    rows = ask(hits, "page/entry", path="/pricing")
    assert [(r["path"], r["entries"], r["visitors"], r["sessions"]) for r in rows] == [
        ("/", 1, 1, 1), ("/pricing", 1, 2, 2),
    ]  # fmt: skip
    exits = ask(hits, "page/exit", path="/pricing")
    assert [(r["path"], r["exits"]) for r in exits] == [("/about", 1), ("/pricing", 1)]


def test_exit_path_filter_reads_the_live_state() -> None:
    """A session whose exit was /pricing before it moved on does not match exit_path=/pricing."""
    hits = [pv("10:00:00", "/pricing", V1), pv("10:00:10", "/about", V1),
            pv("11:00:00", "/pricing", V2)]  # fmt: skip
    got = ask(hits, "total", exit_path="/pricing")
    assert (got["visitors"], got["sessions"], got["views"]) == (1, 1, 1)


def test_event_reports_read_page_conditions_on_the_event() -> None:
    hits = [pv("10:00:00", "/", V1), ev("10:00:10", "signup", "/", V1, tags={"author": "bob"}),
            pv("11:00:00", "/docs", V2), ev("11:00:10", "download", "/docs", V2)]  # fmt: skip
    assert [r["name"] for r in ask(hits, "events", pattern="^/docs")] == ["download"]
    assert [r["name"] for r in ask(hits, "events", tag_author="bob")] == ["signup"]


def test_minute_bounces_are_per_page_view_minute() -> None:
    # A bounced session (a reload) with views in minutes 0 and 1 bounces in both.
    rows = ask([pv("10:00:30", "/", V1), pv("10:01:30", "/", V1)], "minutes")
    assert (rows[0]["bounces"], rows[1]["bounces"]) == (1, 1)


def test_time_on_page_belongs_to_the_day_of_the_page_view() -> None:
    nxt = DAY + timedelta(days=1)
    keep_alive = make_hit("keep_alive", at("00:05:00", nxt), SITE, V1, "/", follow_up=True)
    hits = [pv("23:50:00", "/", V1), keep_alive, pv("00:10:00", "/pricing", V1, day=nxt)]
    rows = ask(hits, "duration/page", to=[nxt.isoformat()])
    # the keep-alive moved the session's time: /pricing's duration counts from it (300 s)
    assert [r["average_time_spent_seconds"] for r in rows] == [300, 0]


def test_growth_time_spent_follows_the_filter() -> None:
    before = DAY - timedelta(days=7)  # §5: a single day compares with 7 days earlier
    hits = [
        pv("10:00:00", "/", V1, day=before),
        ev("10:00:05", "signup", "/", V1, day=before, event_duration=30),
        pv("10:00:50", "/pricing", V1, day=before),
        pv("10:00:00", "/", V2),
        ev("10:00:05", "signup", "/", V2, event_duration=10),
        pv("10:00:10", "/pricing", V2),
    ]
    # an event filter compares event durations: 10 against 30
    assert ask(hits, "growth", event="signup")["time_spent_growth"] == (10 - 30) / 30
    # no filter: session durations, 10 against 50
    assert ask(hits, "growth")["time_spent_growth"] == (10 - 50) / 50


def test_custom_metric() -> None:
    hits = [pv("10:00:00", "/", V1), ev("10:00:05", "buy", "/", V1, event_meta={"amount": "12"}),
            pv("11:00:00", "/", V2), ev("11:00:05", "buy", "/", V2, event_meta={"amount": "abc"}),
            ev("11:00:09", "buy", "/", V2, event_meta={"amount": "3"})]  # fmt: skip
    metric: dict[str, Any] = {
        "event": "buy",
        "custom_metric_key": "amount",
        "custom_metric_type": "integer",
    }
    got = ask(hits, "total", **metric)
    assert (got["custom_metric_avg"], got["custom_metric_total"]) == (7.5, 15.0)  # "abc" skipped
    hours = ask(hits, "hours", **metric)
    assert (hours[10]["custom_metric_total"], hours[11]["custom_metric_total"]) == (12.0, 3.0)

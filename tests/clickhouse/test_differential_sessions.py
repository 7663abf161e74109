"""The session and comparison reports from ClickHouse against the embedded engine, with what
the random queries of test_differential.py do not give them: one session's details (its ids
taken from the session list), active visitors of hits a minute old, growth and overview against
their compare windows (today's against the same weekday a week earlier, up to the time of day),
and a session with two page views and two events at one instant (its details and its time on
page from ClickHouse as from the embedded engine).

One server (storage = "embedded") ingests the traffic and answers; the rows are shipped to
chDB; a second server on the same data directory with storage = "clickhouse", its segment
files moved away, answers the same queries (so every answer is ClickHouse's). The windows that
depend on the clock, and the session at one instant, are compared with the report functions
called directly for a fixed `now` (ClickHouse's in a process of its own: chDB holds its
directory).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.clickhouse.drawing import busy_traffic, drawn
from tests.clickhouse.test_differential import _ask, _describe, _sealed
from tests.clickhouse.test_schema import ROOT
from tests.clickhouse.traffic import FAST_SEAL, ship_all
from tests.oracle.harness import BATCH, batches, renamed
from tests.oracle.traffic import (
    Site,
    Visitor,
    make_hit,
    unique_times,
    visit,
)
from tests.server import TrailServer
from trail.stats import events, pages, reports, sessions
from trail.stats.filters import parse_filter
from trail.stats.sources import Rows

HOUR_MS, DAY_MS = 3_600_000, 86_400_000
WEEK_MS = 7 * DAY_MS
TRAFFICS = 3
TIES = Site("ties", "ties.sessions.test", "UTC")
SOMEONE = Visitor(ua=0, network=0, host=7, language=0, screen=0)
AMOUNT = {"custom_metric_key": ["amount"], "custom_metric_type": ["float"]}


def _traffic(now: int) -> tuple[list[Site], list[dict[str, Any]]]:
    """Three of the oracle's traffics plus a visit a minute or two old, visits a week ago on
    either side of the time of day (none within an hour of it, so both servers' compare windows
    of today hold the same rows), and a site whose session has two page views and two events
    at one instant."""
    site_list: list[Site] = []
    hits: list[dict[str, Any]] = []
    for i in range(TRAFFICS):
        t = renamed(busy_traffic(2601 + i, now=now), f"ses{i}")
        site_list += [replace(site, key=f"{i}-{site.key}") for site in t.sites]
        hits += [{**h, "site": f"{i}-{h['site']}"} for h in t.hits]
    week_ago = now - WEEK_MS
    hits = [h for h in hits if not week_ago - HOUR_MS <= h["time"] <= week_ago + 2 * HOUR_MS]
    for i, start in enumerate((week_ago - 3 * HOUR_MS, week_ago + 3 * HOUR_MS)):
        hits += drawn(visit(site_list[0], SOMEONE, start), 2700 + i, 3)[-1]
    for i, path in enumerate(["/", "/blog", "/pricing"]):  # a visitor active a minute ago
        hits.append(make_hit("page_view", now - 150_000 + i * 30_000, site_list[0], SOMEONE,
                             path, follow_up=i > 0))  # fmt: skip
    hits = unique_times(hits, now)
    tied = (now // DAY_MS - 2) * DAY_MS + 12 * HOUR_MS
    for kind, at, path in [("page_view", 0, "/pricing"), ("page_view", 0, "/"),
                           ("event", 10, "/pricing"), ("event", 10, "/pricing"),
                           ("page_view", 70, "/docs"), ("page_view", 95, "/")]:  # fmt: skip
        extra = {"event_name": "signup", "event_duration": 5} if kind == "event" else {}
        hits.append(make_hit(kind, tied + at * 1000, TIES, SOMEONE, path,
                             follow_up=at > 0, **extra))  # fmt: skip
    return [*site_list, TIES], hits


def _queries(
    sites: dict[str, tuple[str, str]], now: int
) -> list[tuple[str, str, dict[str, list[str]]]]:
    """(report, site id, params) for every site: site key -> (id, time zone)."""
    out: list[tuple[str, str, dict[str, list[str]]]] = []
    for site_id, tz in sites.values():
        today = datetime.fromtimestamp(now / 1000, UTC).astimezone(ZoneInfo(tz)).date()

        def days(a: int, b: int, today: date = today) -> dict[str, list[str]]:
            return {"from": [(today - timedelta(days=a)).isoformat()],
                    "to": [(today - timedelta(days=b)).isoformat()]}  # fmt: skip

        week = days(8, 0)
        amounts = ({**days(3, 0), **AMOUNT, "event": ["download"]},
                   {**days(1, 1), **AMOUNT, "event": ["signup", "download"],
                    "custom_metric_type": ["integer"]})  # fmt: skip
        for p in (days(0, 0), days(1, 1), days(3, 3), week, days(4, 2),
                  {**days(0, 0), "path": ["/"]}, {**week, "path": ["/pricing"]},
                  {**week, "event": ["signup"]}, {**week, "browser": ["!Firefox"]},
                  {**days(2, 2), "pattern": ["^/blog"]}, *amounts):  # fmt: skip
            out.append(("growth", site_id, p))
        for p in ({}, week, {**days(0, 0), "path": ["~o"]}, {"tz": ["Asia/Kolkata"]},
                  {**AMOUNT, "event": ["signup"]}):  # fmt: skip
            out.append(("overview", site_id, p))
        for p in ({"start": ["3600"]}, {"start": ["3600"], "path": ["~o"]},
                  {"start": ["3600"], "country": ["!de"], "event": ["!nope"]}):  # fmt: skip
            out.append(("active", site_id, p))
        for name in ("duration/session", "duration/page"):
            for p in (week, {**week, "scale": ["week"]}, {**week, "path": ["/"]},
                      {**week, "pattern": ["^/(docs|about)"], "scale": ["month"]},
                      {**week, "event": ["signup"]}, {**days(2, 2), "entry_path": ["/"]}):  # fmt: skip
                out.append((name, site_id, p))
        for p in (week, {**week, "limit": ["3"], "offset": ["2"]}, {**week, "search": ["o"]},
                  {**week, "path": ["/pricing"]}, {**week, "exit_path": ["!/"]}, days(0, 0)):  # fmt: skip
            out.append(("session/list", site_id, p))
    return out


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The traffic ingested by an embedded server, its answers, and the rows shipped to chDB."""
    data = tmp_path_factory.mktemp("sessions") / "data"
    now = int(time.time() * 1000)
    site_list, hits = _traffic(now)
    s = TrailServer(data, workers=2, env=FAST_SEAL).start()
    try:
        ids, keys = {}, {}
        for site in site_list:
            ids[site.key], keys[site.key] = s.create_site(site.hostname, site.timezone)
        for kind, site_key, bodies in batches(sorted(hits, key=lambda h: h["time"])):
            r = s.call("POST", BATCH[kind], bodies, key=keys[site_key])
            assert r.status == 200, r.body
        _sealed(data)
        time.sleep(1)  # a last sealing round after the WAL files went
        sites = {site.key: (ids[site.key], site.timezone) for site in site_list}
        queries = _queries({k: v for k, v in sites.items() if k != TIES.key}, now)
        answers = [_ask(s, name, {"id": [site], **p}) for name, site, p in queries]
        queries += _details(queries, answers, sites, now)
        asked = len(answers)
        answers += [_ask(s, name, {"id": [site], **p}) for name, site, p in queries[asked:]]
    finally:
        s.stop()
    url = f"chdb://{data.parent / 'ch'}"
    ship_all(data, url)
    return {"data": data, "url": url, "now": now, "sites": sites, "queries": queries,
            "answers": answers, "key": s.admin_key}  # fmt: skip


def _details(
    queries: list[tuple[str, str, dict[str, list[str]]]],
    answers: list[tuple[int, Any]],
    sites: dict[str, tuple[str, str]],
    now: int,
) -> list[tuple[str, str, dict[str, list[str]]]]:
    """session/details of every session the week's session lists show."""
    out, seen = [], set()
    for (name, site, p), (status, listed) in zip(queries, answers, strict=True):
        if name != "session/list" or status != 200 or set(p) != {"from", "to"}:
            continue
        for item in listed:
            key = (site, item["visitor_id"], item["session_id"])
            if key not in seen:
                seen.add(key)
                ids = {"visitor_id": [item["visitor_id"]], "session_id": [str(item["session_id"])]}
                out.append(("session/details", site, {**p, **ids}))
    assert len(out) >= 10  # sessions to look at, on every site
    assert {site for _, site, _ in out} == {site for k, (site, _) in sites.items() if k != TIES.key}
    return out


def test_the_session_reports_answer_like_the_embedded_engine(loaded: dict[str, Any]) -> None:
    data, url = loaded["data"], loaded["url"]
    env = {**FAST_SEAL, "TRAIL_STORAGE": "clickhouse", "TRAIL_CLICKHOUSE_URL": url}
    # without the segment files, an answer from the embedded engine would differ
    (data / "segments").rename(data / "segments.shipped")
    s = TrailServer(data, workers=1, env=env)
    try:
        s.start(timeout=120)
        s.admin_key = loaded["key"]
        got = [_ask(s, name, {"id": [site], **p}) for name, site, p in loaded["queries"]]
    finally:
        if s.proc is not None:
            s.stop()
        (data / "segments.shipped").rename(data / "segments")
    log = (data.parent / f"server-{s.port}.log").read_text()
    assert "clickhouse reports read chdb://" in log
    assert "from the embedded engine" not in log  # no Busy fallback
    wrong = [
        (name, p, want, answer)
        for (name, _, p), want, answer in zip(
            loaded["queries"], loaded["answers"], got, strict=True
        )
        if answer != want
    ]
    assert not wrong, _describe(wrong)
    by_name: dict[str, list[Any]] = {}
    for (name, _, _), (status, answer) in zip(loaded["queries"], got, strict=True):
        assert status == 200, (name, answer)
        by_name.setdefault(name, []).append(answer)
    # the answers are not empty: the traffic reaches every report
    assert any(a["visitors"] for a in by_name["active"])
    assert any(a["visitors_growth"] not in (0.0, 1.0) for a in by_name["growth"])
    assert any(a["time_spent_growth"] for a in by_name["growth"])
    assert any(a["visitors_time_series"] for a in by_name["overview"])
    assert any(any(d["average_time_spent_seconds"] for d in a) for a in by_name["duration/page"])
    assert any(any(d["average_time_spent_seconds"] for d in a)
               for a in by_name["duration/session"])  # fmt: skip
    assert any(len(a) > 3 for a in by_name["session/details"])


# -- the report functions, for a fixed `now` ----------------------------------------------------

SCRIPT = """
import sys, orjson
from datetime import UTC, datetime
from trail.clickhouse.client import connect
from trail.clickhouse import reports, reports_events
from trail.clickhouse import reports_sessions as rs
from trail.clickhouse.rows import Unsupported
from trail.stats.filters import parse_filter
from trail.stats.sources import Rows
client = connect(sys.argv[1])
calls = {
    "active": lambda f, now: rs.active(client, "trail", f, now),
    "growth": lambda f, now: rs.growth(client, "trail", f, now),
    "overview": lambda f, now: rs.overview(client, "trail", f, now),
    "duration/page": lambda f, now: rs.page_duration(client, "trail", f),
    "session/details": lambda f, now: rs.session_details(client, "trail", f),
    "page": lambda f, now: reports.page(client, "trail", f),
    "page/entry": lambda f, now: reports.entry_pages(client, "trail", f),
    "event/page": lambda f, now: reports_events.event_pages(client, "trail", f),
}
out = []
for name, params, now in orjson.loads(sys.stdin.read()):
    try:
        out.append(calls[name](parse_filter(params), datetime.fromtimestamp(now / 1000, UTC)))
    except Unsupported as e:
        out.append({"unsupported": e.field})
print(orjson.dumps(out).decode())
"""


def _embedded(data: Path, name: str, params: dict[str, list[str]], now: int) -> Any:
    f, at = parse_filter(params), datetime.fromtimestamp(now / 1000, UTC)
    if name == "active":
        return pages.active(data, f, at)
    if name == "growth":
        return reports.growth(data, f, at)
    if name == "overview":
        return reports.overview(data, f, at)
    if name == "duration/page":
        return reports.page_duration(data, f)
    if name == "page":
        return pages.page(data, f)
    if name == "page/entry":
        return pages.entry_pages(data, f)
    if name == "event/page":
        return events.event_pages(data, f)
    return sessions.session_details(data, f)


def _recent_hits(data: Path, site: str, now: int) -> list[int]:
    """The times (ms) of the page views of the last minutes."""
    f = parse_filter({"id": [site], "start": ["3600"]})
    start = datetime.fromtimestamp((now - HOUR_MS) / 1000, UTC)
    rows = Rows(data, f, start, datetime.fromtimestamp(now / 1000 + 60, UTC))
    pv = rows.page_views(["time"]).collect()
    return sorted(int(t.timestamp() * 1000) for t in pv["time"])


def test_clock_windows_and_ties_for_a_fixed_now(loaded: dict[str, Any]) -> None:
    data, now = loaded["data"], loaded["now"]
    first_id, first_tz = next(iter(loaded["sites"].values()))
    ties_id = loaded["sites"][TIES.key][0]
    recent = _recent_hits(data, first_id, now)
    assert len(recent) >= 3
    asked: list[tuple[str, dict[str, list[str]], int]] = []
    # active: [now - start, now + 1 s) starting exactly on a recent view, and a millisecond later
    for start_s in (600, 3600):
        for at in (recent[1] + start_s * 1000, recent[1] + start_s * 1000 + 1):
            asked.append(("active", {"id": [first_id], "start": [str(start_s)]}, at))
    # growth and overview of today: the compare window ends a week before `now`
    today = datetime.fromtimestamp(now / 1000, UTC).astimezone(ZoneInfo(first_tz)).date()
    day = {"from": [today.isoformat()], "to": [today.isoformat()], "tz": [first_tz]}
    for at in (now, now - 2 * HOUR_MS, now + 2 * HOUR_MS):
        asked += [("growth", {"id": [first_id], **day}, at),
                  ("growth", {"id": [first_id], **day, "path": ["/"]}, at),
                  ("overview", {"id": [first_id], "tz": [first_tz]}, at)]  # fmt: skip
    # two page views and two events of one session at one instant
    tied_day = datetime.fromtimestamp((now // DAY_MS - 2) * DAY_MS / 1000, UTC).date().isoformat()
    span = {"id": [ties_id], "from": [tied_day], "to": [tied_day]}
    listed = sessions.session_list(data, parse_filter(span))
    assert len(listed) == 1
    one = {"visitor_id": [listed[0]["visitor_id"]], "session_id": [str(listed[0]["session_id"])]}
    timed = {**span, "include_avg_time_on_page": ["true"]}
    asked.append(("session/details", {**span, **one}, now))  # rows at one instant by columns
    tied = [("duration/page", span, now), ("growth", {**span, "path": ["/"]}, now),
            ("page", timed, now), ("page/entry", timed, now),
            ("event/page", {**timed, "event": ["signup"]}, now)]  # fmt: skip
    asked += tied
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, loaded["url"]],
        input=orjson.dumps(asked).decode(), cwd=ROOT, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = orjson.loads(done.stdout.splitlines()[-1])
    # the time on a page pairs a view with the next one, those at one instant in
    # trail.stats.kernels.TIE_ORDER: ClickHouse answers as the embedded engine
    for (name, params, at), answer in zip(asked, got, strict=True):
        want = orjson.loads(orjson.dumps(_embedded(data, name, params, at)))
        assert answer == want, (name, params, at)
    timed = got[-len(tied) :]
    assert timed[0][0]["average_time_spent_seconds"] > 0  # duration/page of the tied day
    assert any(row.get("average_time_spent_seconds") for row in timed[2]), timed[2]  # page
    actives = [a["visitors"] for (name, _, _), a in zip(asked, got, strict=False)
               if name == "active"]  # fmt: skip
    assert actives[0] > 0 and actives[1] <= actives[0]
    # the tied session: four page views, two of them at one instant (sent /pricing first),
    # listed by path at that instant, then two events at one instant
    details = _embedded(data, "session/details", {**span, **one}, now)
    views = [(d["page_view"]["path"], d["page_view"]["duration_seconds"])
             for d in details if d["page_view"]]  # fmt: skip
    assert views == [("/", 0), ("/pricing", 70), ("/docs", 25), ("/", 0)], details
    assert sum(1 for d in details if d["event"]) == 2, details

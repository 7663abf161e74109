"""Date windows through a real server: every statistics report, every TinyTrail report and the
admin aggregation answer 200 or 400 (never 500), quickly, for far past, far future, huge and
reversed windows, over a site whose segments also hold damaged rows (times in year 0 and 9999).

The rule (trail.stats.filters, trail.stats.buckets, trail.services.tinytrail_reports): a reversed
window is a 400 naming `from` / `start_date`; dates are moved into [1970-01-01, tomorrow]; a
series report holds at most MAX_BUCKETS buckets, else a 400 naming `from` / `start_date`.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import polars as pl
import pytest
from segment_rows import SiteData

from tests.server import Reply, TrailServer, request
from trail.api.tinytrail.reports import REPORT_PATHS
from trail.services.statistics import CONTEXT_REPORTS, REPORTS
from trail.stats.buckets import MAX_BUCKETS

DAY = "2024-03-10"
SERIES = {"visitor", "duration/session", "duration/page", "overview"}
# Parameters some reports require, so that they answer 200 when the window is fine.
EXTRA = {
    "event": "signup",
    "event_meta_key": "plan",
    "tag": "author",
    "visitor_id": "1",
    "session_id": "1",
}
FAR_PAST = ("0001-01-01", "0001-01-31")
FAR_FUTURE = ("9999-01-01", "9999-12-31")
HUGE = ("0001-01-01", "9999-12-31")
REVERSED = ("2024-03-12", "2024-03-01")
# Slow enough to notice a scan of every day since year 1 (minutes), fast enough for a busy CI.
SECONDS = 8.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    data = tmp_path_factory.mktemp("windows") / "data"
    data.mkdir()
    s = TrailServer(data, workers=1, env={"TRAIL_RATE_LIMIT_API": "100000/60"}).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def site(server: TrailServer) -> str:
    """One visitor on DAY, plus damaged rows: in DAY's directory and in year 0/9999 ones."""
    site_id, _ = server.create_site("windows.example")
    data = SiteData(server.data_dir, site_id)
    data.visit(
        1, 1, [(f"{DAY} 10:00:00", "/"), (f"{DAY} 10:00:09", "/a")], events={1: ("signup", {})}
    )
    data.write()
    for table in ("sessions", "page_views", "events"):
        day_dir = server.data_dir / "segments" / table / f"site={site_id}" / f"day={DAY}"
        row = pl.read_ipc(next(day_dir.glob("*.arrow"))).head(1)
        for ms, day in ((-62_167_219_200_000, "0000-01-01"), (253_402_300_799_000, "9999-12-31")):
            bad = row.with_columns(time=pl.lit(ms, pl.Int64).cast(pl.Datetime("ms", "UTC")))
            bad.write_ipc(day_dir / f"bad-{day}.arrow")
            other = day_dir.parent / f"day={day}"
            other.mkdir(exist_ok=True)
            bad.write_ipc(other / "bad.arrow")
    return site_id


def timed(call: Any) -> Reply:
    t0 = time.monotonic()
    reply = call()
    assert time.monotonic() - t0 < SECONDS
    assert reply.status in (200, 400), reply.body
    return reply


def pirsch(server: TrailServer, site: str, name: str, frm: str, to: str, **params: str) -> Reply:
    query = urllib.parse.urlencode({"id": site, "from": frm, "to": to, **params})
    path = f"/api/v1/statistics/{name}?{query}"
    return timed(lambda: server.call("GET", path, key=server.admin_key))


def tinytrail(server: TrailServer, path: str, body: Any = None, **params: Any) -> Reply:
    query = urllib.parse.urlencode(params, doseq=True)
    headers = {"Content-Type": "application/json", "X-API-KEY": server.admin_key or ""}
    method = "GET" if body is None else "POST"
    return timed(lambda: request(method, f"{server.url}{path}?{query}", body, headers))


def field_of(reply: Reply) -> str:
    """The field a Pirsch 400 names."""
    return next(iter(reply.json()["validation"]))


@pytest.mark.parametrize("window", [FAR_PAST, FAR_FUTURE, HUGE, REVERSED], ids=str)
def test_every_statistics_report(server: TrailServer, site: str, window: tuple[str, str]) -> None:
    for name in [*REPORTS, *CONTEXT_REPORTS]:
        for scale in ("day", "year"):
            r = pirsch(server, site, name, *window, scale=scale, **EXTRA)
            if window == REVERSED:
                assert (r.status, field_of(r)) == (400, "from"), name
            elif window == HUGE and name in SERIES and (scale == "day" or name == "overview"):
                assert (r.status, field_of(r)) == (400, "from"), name
                assert str(MAX_BUCKETS) in r.json()["validation"]["from"]
            elif name != "funnel":  # no funnel with the id given: 400 naming funnel_id
                assert r.status == 200, (name, window, r.body)


def test_far_windows_are_moved_to_the_dates_that_can_have_rows(
    server: TrailServer, site: str
) -> None:
    total = pirsch(server, site, "total", *HUGE).json()
    assert (total["visitors"], total["views"], total["sessions"]) == (
        1,
        2,
        1,
    )  # damaged rows: not read
    assert [s["visitor_id"] for s in pirsch(server, site, "session/list", *HUGE).json()] == ["1"]
    past = pirsch(server, site, "visitor", *FAR_PAST).json()
    assert [b["day"] for b in past] == ["1970-01-01T00:00:00Z"]
    assert len(pirsch(server, site, "visitor", *FAR_FUTURE).json()) == 1  # tomorrow
    years = pirsch(server, site, "visitor", *HUGE, scale="year").json()
    assert years[0]["year"] == "1970-01-01T00:00:00Z" and sum(y["views"] for y in years) == 2


@pytest.mark.parametrize("report", REPORT_PATHS)
def test_every_tinytrail_report(server: TrailServer, site: str, report: str) -> None:
    common = {"website_id": site, "steps[]": ["/", "/a"]}
    windows: list[dict[str, str]] = [
        {"period": "all"},
        {"start_date": FAR_PAST[0], "end_date": FAR_PAST[1]},
        {"start_date": FAR_FUTURE[0], "end_date": FAR_FUTURE[1]},
        {"start_date": HUGE[0], "end_date": HUGE[1]},
        {"start_date": HUGE[0]},
        {"end_date": FAR_PAST[0]},
        {"end_date": FAR_FUTURE[1]},
        {"start_date": REVERSED[0], "end_date": REVERSED[1]},
    ]
    for window in windows:
        for extra in ({}, {"compare": "yoy"}, {"compare": "previous_period", "include_bots": "1"}):
            r = tinytrail(server, report, **common, **window, **extra)
            message = r.json()["error"]["message"] if r.status == 400 else ""
            reversed_ = window.get("start_date") == REVERSED[0]
            long_ = window.get("start_date") == HUGE[0] and window.get("end_date") != FAR_PAST[1]
            too_long = long_ and report.endswith("/timeseries")
            if reversed_ or too_long:
                assert r.status == 400 and message.startswith("start_date:"), message
            else:
                assert r.status == 200, (report, window, r.body)


def test_tinytrail_summary_of_all_time(server: TrailServer, site: str) -> None:
    data = tinytrail(server, "/api/v1/reports/summary", website_id=site, period="all").json()[
        "data"
    ]
    assert data["metrics"]["pageviews"]["value"] == 2
    assert data["period"]["start"] == DAY  # the year-0 directory is no day


@pytest.mark.parametrize("day", ["0001-01-01", "1970-01-01", DAY, "9999-12-31"])
def test_admin_aggregation_of_any_day(server: TrailServer, site: str, day: str) -> None:
    r = tinytrail(server, "/api/v1/admin/aggregate", {"date": day})
    assert r.status == 200, r.body
    assert r.json()["data"]["summary"]["failed_dirs"] == 0


@pytest.mark.parametrize("timezone", ["Asia/Tokyo", "UTC", "America/Los_Angeles"])
@pytest.mark.parametrize("window", [FAR_PAST, FAR_FUTURE, HUGE, ("0001-01-01", "")], ids=str)
def test_deleting_statistics_of_any_window(
    server: TrailServer, timezone: str, window: tuple[str, str]
) -> None:
    """DELETE /api/v1/statistics with far dates, in time zones east and west of UTC: never a 500
    (local midnight of year 1 in Tokyo is before year 1 in UTC)."""
    name = f"{timezone}-{window[0]}-{window[1] or 'open'}".lower().replace("/", "-")
    site_id, _ = server.create_site(f"del-{name.replace('_', '-')}.example", timezone)
    body = {"id": site_id, "kind": "all", "from": window[0], "to": window[1]}
    r = timed(lambda: server.call("DELETE", "/api/v1/statistics", body, key=server.admin_key))
    assert r.status == 200, r.body


def test_fixed_offset_only_when_the_zone_keeps_it_all_window_long() -> None:
    """Hours and local days are epoch arithmetic only when no offset change falls inside the
    window: a January-to-January window in Berlin holds the summer's +02:00 in between."""
    from zoneinfo import ZoneInfo as Zone

    from trail.stats.buckets import fixed_offset_ms

    def at(day: str) -> datetime:
        return datetime.fromisoformat(f"{day}T00:00:00+00:00")

    berlin, kolkata = Zone("Europe/Berlin"), Zone("Asia/Kolkata")
    assert fixed_offset_ms(berlin, at("2026-01-01"), at("2026-01-31")) == 3_600_000
    assert fixed_offset_ms(berlin, at("2026-01-01"), at("2027-01-31")) is None
    assert fixed_offset_ms(berlin, at("2026-03-20"), at("2026-04-02")) is None
    assert fixed_offset_ms(kolkata, at("2020-01-01"), at("2026-12-31")) == 19_800_000
    assert fixed_offset_ms(Zone("UTC"), at("2016-01-01"), at("2026-12-31")) == 0

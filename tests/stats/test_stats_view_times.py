"""hours, weekdays and minutes without a page condition count the bounces of sessions with one
page view at their `start` (trail.stats.sources.starts_hold_views): the same answers as looking
every bounced session up among the views, which is what they do otherwise.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from segment_rows import SiteData, ts

from trail.stats import breakdowns, sources
from trail.stats.filters import parse_filter
from trail.storage import tombstones

SITE = "3f1c9a0e-1111-4222-8333-444455556666"
REPORTS = (breakdowns.hours, breakdowns.weekdays, breakdowns.minutes)
FILTERS: list[dict[str, str]] = [
    {},
    {"tz": "Europe/Berlin"},  # one offset over the window: the kernel's arithmetic
    {"tz": "America/New_York", "from": "2024-03-09", "to": "2024-03-11"},  # DST: Polars
    {"tz": "Asia/Kolkata"},  # a half-hour offset
    {"from": "2024-03-10", "to": "2024-03-10", "from_time": "10:30", "to_time": "22:59"},
    {"country": "de"},
    {"entry_path": "/a"},
    {"exit_path": "/b"},
    {"event": "signup"},
    {"event": "!signup"},
]


def q(**over: str) -> Any:
    params = {"id": [SITE], "from": ["2024-03-09"], "to": ["2024-03-11"]}
    params.update({k: [v] for k, v in over.items()})
    return parse_filter(params)


def traffic(site: SiteData) -> None:
    site.visit(1, 1, [("2024-03-10 09:10:00", "/a")], country_code="de")  # one view, bounced
    site.visit(2, 1, [("2024-03-10 10:59:59", "/a")])
    # reloads: bounced with several views, in two hours and two days
    site.visit(3, 1, [("2024-03-10 11:50:00", "/b"), ("2024-03-10 12:10:00", "/b")])
    site.visit(4, 1, [("2024-03-10 23:50:00", "/a"), ("2024-03-11 00:05:00", "/a")])
    # one view before the window's time of day, the final state inside it
    site.visit(5, 1, [("2024-03-10 10:20:00", "/b"), ("2024-03-10 10:45:00", "/b")])
    # not bounced; with an event; a visitor with two sessions
    site.visit(6, 1, [("2024-03-10 09:00:00", "/a"), ("2024-03-10 09:05:00", "/b")])
    site.visit(7, 1, [("2024-03-10 13:00:00", "/b")], events={0: ("signup", {})})
    site.visit(8, 1, [("2024-03-09 22:30:00", "/a")], country_code="de")
    site.visit(8, 2, [("2024-03-10 22:40:00", "/b"), ("2024-03-10 22:41:00", "/a")])
    site.visit(9, 1, [("2024-03-11 05:00:00", "/b")])
    site.write()


def both(data_dir: Path, report: Any, f: Any, monkeypatch: pytest.MonkeyPatch) -> tuple:
    with monkeypatch.context() as m:
        m.setattr(sources, "starts_hold_views", lambda rows, columns: False)
        looked_up = report(data_dir, f)
    return report(data_dir, f), looked_up


@pytest.mark.parametrize("over", FILTERS, ids=lambda o: ",".join(o) or "-")
def test_bounces_at_start_equal_the_lookup(
    site: SiteData, over: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    traffic(site)
    f = q(**over)
    rows = sources.rows_for(site.data_dir, f)
    assert sources.starts_hold_views(rows, ["time"])
    for report in REPORTS:
        got, want = both(site.data_dir, report, f, monkeypatch)
        assert got == want, report.__name__
    if over.get("event") != "signup":  # (the one session with the event did not bounce)
        assert sum(r["bounces"] for r in breakdowns.hours(site.data_dir, f)) > 0


def test_page_conditions_look_bounces_up(site: SiteData) -> None:
    traffic(site)
    rows = sources.rows_for(site.data_dir, q(path="/a"))
    assert not sources.starts_hold_views(rows, ["time"])


def test_a_deletion_in_the_window_looks_bounces_up(
    site: SiteData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session with one view whose final state moved on (a keep-alive) while a deletion took
    its view but not that state: no view, no bounce; counting at `start` would count one."""
    site.visit(1, 1, [("2024-03-10 09:10:00", "/a")])
    first = dict(site.rows["sessions"][-1])
    later = {**first, "version": 2, "time": first["time"] + timedelta(hours=2),
             "duration_seconds": 7200}  # fmt: skip
    site.rows["sessions"] += [{**first, "sign": -1}, later]
    site.visit(2, 1, [("2024-03-10 15:00:00", "/b")])
    site.write()
    at = int(ts("2024-03-10 09:00:00").timestamp() * 1000)
    tombstones.add(site.data_dir, SITE, tombstones.ALL_TABLES, at, at + 1_800_000)
    site.visit(3, 1, [("2024-03-10 09:40:00", "/a"), ("2024-03-10 09:41:00", "/b")])
    site.write()
    f = q()
    rows = sources.rows_for(site.data_dir, f)
    assert not sources.starts_hold_views(rows, ["time"])
    hours = {r["hour"]: r for r in breakdowns.hours(site.data_dir, f)}
    assert (hours[9]["views"], hours[9]["bounces"]) == (2, 0)
    assert (hours[15]["views"], hours[15]["bounces"]) == (1, 1)
    # what counting at `start` would have said
    with monkeypatch.context() as m:
        m.setattr(sources, "starts_hold_views", lambda rows, columns: True)
        wrong = {r["hour"]: r for r in breakdowns.hours(site.data_dir, f)}
    assert wrong[9]["bounces"] == 1

"""The requests a site dashboard makes, in headless Chromium over a real server: each statistics
request once, sent together with the slowest reports first, the world map's files asked before the
statistics are sent (not after the country report), and the saved views listed only when opened.
The page's fetch calls are recorded by a script Chromium runs before the page's own."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser import en_chromium, one_worker_server, wait
from tests.server import TrailServer
from tests.test_dashboard_browser import UA, api, loaded
from tests.test_signin_browser import set_first_password
from tests.test_stats_e2e import wait_for

# Every fetch the page makes, in the order it makes them.
RECORD = """
window.asked = [];
const fetched = window.fetch;
window.fetch = function (input, init) {
  window.asked.push(String(input instanceof Request ? input.url : input));
  return fetched.call(this, input, init);
};
"""
STATISTICS = "/api/v1/statistics/"
# site.js's SLOW: the reports sent first, in this order.
SLOW = ["page", "funnel", "tags", "goals", "referrer", "session/list"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    yield from one_worker_server(tmp_path_factory, "dashboard-requests")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    yield from en_chromium(tmp_path_factory)


@pytest.fixture(scope="module")
def site(server: TrailServer, browser: webdriver.Chrome) -> str:
    """A site with three visitors, a goal and a funnel; the browser signed in and recording."""
    site, key = server.create_site("requests.example")
    now = datetime.now(UTC).replace(microsecond=0)
    hits = [
        {
            "url": "https://requests.example" + path,
            "ip": f"81.2.69.{n}",
            "user_agent": UA.format(v=110 + n),
            "referrer": "https://www.google.com/",
            "time": (now - timedelta(minutes=30 - n)).isoformat().replace("+00:00", "Z"),
        }
        for n, path in enumerate(["/", "/pricing", "/"])
    ]
    assert server.call("POST", "/api/v1/hit/batch", hits, key=key).status == 200
    admin = server.admin_key
    goal = {"domain_id": site, "name": "Pricing", "path_pattern": "/pricing"}
    assert server.call("POST", "/api/v1/goal", goal, key=admin).status == 200
    steps = [
        {"name": "Home", "filter": {"path": ["/"]}},
        {"name": "Pricing", "filter": {"path": ["/pricing"]}},
    ]
    funnel = {"domain_id": site, "name": "Buy", "steps": steps}
    assert server.call("POST", "/api/v1/funnel", funnel, key=admin).status == 200
    wait_for(lambda: api(server, "total", site), lambda t: t["views"] >= len(hits))
    set_first_password(browser, server, "requests@browser.test", "requests pass 1")
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD})
    return site


def report(url: str) -> str:
    """A statistics request's report, with " (prev)" when it is for the comparison window."""
    parts = urllib.parse.urlsplit(url)
    name = parts.path.removeprefix(STATISTICS)
    today = datetime.now(UTC).date()
    if urllib.parse.parse_qs(parts.query).get("to") == [str(today - timedelta(days=30))]:
        name += " (prev)"
    return name


def test_statistics_are_asked_once_slowest_first(
    server: TrailServer, browser: webdriver.Chrome, site: str
) -> None:
    browser.get(f"{server.url}/sites/{site}")
    loaded(browser)
    asked: list[str] = browser.execute_script("return window.asked")
    paths = [urllib.parse.urlsplit(u).path for u in asked]
    statistics = [u for u in asked if urllib.parse.urlsplit(u).path.startswith(STATISTICS)]
    assert len(statistics) == len(set(statistics))  # no request twice
    names = [report(u) for u in statistics]
    # The default view: the top stats and chart of both windows, live visitors, each panel's
    # first tab (the top pages with their time on page, the countries with the map).
    assert sorted(names) == sorted([
        "total", "visitor", "duration/session", "total (prev)", "visitor (prev)",
        "duration/session (prev)", "active", "page", "referrer", "country", "platform",
        "language", "events", "goals", "funnel", "tags", "weekdays", "session/list",
    ])  # fmt: skip
    assert names[: len(SLOW)] == SLOW
    assert "include_avg_time_on_page=true" in statistics[0]
    # The map's files are asked for before the statistics, so they are decoded by the time the
    # country report answers.
    topology = next(i for i, p in enumerate(paths) if p.startswith("/assets/countries-110m."))
    assert topology < paths.index(STATISTICS + "page")
    assert (
        len(browser.find_elements(By.CSS_SELECTOR, "#panel-locations figure.world svg path")) > 100
    )
    # Saved views are listed when they are opened, not beside the statistics.
    assert "/api/v1/view" not in paths
    browser.find_element(By.CSS_SELECTOR, ".saved-views summary").click()
    wait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#views li"))
    assert browser.find_element(By.CSS_SELECTOR, "#views li").text == "No saved views."
    asked = browser.execute_script("return window.asked")
    assert [u for u in asked if urllib.parse.urlsplit(u).path == "/api/v1/view"]


def test_another_tab_renders_in_the_same_order(
    server: TrailServer, browser: webdriver.Chrome, site: str
) -> None:
    """Another tab of a panel renders the view again: its own report once, the slow ones first."""
    browser.get(f"{server.url}/sites/{site}")
    gen = loaded(browser)
    browser.execute_script("window.asked.length = 0")
    browser.find_element(By.CSS_SELECTOR, "#tabs-pages button[data-tab=entry]").click()
    loaded(browser, gen)
    names = [report(u) for u in browser.execute_script("return window.asked")
             if urllib.parse.urlsplit(u).path.startswith(STATISTICS)]  # fmt: skip
    assert "page/entry" in names and "page" not in names
    assert len(names) == len(set(names))
    # The slow reports still go first; the entry pages take the top pages' place among the rest.
    assert names[: len(SLOW) - 1] == [n for n in SLOW if n != "page"]
    # The map's files come from the first render's decoding: not asked again.
    assert not [u for u in browser.execute_script("return window.asked") if "/assets/" in u]

"""The sites page and a site's dashboard in a real headless Chromium, over a real server with a
small known traffic scenario sent through the Pirsch ingest API: the numbers on screen are the
API's for the same window, a referrer row filters the dashboard and goes into the URL, and that
URL reloads to the same view. Screenshots at 1280 and 375 px go to <tmp_path>/screenshots."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser import en_chromium, one_worker_server, wait
from tests.server import TrailServer
from tests.test_signin_browser import at, fill, set_first_password, shown
from tests.test_stats_e2e import wait_for

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0 Safari/537.36"
# (visitor, path, referrer): four visitors from Google, two from Hacker News, one direct with two
# page views.
SCENARIO = [
    *((n, "/", "https://www.google.com/") for n in range(1, 5)),
    (5, "/blog", "https://news.ycombinator.com/"),
    (6, "/", "https://news.ycombinator.com/"),
    (7, "/", ""),
    (7, "/pricing", ""),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    yield from one_worker_server(tmp_path_factory, "dashboard-browser")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    yield from en_chromium(tmp_path_factory)


def send_scenario(server: TrailServer, key: str, host: str = "shop.example") -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    hits = [
        {
            "url": f"https://{host}{path}",
            "ip": f"81.2.69.{n}",
            "user_agent": UA.format(v=110 + n),
            "referrer": referrer,
            "time": (now - timedelta(minutes=30 - i)).isoformat().replace("+00:00", "Z"),
        }
        for i, (n, path, referrer) in enumerate(SCENARIO)
    ]
    r = server.call("POST", "/api/v1/hit/batch", hits, key=key)
    assert r.status == 200, r.body


def api(server: TrailServer, report: str, site: str, **params: str) -> Any:
    """The API's answer for the dashboard's default window (the last 30 days in UTC)."""
    today = datetime.now(UTC).date()
    window = {"from": str(today - timedelta(days=29)), "to": str(today), "tz": "UTC"}
    return server.stats(report, site, **{**window, **params})


def loaded(driver: webdriver.Chrome, after: int = 0) -> int:
    """Waits for the dashboard's ready mark after generation `after`; the generation."""
    wait(driver, 20).until(
        lambda d: int(d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") or 0) > after
    )
    assert driver.execute_script("return performance.getEntriesByName('ready').length") >= 1
    body = driver.find_element(By.TAG_NAME, "body")
    assert body.get_attribute("data-failed") == "0"
    return int(body.get_attribute("data-loaded") or 0)


def stat(driver: webdriver.Chrome, metric: str) -> tuple[int, str]:
    number = driver.find_element(By.CSS_SELECTOR, f"#stat-{metric} .num")
    return int(number.get_attribute("data-value") or -1), number.text


def screenshots(driver: webdriver.Chrome, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for width in (1280, 375):
        driver.set_window_size(width, 900)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(int(height) + 100, 6000))
        driver.save_screenshot(str(folder / f"{name}-{width}.png"))
    driver.set_window_size(1280, 800)


def test_dashboard_numbers_filters_and_url(
    server: TrailServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    site, key = server.create_site("shop.example")
    send_scenario(server, key)
    total = wait_for(lambda: api(server, "total", site), lambda t: t["views"] >= len(SCENARIO))
    assert (total["visitors"], total["views"]) == (7, 8)

    set_first_password(browser, server, "dash@browser.test", "dashboard pass 1")
    link = browser.find_element(By.LINK_TEXT, "shop.example")
    wait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#sites .today").get_attribute("data-value")
    )
    screenshots(browser, tmp_path / "screenshots", "sites")
    link.click()
    at(browser, f"/sites/{site}")
    gen = loaded(browser)
    assert shown(browser, "site-name").text == "shop.example"
    assert stat(browser, "visitors") == (total["visitors"], f"{total['visitors']:,}")
    assert stat(browser, "views") == (total["views"], f"{total['views']:,}")

    referrers = api(server, "referrer", site, limit="10")
    top = browser.find_element(By.CSS_SELECTOR, "#panel-sources .row")
    assert top.get_attribute("data-key") == referrers[0]["referrer_name"] == "Google"
    assert top.find_element(By.CSS_SELECTOR, ".num").text == str(referrers[0]["visitors"]) == "4"
    # No DB-IP database here (and no GeoIP at all): no credit under the locations panel.
    assert browser.find_elements(By.CSS_SELECTOR, "#panel-locations .rows, #panel-locations .empty")
    assert not browser.find_elements(By.CSS_SELECTOR, "#panel-locations .attribution")
    screenshots(browser, tmp_path / "screenshots", "dashboard")
    loads = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert loads and all(u.startswith(server.url + "/") for u in loads), loads  # trail only

    top.click()
    gen = loaded(browser, gen)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(browser.current_url).query)
    assert query == {"referrer_name": ["Google"]}
    assert "Referrer is Google" in shown(browser, "filters").text
    filtered = api(server, "total", site, referrer_name="Google")
    assert stat(browser, "visitors") == (filtered["visitors"], "4")
    assert stat(browser, "views")[0] == filtered["views"]
    pages = api(server, "page", site, referrer_name="Google", limit="10")
    assert (
        browser.find_element(By.CSS_SELECTOR, "#panel-pages .row").get_attribute("data-key")
        == pages[0]["path"]
    )

    url = browser.current_url
    browser.refresh()
    loaded(browser)
    assert browser.current_url == url
    assert stat(browser, "visitors") == (filtered["visitors"], "4")
    assert "Referrer is Google" in shown(browser, "filters").text
    screenshots(browser, tmp_path / "screenshots", "dashboard-filtered")

    # Removing the chip goes back to the whole site.
    browser.find_element(By.CSS_SELECTOR, "#filters .chip-remove").click()
    loaded(browser, 1)
    wait(browser, 10).until(lambda d: "referrer_name" not in d.current_url)
    wait(browser, 10).until(lambda d: stat(d, "visitors")[0] == total["visitors"])
    logged = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not logged, logged


def test_add_site_shows_snippet_and_first_hit(
    server: TrailServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(server.url + "/sites")  # signed in by the test above, or sign in now
    if "/signin" in browser.current_url:
        fill(browser, email="dash@browser.test", password="dashboard pass 1")
        at(browser, "/sites")
    box = browser.find_element(By.ID, "hostname")
    box.send_keys("not a host")
    browser.find_element(By.CSS_SELECTOR, "#add-site button[type=submit]").click()
    assert shown(browser, "hostname-error").text  # the API's 400 names the field
    box.clear()
    box.send_keys("blog.example")
    browser.find_element(By.CSS_SELECTOR, "#add-site button[type=submit]").click()
    tracker = shown(browser, "snippet-tracker").text
    sites = server.call("GET", "/api/v1/domain?domain=blog.example", key=server.admin_key).json()
    site = sites[0]["id"]
    assert f'data-id="{site}"' in tracker and f"{server.url}/js/tracker.js" in tracker
    assert "pirsch-sdk" in shown(browser, "snippet-sdk").text
    assert "Waiting" in shown(browser, "first-hit").text
    screenshots(browser, tmp_path / "screenshots", "add-site")
    r = server.call(
        "POST",
        "/api/v1/client",
        {"domain_id": site, "type": "token", "description": "test"},
        key=server.admin_key,
    )
    key = r.json()["client_secret"]
    hit = {"url": "https://blog.example/", "ip": "81.2.69.99", "user_agent": UA.format(v=120)}
    assert server.call("POST", "/api/v1/hit", hit, key=key).status == 200
    wait(browser, 20).until(
        lambda d: d.find_element(By.ID, "first-hit").get_attribute("class") == "arrived"
    )
    assert "arrived" in shown(browser, "first-hit").text

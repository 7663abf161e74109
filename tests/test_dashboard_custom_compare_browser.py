"""The site dashboard's custom comparison window: chosen with the compare select and its two
dates, held by the URL (`compare=custom&compare_from=...&compare_to=...`), kept by a saved view
(Pirsch's view fields `compare`, `compare_from`, `compare_to`) and applied from it; the top stats'
changes and the chart's dashed line are the API's figures for that window. In headless Chromium
over a real server with the known scenario of test_dashboard_compare_themes_browser.py.
Screenshots at 1280 and 375 px go to <tmp_path>/screenshots."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.browser import OLD_HITS, clear_of_midnight, en_chromium, one_worker_server, wait
from tests.server import TrailServer
from tests.test_dashboard_browser import loaded, screenshots, stat
from tests.test_dashboard_compare_themes_browser import (
    LAST_YEAR,
    PREVIOUS,
    TODAY,
    a_year_before,
    change,
    changes,
    chart,
    hit,
    open_dashboard,
    ready_total,
    window,
)
from tests.test_dashboard_settings_browser import EMAIL, PASSWORD, admin
from tests.test_signin_browser import set_first_password
from tests.test_stats_e2e import wait_for

METRICS = ("visitors", "views", "sessions", "bounce_rate")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    yield from one_worker_server(tmp_path_factory, "dashboard-custom-compare", OLD_HITS)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    yield from en_chromium(tmp_path_factory)


@pytest.fixture(scope="module")
def site(server: TrailServer, browser: webdriver.Chrome) -> str:
    """The compare scenario: 6 visitors today, 4 thirty-five days ago, 3 a year before ten days
    ago; the admin signed in."""
    set_first_password(browser, server, EMAIL, PASSWORD)
    site, key = server.create_site("compare.example")
    now = clear_of_midnight()  # the scenario's dates hold while the module runs
    hits = [hit(n, now - timedelta(minutes=60 - n), v=110 + n) for n in TODAY]
    hits += [hit(n, now - timedelta(minutes=50 - n), "/pricing", v=110 + n) for n in (1, 2)]
    hits += [hit(n, now - timedelta(days=35)) for n in PREVIOUS]
    noon = datetime.combine(
        a_year_before(now.date() - timedelta(days=10)), datetime.min.time(), UTC
    )
    hits += [hit(n, noon + timedelta(hours=12)) for n in LAST_YEAR]
    assert server.call("POST", "/api/v1/hit/batch", hits, key=key).status == 200
    wait_for(lambda: server.stats("total", site, **window("all")), ready_total)
    return site


def custom(first: date, last: date) -> dict[str, str]:
    return {"from": str(first), "to": str(last), "tz": "UTC"}


def query(driver: webdriver.Chrome) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(driver.current_url).query)


def set_compare_window(driver: webdriver.Chrome, first: date, last: date) -> None:
    """Fills the two date inputs, then leaves the second (its change event)."""
    driver.execute_script(
        "const [a, b] = ['compare-from', 'compare-to'].map(id => document.getElementById(id));"
        "a.value = arguments[0]; b.value = arguments[1]; b.dispatchEvent(new Event('change'))",
        str(first),
        str(last),
    )


def expect_window(
    server: TrailServer, driver: webdriver.Chrome, site: str, first: date, last: date
) -> None:
    """The top stats' changes and the dashed line are the API's for the window first..last."""
    now = server.stats("total", site, **window(""))
    before = server.stats("total", site, **custom(first, last))
    shown = changes(driver)
    for metric in METRICS:
        expected = change(now[metric], before[metric]) if before[metric] else None
        assert shown[metric] == (pytest.approx(expected) if expected is not None else None), metric
    assert stat(driver, "visitors")[0] == now["visitors"]
    xs, ys, dashed = chart(driver)
    assert ys == [r["visitors"] for r in server.stats("visitor", site, **window(""))]
    series = [r["visitors"] for r in server.stats("visitor", site, **custom(first, last))]
    # Aligned by position under the current window's 30 days: cut or padded to its length.
    assert dashed == (series + [None] * len(xs))[: len(xs)]
    assert Select(driver.find_element(By.ID, "compare")).first_selected_option.text == (
        "Custom period"
    )
    assert driver.find_element(By.ID, "compare-custom").is_displayed()
    assert driver.find_element(By.ID, "compare-from").get_attribute("value") == str(first)
    assert driver.find_element(By.ID, "compare-to").get_attribute("value") == str(last)
    assert "Compared period," in driver.find_element(By.ID, "chart-legend").text
    title = driver.find_element(By.CSS_SELECTOR, "#stat-visitors .change").get_attribute("title")
    assert title.startswith("Change against ") and str(first.year) in title


def test_custom_comparison_against_the_api(
    server: TrailServer, browser: webdriver.Chrome, site: str, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()
    gen = open_dashboard(browser, server, site, "")
    assert not browser.find_element(By.ID, "compare-custom").is_displayed()

    # Choosing "Custom period" starts from the window compared so far (the previous period).
    Select(browser.find_element(By.ID, "compare")).select_by_value("custom")
    gen = loaded(browser, gen)
    before = window("before")
    assert query(browser) == {
        "compare": ["custom"],
        "compare_from": [before["from"]],
        "compare_to": [before["to"]],
    }
    expect_window(
        server, browser, site, date.fromisoformat(before["from"]), date.fromisoformat(before["to"])
    )

    # An 11-day window around the visits of 35 days ago: 4 visitors against today's 6.
    first, last = today - timedelta(days=40), today - timedelta(days=30)
    set_compare_window(browser, first, last)
    gen = loaded(browser, gen)
    assert query(browser) == {
        "compare": ["custom"],
        "compare_from": [str(first)],
        "compare_to": [str(last)],
    }
    assert server.stats("total", site, **custom(first, last))["visitors"] == len(PREVIOUS)
    expect_window(server, browser, site, first, last)
    assert changes(browser)["visitors"] == pytest.approx(0.5)
    assert "compared with" in browser.find_element(By.ID, "period").text
    screenshots(browser, tmp_path / "screenshots", "dashboard-compare-custom")

    # A window with no visits: no change figure ("–"), an empty dashed line.
    empty = (today - timedelta(days=200), today - timedelta(days=190))
    gen = open_dashboard(
        browser, server, site, f"?compare=custom&compare_from={empty[0]}&compare_to={empty[1]}"
    )
    assert changes(browser)["visitors"] is None
    assert browser.find_element(By.CSS_SELECTOR, "#stat-visitors .change").text == "–"
    expect_window(server, browser, site, *empty)

    # The URL reproduces the view, with another range and the previous year's dates as window.
    year_first = a_year_before(today - timedelta(days=29))
    year_last = a_year_before(today)
    url = f"?range=7d&compare=custom&compare_from={year_first}&compare_to={year_last}"
    open_dashboard(browser, server, site, url)
    seven = {"from": str(today - timedelta(days=6)), "to": str(today), "tz": "UTC"}
    now = server.stats("total", site, **seven)
    then = server.stats("total", site, **custom(year_first, year_last))
    assert then["visitors"] == len(LAST_YEAR)
    assert changes(browser)["views"] == pytest.approx(change(now["views"], then["views"]))
    assert len(chart(browser)[0]) == 7

    # A window that is none (to before from, no such day, a missing end) falls back to the
    # previous period.
    for bad in (
        f"compare_from={today}&compare_to={today - timedelta(days=3)}",
        f"compare_from={today.year - 1}-02-31&compare_to={today.year - 1}-03-05",
        "compare_from=x",
    ):
        open_dashboard(browser, server, site, "?compare=custom&" + bad)
        previous = window("before")
        assert (
            browser.find_element(By.ID, "compare-from").get_attribute("value") == previous["from"]
        )
        shown = changes(browser)
        then = server.stats("total", site, **previous)
        assert shown["visitors"] == pytest.approx(change(6, then["visitors"]))
    logged = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not logged, logged


def test_a_saved_view_keeps_the_custom_window(
    server: TrailServer, browser: webdriver.Chrome, site: str
) -> None:
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=40), today - timedelta(days=30)
    search = f"?compare=custom&compare_from={first}&compare_to={last}"
    open_dashboard(browser, server, site, search)
    browser.find_element(By.CSS_SELECTOR, ".saved-views summary").click()
    browser.find_element(By.ID, "view-name").send_keys("Against March")
    browser.find_element(By.CSS_SELECTOR, "#view-form button[type=submit]").click()
    wait(browser, 10).until(lambda d: "Saved" in d.find_element(By.ID, "view-status").text)
    views: list[dict[str, Any]] = admin(server, "GET", f"/api/v1/view?domain_id={site}")
    saved = [v for v in views if v["name"] == "Against March"]
    assert [(v["compare"], v["compare_from"], v["compare_to"], v["period"]) for v in saved] == [
        ("custom", str(first), str(last), 30)
    ]

    # Applied on a view compared with the previous year, it brings the window back.
    gen = open_dashboard(browser, server, site, "?compare=year")
    browser.find_element(By.CSS_SELECTOR, ".saved-views summary").click()
    apply = wait(browser, 10).until(
        lambda d: d.find_element(
            By.CSS_SELECTOR, "#views button[aria-label='Apply view Against March']"
        )
    )
    apply.click()
    loaded(browser, gen)
    assert query(browser) == {
        "compare": ["custom"],
        "compare_from": [str(first)],
        "compare_to": [str(last)],
    }
    expect_window(server, browser, site, first, last)

    # A view written through the API with a custom window opens it too.
    body = {
        "domain_id": site,
        "name": "API window",
        "compare": "custom",
        "compare_from": str(today - timedelta(days=60)),
        "compare_to": str(today - timedelta(days=31)),
        "from": str(today - timedelta(days=29)),
        "to": str(today),
    }
    assert admin(server, "POST", "/api/v1/view", body)["compare"] == "custom"
    gen = open_dashboard(browser, server, site, "")
    browser.find_element(By.CSS_SELECTOR, ".saved-views summary").click()
    wait(browser, 10).until(
        lambda d: d.find_element(
            By.CSS_SELECTOR, "#views button[aria-label='Apply view API window']"
        )
    ).click()
    loaded(browser, gen)
    assert query(browser)["compare_from"] == [body["compare_from"]]
    expect_window(
        server,
        browser,
        site,
        date.fromisoformat(body["compare_from"]),
        date.fromisoformat(body["compare_to"]),
    )

"""The site dashboard's comparison modes (previous period, previous year, off), its browser and OS
versions and time on page; the settings' themes (/api/v1/theme: list, create, edit with a logo,
base theme of the site, delete) and the domain's custom domain and metadata with the API's
400s by their fields; and the size of the dashboard's assets. In headless Chromium over a real
server with a known scenario; every figure checked is the API's for the same query.
Screenshots at 1280 and 375 px go to <tmp_path>/screenshots."""

from __future__ import annotations

import gzip
import json
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
from tests.test_dashboard_browser import UA, loaded, screenshots, stat
from tests.test_dashboard_settings_browser import (
    EMAIL,
    PASSWORD,
    admin,
    domain,
    edit,
    edited,
    open_settings,
    png,
    row,
)
from tests.test_dashboard_share_browser import field_error, saved, submit
from tests.test_signin_browser import set_first_password
from tests.test_stats_e2e import wait_for

DASHBOARD = Path(__file__).resolve().parents[1] / "trail" / "static" / "dashboard"
BUDGET = 150 * 1024  # the dashboard's JS and CSS, and the map's data, gzipped

# Visitors (last octet of 81.2.69.x) by days before today: 6 today (two with a second page),
# 4 thirty-five days ago (the previous period of the last 30 days), 3 a year before ten days ago
# (the previous year's), none else.
TODAY = range(1, 7)
PREVIOUS = range(20, 24)
LAST_YEAR = range(40, 43)


def a_year_before(day: date) -> date:
    """The dashboard's rule: the same date a year before, 29 February becoming the 28th."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def hit(n: int, when: datetime, path: str = "/", v: int = 120) -> dict[str, Any]:
    return {
        "url": "https://compare.example" + path,
        "ip": f"81.2.69.{n}",
        "user_agent": UA.format(v=v),
        "time": when.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    # Hits of a year ago and more are part of the scenario.
    yield from one_worker_server(tmp_path_factory, "dashboard-compare", OLD_HITS)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    yield from en_chromium(tmp_path_factory)


@pytest.fixture(scope="module")
def owner(server: TrailServer, browser: webdriver.Chrome) -> str:
    """The admin with the settings tests' password (open_settings signs in again with it)."""
    set_first_password(browser, server, EMAIL, PASSWORD)
    return EMAIL


@pytest.fixture(scope="module")
def site(server: TrailServer, owner: str) -> str:
    site, key = server.create_site("compare.example")
    now = clear_of_midnight()  # the scenario's dates hold while the module runs
    today = now.date()
    hits = [hit(n, now - timedelta(minutes=60 - n), v=110 + n) for n in TODAY]
    hits += [hit(n, now - timedelta(minutes=50 - n), "/pricing", v=110 + n) for n in (1, 2)]
    hits += [hit(n, now - timedelta(days=35)) for n in PREVIOUS]
    noon = datetime.combine(a_year_before(today - timedelta(days=10)), datetime.min.time(), UTC)
    hits += [hit(n, noon + timedelta(hours=12)) for n in LAST_YEAR]
    assert server.call("POST", "/api/v1/hit/batch", hits, key=key).status == 200
    wait_for(lambda: server.stats("total", site, **window("all")), ready_total)
    return site


def ready_total(t: dict[str, Any]) -> bool:
    return bool(t["visitors"] == len(TODAY) + len(PREVIOUS) + len(LAST_YEAR))


def window(compare: str) -> dict[str, str]:
    """The last 30 days (compare=""), the windows they are compared with ("before": the previous
    period, "year": the previous year), or the whole scenario ("all")."""
    today = datetime.now(UTC).date()
    first, last = today - timedelta(days=29), today
    if compare == "all":
        first, last = a_year_before(first) - timedelta(days=1), today
    elif compare == "before":
        first, last = first - timedelta(days=30), first - timedelta(days=1)
    elif compare == "year":
        first, last = a_year_before(first), a_year_before(last)
    return {"from": str(first), "to": str(last), "tz": "UTC"}


def open_dashboard(driver: webdriver.Chrome, server: TrailServer, site: str, search: str) -> int:
    driver.get(f"{server.url}/sites/{site}{search}")
    return loaded(driver)


def changes(driver: webdriver.Chrome) -> dict[str, float | None]:
    """The top stats' change figures (their exact values), by metric."""
    found = driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#top-stats .stat')]"
        ".map(b => [b.id.slice(5), b.querySelector('.change')?.dataset.value ?? null]))"
    )
    return {k: (float(v) if v else None) for k, v in found.items()}


def chart(driver: webdriver.Chrome) -> list[list[float | None]]:
    return driver.execute_script("return window.trail.dash.chart.data.map(s => [...s])")


def change(now: float, before: float) -> float:
    return (now - before) / before


def test_compare_modes_against_the_api(
    server: TrailServer, browser: webdriver.Chrome, site: str, tmp_path: Path
) -> None:
    now = server.stats("total", site, **window(""))
    before = server.stats("total", site, **window("before"))
    year = server.stats("total", site, **window("year"))
    assert (now["visitors"], before["visitors"], year["visitors"]) == (6, 4, 3)

    # The previous period (the default): every change is the API's two totals', and the
    # visitors' equals the API's own growth rate for the same window.
    gen = open_dashboard(browser, server, site, "")
    assert Select(browser.find_element(By.ID, "compare")).first_selected_option.text == (
        "Previous period"
    )
    assert stat(browser, "visitors") == (6, "6")
    shown = changes(browser)
    for metric in ("visitors", "views", "sessions"):
        assert shown[metric] == pytest.approx(change(now[metric], before[metric]))
    growth = server.stats("growth", site, **window(""))
    assert shown["visitors"] == pytest.approx(growth["visitors_growth"]) == 0.5
    assert browser.find_element(By.CSS_SELECTOR, "#stat-visitors .change").text == "+50%"
    xs, ys, previous = chart(browser)
    assert len(xs) == 30 and ys == [
        r["visitors"] for r in server.stats("visitor", site, **window(""))
    ]
    assert previous == [r["visitors"] for r in server.stats("visitor", site, **window("before"))]
    assert sum(previous) == 4
    assert "Previous period," in browser.find_element(By.ID, "chart-legend").text

    # The previous year, chosen with the select: the URL says so, the changes and the dashed
    # line are the same dates a year before.
    Select(browser.find_element(By.ID, "compare")).select_by_value("year")
    gen = loaded(browser, gen)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(browser.current_url).query) == {
        "compare": ["year"]
    }
    shown = changes(browser)
    for metric in ("visitors", "views", "sessions"):
        assert shown[metric] == pytest.approx(change(now[metric], year[metric]))
    assert shown["visitors"] == pytest.approx(1.0)
    previous = chart(browser)[2]
    assert previous == [r["visitors"] for r in server.stats("visitor", site, **window("year"))]
    assert sum(previous) == 3
    legend = browser.find_element(By.ID, "chart-legend").text
    first, last = window("year")["from"], window("year")["to"]
    assert "Previous year," in legend
    assert browser.find_element(By.CSS_SELECTOR, "#stat-visitors .change").get_attribute(
        "title"
    ) == ("Change against the previous year")
    assert first[:4] in legend and last[:4] in legend
    screenshots(browser, tmp_path / "screenshots", "dashboard-compare-year")

    # Off: no change figures, no dashed line, no comparison window in the period's text; the
    # numbers stay the API's.
    Select(browser.find_element(By.ID, "compare")).select_by_value("off")
    gen = loaded(browser, gen)
    assert "compare=off" in browser.current_url
    assert not browser.find_elements(By.CSS_SELECTOR, "#top-stats .change")
    assert set(changes(browser).values()) == {None}
    assert stat(browser, "views")[0] == now["views"] == 8
    data = chart(browser)
    assert len(data) == 2
    assert data[1] == [r["visitors"] for r in server.stats("visitor", site, **window(""))]
    legend = browser.find_element(By.ID, "chart-legend").text
    assert legend.startswith("Visitors, ") and "Previous" not in legend and "null" not in legend
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chart-legend li")) == 1
    assert "compared with" not in browser.find_element(By.ID, "period").text

    # A link reproduces it: the same URL in a fresh load, for every mode.
    url = browser.current_url
    open_dashboard(browser, server, site, "?compare=off&range=7d")
    assert Select(browser.find_element(By.ID, "compare")).first_selected_option.get_attribute(
        "value"
    ) == ("off")
    assert not browser.find_elements(By.CSS_SELECTOR, "#top-stats .change")
    browser.get(url)
    loaded(browser)
    assert len(chart(browser)) == 2
    screenshots(browser, tmp_path / "screenshots", "dashboard-compare-off")

    # A saved view keeps "off" as Pirsch's null comparison, and applying it turns it off again.
    browser.find_element(By.CSS_SELECTOR, ".saved-views summary").click()
    box = browser.find_element(By.ID, "view-name")
    box.send_keys("No comparison")
    browser.find_element(By.CSS_SELECTOR, "#view-form button").click()
    wait(browser, 10).until(lambda d: "Saved" in d.find_element(By.ID, "view-status").text)
    views = admin(server, "GET", f"/api/v1/view?domain_id={site}")
    assert [(v["name"], v["compare"]) for v in views] == [("No comparison", None)]
    gen = open_dashboard(browser, server, site, "?compare=year")
    browser.find_element(By.CSS_SELECTOR, ".saved-views summary").click()
    wait(browser, 10).until(
        lambda d: d.find_elements(
            By.CSS_SELECTOR, "#views button[aria-label='Apply view No comparison']"
        )
    )
    browser.find_element(
        By.CSS_SELECTOR, "#views button[aria-label='Apply view No comparison']"
    ).click()
    loaded(browser, gen)
    assert "compare=off" in browser.current_url and len(chart(browser)) == 2
    logged = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not logged, logged


def test_versions_and_time_on_page(
    server: TrailServer, browser: webdriver.Chrome, site: str
) -> None:
    gen = open_dashboard(browser, server, site, "?devices=browser-versions")
    versions = server.stats("browser/version", site, **window(""), limit="10")
    rows = browser.find_elements(By.CSS_SELECTOR, "#panel-devices .row")
    assert [r.find_element(By.CSS_SELECTOR, ".name").text for r in rows] == [
        f"{v['browser']} {v['browser_version'] or '(unknown version)'}" for v in versions
    ]
    assert len(rows) == len(TODAY)
    # A version filters by the browser and the version.
    first = versions[0]
    rows[0].click()
    gen = loaded(browser, gen)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(browser.current_url).query)
    assert query["browser"] == [first["browser"]]
    assert query["browser_version"] == [first["browser_version"]]
    filtered = server.stats(
        "total",
        site,
        **window(""),
        browser=first["browser"],
        browser_version=first["browser_version"],
    )
    assert stat(browser, "visitors")[0] == filtered["visitors"] == first["visitors"]

    open_dashboard(browser, server, site, "?devices=os-versions")
    systems = server.stats("os/version", site, **window(""), limit="10")
    names = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#panel-devices .row .name")]
    assert names == [f"{v['os']} {v['os_version'] or '(unknown version)'}" for v in systems]

    # Top pages show each page's average time on it, as the API gives it.
    pages = server.stats("page", site, **window(""), limit="10", include_avg_time_on_page="true")
    shown = browser.execute_script(
        "return [...document.querySelectorAll('#panel-pages .row')]"
        ".map(r => [r.dataset.key, r.querySelector('.detail').textContent])"
    )
    seconds = {p["path"]: p["average_time_spent_seconds"] for p in pages}
    assert [k for k, _ in shown] == [p["path"] for p in pages]
    # ", " is for screen readers ("/pricing: 2 visitors. Filter by it, 5 s on the page").
    assert all(text.startswith(", ") and text.endswith(" on the page") for _, text in shown)
    assert seconds["/"] == 600  # visitors 1 and 2 went on to /pricing 10 minutes later
    assert dict(shown)["/"] == ", 10 min 0 s on the page"


def test_themes_are_listed_created_edited_and_deleted(
    server: TrailServer, browser: webdriver.Chrome, site: str, tmp_path: Path
) -> None:
    open_settings(browser, server, site)
    assert "None yet." in browser.find_element(By.ID, "themes-list").text

    # The API's 400 shows by its field; a colour the page refuses, by its own.
    submit(browser, "themes-add", name="")
    assert field_error(browser, "themes-add", "name") == "required"
    submit(browser, "themes-add", name="Ocean", accent="teal")
    assert "hex colour" in field_error(browser, "themes-add", "accent")
    submit(browser, "themes-add", name="Ocean", accent="#0a7c6b", accent_dark="#8fe3d4")
    row(browser, "themes", "Ocean")
    [theme] = admin(server, "GET", "/api/v1/theme")
    assert theme["name"] == "Ocean"
    assert (theme["settings"]["accent"], theme["settings"]["accent_dark"]) == (
        "#0a7c6b",
        "#8fe3d4",
    )
    # The new theme is offered as the site's base theme.
    wait(browser, 10).until(
        lambda d: (
            theme["id"]
            in [
                o.get_attribute("value")
                for o in d.find_elements(By.CSS_SELECTOR, "#theme-base-theme_id option")
            ]
        )
    )

    # Edit: the form filled in; a new name, a colour cleared and a logo uploaded with it.
    edit(browser, "themes", "Ocean")
    assert browser.find_element(By.ID, "themes-edit-accent").get_attribute("value") == "#0a7c6b"
    logo = tmp_path / "logo.png"
    logo.write_bytes(png(8, 4, (10, 124, 107)))
    browser.find_element(By.ID, "themes-edit-logo_light").send_keys(str(logo))
    submit(browser, "themes-edit", name="Sea", accent_dark="")
    edited(browser, "themes", "Sea")
    [theme] = admin(server, "GET", "/api/v1/theme")
    assert theme["name"] == "Sea" and theme["settings"]["accent"] == "#0a7c6b"
    assert theme["settings"]["accent_dark"] == ""
    assert theme["settings"]["logo_light"].endswith(f"theme_id={theme['id']}&file=logo_light")
    assert "logo, light scheme" in row(browser, "themes", "Sea").text
    file = server.call("GET", theme["settings"]["logo_light"], key=server.admin_key)
    assert file.status == 200 and file.body == logo.read_bytes()

    # The site takes it as its base theme.
    submit(browser, "theme-base", theme_id=theme["id"])
    saved(browser, "theme-base")
    assert domain(server, site)["theme_id"] == theme["id"]
    screenshots(browser, tmp_path / "screenshots", "settings-themes")

    # Deleting it while keeping its settings copies them into the site.
    browser.find_element(By.ID, "themes-keep").click()
    row(browser, "themes", "Sea").find_element(By.CSS_SELECTOR, "button.danger").click()
    wait(browser, 10).until(lambda d: "None yet." in d.find_element(By.ID, "themes-list").text)
    assert admin(server, "GET", "/api/v1/theme") == []
    found = domain(server, site)
    assert found["theme_id"] == "" and found["theme_settings"]["accent"] == "#0a7c6b"
    options = browser.find_elements(By.CSS_SELECTOR, "#theme-base-theme_id option")
    assert theme["id"] not in [o.get_attribute("value") for o in options]


def test_custom_domain_and_metadata_with_field_errors(
    server: TrailServer, browser: webdriver.Chrome, owner: str
) -> None:
    first, _ = server.create_site("first.example")
    second, _ = server.create_site("second.example")
    open_settings(browser, server, first)
    submit(browser, "general-custom", hostname="not a host!")
    assert "host name" in field_error(browser, "general-custom", "hostname")
    submit(browser, "general-custom", hostname="stats.first.example")
    saved(browser, "general-custom")
    assert domain(server, first)["custom_domain"] == "stats.first.example"

    submit(browser, "general-metadata", metadata="{not json")
    assert "not valid JSON" in field_error(browser, "general-metadata", "metadata")
    submit(browser, "general-metadata", metadata="[1, 2]")  # the API's 400
    assert field_error(browser, "general-metadata", "metadata") == "must be a JSON object"
    box = browser.find_element(By.ID, "general-metadata-metadata")
    assert box.get_attribute("aria-invalid") == "true"
    submit(browser, "general-metadata", metadata='{"team": "web", "tier": 2}')
    saved(browser, "general-metadata")
    assert domain(server, first)["metadata"] == {"team": "web", "tier": 2}

    # Another site cannot have the same custom domain: the API's 400 by the field.
    open_settings(browser, server, second)
    submit(browser, "general-custom", hostname="stats.first.example")
    assert field_error(browser, "general-custom", "hostname") == "already in use"
    assert domain(server, second)["custom_domain"] is None

    # A reload shows what the domain has; an empty custom domain removes it.
    open_settings(browser, server, first)
    shown = browser.find_element(By.ID, "general-custom-hostname").get_attribute("value")
    assert shown == "stats.first.example"
    metadata = browser.find_element(By.ID, "general-metadata-metadata").get_attribute("value")
    assert json.loads(metadata) == {"team": "web", "tier": 2}
    submit(browser, "general-custom", hostname="")
    saved(browser, "general-custom")
    assert domain(server, first)["custom_domain"] is None


def test_assets_fit_the_budget() -> None:
    """Everything a site's dashboard loads, gzipped as the server sends it, within 150 KB."""
    files = [*DASHBOARD.glob("*.js"), *DASHBOARD.glob("*.css"), *DASHBOARD.glob("vendor/*.js")]
    files += [*DASHBOARD.glob("vendor/*.css"), *DASHBOARD.glob("vendor/*.json")]
    sizes = {f.name: len(gzip.compress(f.read_bytes(), compresslevel=9)) for f in files}
    assert {"site.js", "settings.js", "uPlot.iife.min.js", "countries-110m.json"} <= set(sizes)
    assert sum(sizes.values()) <= BUDGET, sizes

"""An accessibility audit of the dashboard's pages with axe-core in headless Chromium: the sign-in
page, the sites page, a site's dashboard (also with the filter form open), its settings and its
shared dashboard have no violation of impact "serious" or "critical", in the light and the dark
colour scheme. axe-core is not part of trail: `make axe` (which `make test` runs) downloads the
pinned release into .venv and checks its sha256; without it this test fails and says so."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser import CHROME_UA, one_worker_server, start_chromium, wait
from tests.server import TrailServer
from tests.test_dashboard_browser import api, loaded, send_scenario
from tests.test_signin import LINK_LINE, fresh_ip, printed, send
from tests.test_signin_browser import at, fill, shown
from tests.test_stats_e2e import wait_for

ROOT = Path(__file__).resolve().parents[1]
EMAIL, PASSWORD = "audit@a11y.test", "audit pass 12"
SERIOUS = ("serious", "critical")


def axe_path() -> Path:
    """Where `make axe` puts axe.min.js (the Makefile's AXE_VERSION); TRAIL_AXE_JS overrides."""
    if os.environ.get("TRAIL_AXE_JS"):
        return Path(os.environ["TRAIL_AXE_JS"])
    found = re.search(r"^AXE_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, "AXE_VERSION is missing from the Makefile"
    return ROOT / ".venv" / "share" / f"axe-core-{found.group(1)}" / "axe.min.js"


@pytest.fixture(scope="module")
def axe_source() -> str:
    path = axe_path()
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make axe` (make test runs it) to download axe-core")
    return path.read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    yield from one_worker_server(tmp_path_factory, "accessibility")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"), "--lang=en-US")
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def site(server: TrailServer) -> str:
    """A public site with the known scenario and a session going on, a goal and an access link;
    the admin has a password."""
    site, key = server.create_site("audit.example")
    send_scenario(server, key)
    for path in ("/", "/pricing"):  # a session going on now, with a journey of two pages
        hit = {"url": "https://audit.example" + path, "ip": "81.2.69.9", "user_agent": CHROME_UA}
        assert server.call("POST", "/api/v1/hit", hit, key=key).status == 200
    wait_for(lambda: api(server, "session/list", site), lambda s: len(s) >= 1)
    for path, body in (
        ("/api/v1/domain/public", {"domain_id": site}),
        ("/api/v1/goal", {"domain_id": site, "name": "Pricing", "path_pattern": "/pricing"}),
        ("/api/v1/domain/link", {"domain_id": site, "description": "board"}),
    ):
        r = server.call("POST", path, body, key=server.admin_key)
        assert r.status == 200, r.body
    token = printed(server, LINK_LINE).group(2)
    body = {"token": token, "password": PASSWORD, "email": EMAIL}
    r = send(server, "POST", "/api/v1/auth/password-link", body, fresh_ip())
    assert r.status == 200, r.body
    return site


def scheme(driver: webdriver.Chrome, name: str) -> None:
    """Emulates the system's colour scheme ("light" or "dark"); the page follows it."""
    features = [{"name": "prefers-color-scheme", "value": name}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})


def audit(driver: webdriver.Chrome, axe: str, what: str, colours: str) -> None:
    """Runs axe-core on the page, in the colour scheme `colours` is emulating; fails listing
    every serious or critical violation."""
    dark = driver.execute_script("return matchMedia('(prefers-color-scheme: dark)').matches")
    assert dark == (colours == "dark"), f"{what}: the {colours} scheme is not emulated"
    what = f"{what} ({colours})"
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(axe)
    result = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        axe.run(document, {resultTypes: ["violations"]})
          .then((r) => done(JSON.stringify(r.violations)), (e) => done(JSON.stringify(String(e))));"""
    )
    violations: Any = json.loads(result)
    assert isinstance(violations, list), f"axe failed on {what}: {violations}"
    serious = [v for v in violations if v["impact"] in SERIOUS]
    lines = [
        f"{v['id']} ({v['impact']}): {v['help']}\n"
        + "".join(
            f"    {n['target']}: {n.get('failureSummary', '').replace(chr(10), ' ')}\n"
            for n in v["nodes"]
        )
        for v in serious
    ]
    assert not serious, f"{what}: {len(serious)} serious or critical violations\n" + "".join(lines)


def signed_in(driver: webdriver.Chrome, server: TrailServer) -> None:
    driver.get(server.url + "/sites")
    if "/signin" in driver.current_url:
        fill(driver, email=EMAIL, password=PASSWORD)
        at(driver, "/sites")


def body_attribute(driver: webdriver.Chrome, name: str) -> str | None:
    return driver.find_element(By.TAG_NAME, "body").get_attribute(name)


COLOUR_SCHEMES = ["light", "dark"]


@pytest.mark.parametrize("colours", COLOUR_SCHEMES)
def test_signin_page(
    server: TrailServer, site: str, browser: webdriver.Chrome, axe_source: str, colours: str
) -> None:
    browser.delete_all_cookies()
    scheme(browser, colours)
    browser.get(server.url + "/signin")
    audit(browser, axe_source, "/signin", colours)
    # With the errors the form shows.
    fill(browser, email=EMAIL, password="wrong password")
    wait(browser, 10).until(lambda d: d.find_element(By.ID, "form-error").is_displayed())
    audit(browser, axe_source, "/signin with an error", colours)
    browser.get(server.url + "/set-password")
    audit(browser, axe_source, "/set-password", colours)


@pytest.mark.parametrize("colours", COLOUR_SCHEMES)
def test_sites_page(
    server: TrailServer, site: str, browser: webdriver.Chrome, axe_source: str, colours: str
) -> None:
    scheme(browser, colours)
    signed_in(browser, server)
    wait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#sites .today").get_attribute("data-value")
    )
    wait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#sites svg"))
    audit(browser, axe_source, "/sites", colours)
    # With a new site's snippet and its waiting status.
    browser.find_element(By.ID, "hostname").send_keys(f"{colours}.audit.example")
    browser.find_element(By.CSS_SELECTOR, "#add-site button[type=submit]").click()
    wait(browser, 10).until(lambda d: d.find_element(By.ID, "snippet").is_displayed())
    audit(browser, axe_source, "/sites with a new site's snippet", colours)


@pytest.mark.parametrize("colours", COLOUR_SCHEMES)
def test_site_dashboard(
    server: TrailServer, site: str, browser: webdriver.Chrome, axe_source: str, colours: str
) -> None:
    scheme(browser, colours)
    signed_in(browser, server)
    browser.get(f"{server.url}/sites/{site}?referrer_name=!Bing")
    loaded(browser)
    audit(browser, axe_source, "/sites/<id>", colours)
    browser.find_element(By.ID, "add-filter").click()
    wait(browser, 10).until(lambda d: d.find_element(By.ID, "filter-form").is_displayed())
    audit(browser, axe_source, "/sites/<id> with the filter form", colours)
    browser.find_element(By.ID, "filter-cancel").click()
    browser.find_element(By.CSS_SELECTOR, "#panel-sessions .session").click()
    wait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#journey-body .journey li"))
    audit(browser, axe_source, "/sites/<id> with a session's journey", colours)
    assert shown(browser, "settings-link").get_attribute("href").endswith(f"/sites/{site}/settings")


@pytest.mark.parametrize("colours", COLOUR_SCHEMES)
def test_settings_page(
    server: TrailServer, site: str, browser: webdriver.Chrome, axe_source: str, colours: str
) -> None:
    scheme(browser, colours)
    signed_in(browser, server)
    browser.get(f"{server.url}/sites/{site}/settings")
    wait(browser, 10).until(lambda d: body_attribute(d, "data-ready"))
    audit(browser, axe_source, "/sites/<id>/settings", colours)
    # With a new client's secret and a field's error.
    browser.find_element(By.ID, "clients-add-description").send_keys("audit")
    browser.find_element(By.CSS_SELECTOR, "#clients-add button[type=submit]").click()
    shown(browser, "client-secret-value")
    browser.find_element(By.ID, "general-hostname-hostname").clear()
    browser.find_element(By.ID, "general-hostname-hostname").send_keys("not a host")
    browser.find_element(By.CSS_SELECTOR, "#general-hostname button[type=submit]").click()
    shown(browser, "general-hostname-hostname-error")
    audit(browser, axe_source, "/sites/<id>/settings with a secret and an error", colours)
    # A saved form, in the scheme the toggle picks against the system's.
    browser.find_element(By.CSS_SELECTOR, "#general-timezone button[type=submit]").click()
    wait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#general-timezone .saved").text == "Saved."
    )
    browser.find_element(By.ID, "theme").click()
    try:
        other = "light" if colours == "dark" else "dark"
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("data-theme") == other
        audit(browser, axe_source, f"/sites/<id>/settings toggled to {other}", colours)
    finally:
        browser.find_element(By.ID, "theme").click()  # back to the system's


@pytest.mark.parametrize("colours", COLOUR_SCHEMES)
def test_shared_dashboard(
    server: TrailServer, site: str, browser: webdriver.Chrome, axe_source: str, colours: str
) -> None:
    scheme(browser, colours)
    browser.get(f"{server.url}/share/{site}")
    loaded(browser)
    audit(browser, axe_source, "/share/<id>", colours)
    assert not browser.find_elements(By.ID, "settings-link")

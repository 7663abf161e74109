"""The dashboard's account page (/account, linked from the header's name): the display name
through `POST /api/v1/user/name` with the API's 400 beside the field (empty, too long), the header
showing the name once saved, and the password change through `PUT /api/v1/user/password`. An axe
audit of the page with its errors. In headless Chromium over a real server. Screenshots at 1280
and 375 px go to <tmp_path>/screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.browser import en_chromium, one_worker_server, wait
from tests.server import TrailServer
from tests.test_accessibility_browser import audit, axe_path
from tests.test_dashboard_browser import screenshots
from tests.test_signin import fresh_ip, send, sign_in
from tests.test_signin_browser import at, set_first_password, shown

EMAIL, PASSWORD, NEW_PASSWORD = "owner@account.test", "account pass 1", "account pass 2"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    yield from one_worker_server(tmp_path_factory, "dashboard-account")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    yield from en_chromium(tmp_path_factory)


def full_name(server: TrailServer) -> str:
    r = server.call("GET", "/api/v1/user", key=server.admin_key)
    assert r.status == 200, r.body
    return str(r.json()["full_name"])


def save_name(driver: webdriver.Chrome, name: str) -> None:
    box = driver.find_element(By.ID, "full-name")
    box.clear()
    driver.execute_script("arguments[0].value = arguments[1]", box, name)
    driver.find_element(By.CSS_SELECTOR, "#name-form button[type=submit]").click()


def test_display_name_and_password(
    server: TrailServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    # Signed out, the page sends to the sign-in page.
    r = send(server, "GET", "/account", ip=fresh_ip())
    assert (r.status, r.headers["location"]) == (303, "/signin")

    set_first_password(browser, server, EMAIL, PASSWORD)
    assert shown(browser, "who").text == EMAIL  # no name yet: the email
    browser.find_element(By.ID, "who").click()
    at(browser, "/account")
    wait(browser, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
    )
    assert browser.find_element(By.ID, "account-email").text == EMAIL
    assert browser.find_element(By.ID, "full-name").get_attribute("value") == ""

    # Empty and too long: the API's 400, beside the field, and nothing stored.
    for bad, problem in (("  ", "required"), ("x" * 201, "at most 200 characters")):
        save_name(browser, bad)
        assert problem in shown(browser, "full-name-error").text
        box = browser.find_element(By.ID, "full-name")
        assert box.get_attribute("aria-invalid") == "true"
        assert browser.switch_to.active_element == box
        assert "full_name" in browser.find_element(By.ID, "name-status").text
        assert full_name(server) == ""
    audit(browser, axe_path().read_text(), "/account with a field's error", "light")

    # A good name: saved through the API, shown in the header, on every page after.
    save_name(browser, "  Grace Hopper ")
    wait(browser, 10).until(lambda d: d.find_element(By.ID, "name-status").text == "Saved.")
    assert not browser.find_element(By.ID, "full-name-error").is_displayed()
    assert browser.find_element(By.ID, "full-name").get_attribute("aria-invalid") is None
    assert browser.find_element(By.ID, "full-name").get_attribute("value") == "Grace Hopper"
    assert full_name(server) == "Grace Hopper"
    assert browser.find_element(By.ID, "who").text == "Grace Hopper"
    browser.get(server.url + "/sites")
    assert shown(browser, "who").text == "Grace Hopper"
    browser.get(server.url + "/account")
    wait(browser, 10).until(
        lambda d: d.find_element(By.ID, "full-name").get_attribute("value") == "Grace Hopper"
    )
    screenshots(browser, tmp_path / "screenshots", "account")

    # The password: a wrong current one is named, then the change works and this session stays.
    browser.find_element(By.ID, "current-password").send_keys("not the password")
    browser.find_element(By.ID, "new-password").send_keys(NEW_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#password-form button[type=submit]").click()
    assert shown(browser, "current-password-error").text == "wrong password"
    browser.find_element(By.ID, "current-password").clear()
    browser.find_element(By.ID, "current-password").send_keys(PASSWORD)
    browser.find_element(By.ID, "new-password").clear()
    browser.find_element(By.ID, "new-password").send_keys(NEW_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#password-form button[type=submit]").click()
    assert shown(browser, "password-status").text.startswith("Password changed;")
    assert browser.find_element(By.ID, "new-password").get_attribute("value") == ""
    assert sign_in(server, EMAIL, PASSWORD).status == 401
    assert sign_in(server, EMAIL, NEW_PASSWORD).status == 200
    browser.get(server.url + "/account")
    at(browser, "/account")  # still signed in
    logged = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    # The refused calls above are the API's 400s, logged by the browser as failed requests.
    assert all("/api/v1/user" in e["message"] for e in logged), logged

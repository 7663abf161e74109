"""The sign-in and set-password pages in a real headless Chromium: the first start's link, errors
shown in the page, signing in and out. Chromium as in test_tracker_browser (never skipped)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.browser import start_chromium, wait
from tests.server import TrailServer
from tests.test_signin import LINK_LINE, printed


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    s = TrailServer(tmp_path_factory.mktemp("signin-browser") / "data", workers=1).start()
    try:
        yield s
    finally:
        assert s.stop() == 0


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"), console_logs=True)
    yield driver
    driver.quit()


def shown(driver: webdriver.Chrome, element_id: str) -> WebElement:
    """The element once it is visible with some text."""
    wait(driver, 10).until(
        lambda d: (
            d.find_element(By.ID, element_id).is_displayed()
            and d.find_element(By.ID, element_id).text.strip()
        )
    )
    return driver.find_element(By.ID, element_id)


def at(driver: webdriver.Chrome, path: str) -> None:
    wait(driver, 10).until(lambda d: re.search(f"^[^#]*{path}$", d.current_url))


def fill(driver: webdriver.Chrome, **fields: str) -> None:
    for name, value in fields.items():
        box = driver.find_element(By.ID, name)
        box.clear()
        box.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def set_first_password(
    driver: webdriver.Chrome, server: TrailServer, email: str, password: str
) -> None:
    """Open the admin's one-time link the server printed, set a password, land on the sites."""
    driver.get(printed(server, LINK_LINE).group(1))
    fill(driver, email=email, password=password, confirm=password)
    at(driver, "/sites")


def test_set_password_sign_out_and_sign_in(server: TrailServer, browser: webdriver.Chrome) -> None:
    link = printed(server, LINK_LINE).group(1)
    browser.get(link)
    fill(browser, email="first@browser.test", password="browser pass 1", confirm="other 12345")
    assert shown(browser, "confirm-error").text == "does not match the new password"
    assert browser.find_element(By.ID, "confirm").get_attribute("aria-invalid") == "true"
    fill(browser, password="short", confirm="short")
    assert "at least 8" in shown(browser, "password-error").text  # the server's answer
    fill(browser, password="browser pass 1", confirm="browser pass 1")
    at(browser, "/sites")
    assert "#token" not in browser.current_url
    assert shown(browser, "who").text == "first@browser.test"
    assert shown(browser, "sites").text == "No sites yet."
    browser.find_element(By.ID, "sign-out").click()
    at(browser, "/signin")
    fill(browser, email="first@browser.test", password="wrong password")
    error = shown(browser, "form-error")
    assert error.text == "wrong email or password"
    assert browser.switch_to.active_element == error  # read out and focused
    fill(browser, password="browser pass 1")
    at(browser, "/sites")
    browser.get(server.url + "/")
    at(browser, "/sites")
    # No script error and no blocked load: the only failures are the API's expected 400/401s.
    logged = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    unexpected = [
        e for e in logged if not re.search(r"/api/v1/auth/\S+ .* (400|401)", e["message"])
    ]
    assert logged and not unexpected, unexpected

"""Debian's headless chromium driven by chromedriver, as every browser test starts it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from tests.server import TrailServer

CHROME_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
    f"--user-agent={CHROME_UA}",
]


def start_chromium(
    profile: Path, *extra_flags: str, console_logs: bool = False
) -> webdriver.Chrome:
    """A headless chromium with its own profile dir; `console_logs` keeps the page's console
    for `driver.get_log("browser")`."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "install Debian's chromium and chromium-driver (see .ci/run)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, *extra_flags]:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    if console_logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    return driver


def clear_of_midnight(minutes: int = 5) -> datetime:
    """The time now (UTC), after waiting for UTC midnight when it is less than `minutes` away:
    a module whose scenario puts hits "today" then runs its tests on the same date."""
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    if midnight - now < timedelta(minutes=minutes):
        time.sleep((midnight - now).total_seconds() + 1)
        now = datetime.now(UTC)
    return now


def today_at_most(now: datetime, ago: timedelta) -> datetime:
    """`ago` before `now`, but no earlier than the start of now's UTC day: "today's" hits of a
    scenario started just after midnight."""
    return max(now - ago, datetime.combine(now.date(), datetime.min.time(), UTC))


# The environment of a server whose scenario has hits of a year ago and more.
OLD_HITS = {"TRAIL_MAX_HIT_AGE_DAYS": "800"}


def one_worker_server(
    factory: pytest.TempPathFactory,
    name: str,
    env: dict[str, str] | None = None,
    prepare: Callable[[Path], None] | None = None,
) -> Iterator[TrailServer]:
    """A module's server for browser tests: one worker, segments sealed every 200 ms, `env`
    added to its environment; `prepare` gets the data directory before the server starts."""
    data = factory.mktemp(name) / "data"
    if prepare is not None:
        prepare(data)
    s = TrailServer(data, workers=1, env={"TRAIL_SEAL_INTERVAL_MS": "200", **(env or {})}).start()
    try:
        yield s
    finally:
        assert s.stop() == 0


def en_chromium(factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """A module's browser for the dashboard tests: en-US (numbers as 1,234), console kept."""
    driver = start_chromium(factory.mktemp("chromium-profile"), "--lang=en-US", console_logs=True)
    yield driver
    driver.quit()


def wait(
    driver: webdriver.Chrome, timeout: float = 10, poll_frequency: float = 0.5
) -> WebDriverWait:
    """WebDriverWait that also tries again when an element it read was replaced meanwhile (the
    dashboard renders panels anew as their data arrives)."""
    return WebDriverWait(
        driver, timeout, poll_frequency, ignored_exceptions=(StaleElementReferenceException,)
    )

"""tracker.js in a real headless Chromium: a visitor walks through a local test site and the
statistics then show exactly what they did.

Chromium and its driver come from Debian (`apt-get install chromium chromium-driver`, which
.ci/run does); selenium drives it. A missing browser fails this test: it is never skipped.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import start_chromium
from tests.server import TrailServer, free_port
from tests.test_ingest_e2e import wait_for

SITE_DIR = Path(__file__).parent / "site"
# Headless Chromium says "HeadlessChrome" in its UA, which trail rightly drops as a bot; the
# visitor here is a person using desktop Chrome.


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Serves tests/site with the trail URL, website id and the 'other site' URL filled in."""

    substitutions: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        name = self.path.split("?")[0].lstrip("/") or "index.html"
        file = SITE_DIR / name
        if "/" in name or not file.is_file():
            self.send_error(404)
            return
        text = file.read_text()
        for key, value in self.substitutions.items():
            text = text.replace("{{" + key + "}}", value)
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    data = tmp_path_factory.mktemp("browser") / "data"
    data.mkdir()
    # The whole walk comes from one IP in a few seconds: lift the per-IP collect limit.
    s = TrailServer(
        data,
        workers=2,
        env={"TRAIL_SEAL_INTERVAL_MS": "200", "TRAIL_RATE_LIMIT_COLLECT": "1000/10"},
    ).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def test_site(trail: TrailServer) -> Iterator[tuple[str, str]]:
    """(site id, test site base URL): the test site on 127.0.0.1, registered in trail as such."""
    site_id, _ = trail.create_site("127.0.0.1")
    port = free_port()
    # "localhost" is another host to the browser than "127.0.0.1": the outbound link's target.
    values = {"TRAIL": trail.url, "SITE_ID": site_id, "OTHER": f"http://localhost:{port}"}

    class Handler(SiteHandler):
        substitutions: ClassVar[dict[str, str]] = values

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield site_id, f"http://127.0.0.1:{port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def _route(driver: webdriver.Chrome, want: str) -> None:
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "route").text == want)


def _title(driver: webdriver.Chrome, want: str) -> None:
    WebDriverWait(driver, 10).until(lambda d: d.title == want)


def _scroll_to(driver: webdriver.Chrome, fraction: float) -> None:
    """Scroll so the bottom of the viewport sits at `fraction` of the page, then let it settle."""
    driver.execute_script(
        "var e = document.documentElement;"
        "window.scrollTo(0, e.scrollHeight * arguments[0] - window.innerHeight);",
        fraction,
    )
    driver.execute_script("return new Promise(r => requestAnimationFrame(() => setTimeout(r, 50)))")


def walk(driver: webdriver.Chrome, base: str) -> None:
    """One visit: home -> long read (scrolled to the end) -> the SPA (push, back, replace,
    a custom event, the tab hidden behind another one) -> an outbound link that leaves the site."""
    driver.get(base + "/")  # page_view /
    _title(driver, "Home")
    driver.find_element(By.ID, "to-long").click()  # page_view /long.html
    _title(driver, "Long read")
    for fraction in (0.3, 0.55, 0.8, 1.0):  # scroll_25, scroll_50, scroll_75
        _scroll_to(driver, fraction)
    _scroll_to(driver, 0.1)
    _scroll_to(driver, 1.0)  # nothing new: once per page
    driver.find_element(By.ID, "to-app").click()  # page_view /app.html
    _title(driver, "App")
    driver.find_element(By.ID, "settings").click()  # pushState: page_view /app/settings
    _route(driver, "/app/settings")
    driver.back()  # popstate: page_view /app.html
    _route(driver, "/app.html")
    driver.find_element(By.ID, "profile").click()  # replaceState: page_view /app/profile
    _route(driver, "/app/profile")
    driver.find_element(By.ID, "signup").click()  # custom event "signup"
    app_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")  # the app tab is hidden: close_tab
    driver.close()
    driver.switch_to.window(app_tab)
    driver.find_element(By.ID, "outbound").click()  # outbound_link, then close_tab
    _title(driver, "Elsewhere")


def not_tracked(driver: webdriver.Chrome, base: str) -> None:
    """Pages that must send nothing: loopback without data-allow-localhost, and an opted-out visitor."""
    driver.get(base + "/nolocal.html")
    _title(driver, "Loopback without opt-in")
    driver.get(base + "/optout.html")
    _title(driver, "Opted out")
    driver.execute_script("analytics.track('ignored', {})")
    driver.get("about:blank")


def test_browser_visit_is_counted_exactly(
    trail: TrailServer, test_site: tuple[str, str], browser: webdriver.Chrome
) -> None:
    site, base = test_site
    walk(browser, base)
    not_tracked(browser, base)
    today = datetime.now(UTC).date().isoformat()
    span = {"from": today, "to": today}

    def complete(_: Any) -> bool:
        events = trail.stats("events", site, **span)
        sessions = trail.stats("session/list", site, **span)
        views = sum(p["views"] for p in trail.stats("page", site, **span))
        return len(events) == 5 and views >= 6 and bool(sessions) and sessions[0]["extended"] >= 4

    wait_for(lambda: None, complete, timeout=20)

    # Page views: two page loads, the SPA's initial load, push, back and replace.
    pages = {p["path"]: p["views"] for p in trail.stats("page", site, **span)}
    assert pages == {"/": 1, "/long.html": 1, "/app.html": 2, "/app/settings": 1, "/app/profile": 1}

    # Events: each scroll depth once, the custom event by its own name, the outbound click.
    events = {e["name"]: e["count"] for e in trail.stats("events", site, **span)}
    assert events == {
        "scroll_25": 1,
        "scroll_50": 1,
        "scroll_75": 1,
        "signup": 1,
        "outbound_link": 1,
    }
    listed = {e["name"]: e["meta"] for e in trail.stats("event/list", site, **span)}
    assert listed["signup"] == {"plan": "pro", "seats": "3"}
    assert listed["outbound_link"] == {
        "url": f"http://localhost:{base.rsplit(':', 1)[1]}/elsewhere.html"
    }
    assert listed["scroll_50"] == {}

    # One visitor, one session from / to /app/profile (SPA routes are not new visits), kept alive
    # by close_tab each time the tab was hidden; close_tab is no event and does not un-bounce.
    total = trail.stats("total", site, **span)
    assert (total["visitors"], total["sessions"], total["views"], total["bounces"]) == (1, 1, 6, 0)
    [session] = trail.stats("session/list", site, **span)
    assert (session["entry_path"], session["exit_path"], session["page_views"]) == (
        "/",
        "/app/profile",
        6,
    )
    # close_tab keep-alives: leaving / and /long.html, the new tab hiding the app, leaving the app.
    assert session["extended"] == 4
    assert session["browser"] == "Chrome" and session["os"] == "Linux"

    # The TinyTrail reports read the same rows.
    custom = trail.call(
        "GET", f"/api/v1/reports/custom-events?website_id={site}&period=today", key=trail.admin_key
    )
    assert custom.status == 200, custom.body
    assert custom.json()["data"]["rows"] == [{"name": "signup", "count": 1}]
    pages_report = trail.call(
        "GET", f"/api/v1/reports/pages?website_id={site}&period=today", key=trail.admin_key
    )
    assert pages_report.status == 200, pages_report.body
    rows = pages_report.json()["data"]["rows"]
    assert {r["path"]: r["pageviews"] for r in rows} == pages

"""A site's settings over a real server, in headless Chromium: every record type the management
API can update is edited from its row (the form filled in, saved through the update endpoint, a
400 shown by its field, the list updated); the general switches; the snippet's options rewrite
the tracker.js tag and a page with the tag behaves as it says; the domain's theme (colours and an
uploaded logo) shows on its public and access-link dashboards, and a logo of another host is
never fetched. Also the pages' partials (`{{> head.html}}`). Screenshots at 1280 and 375 px go to
<tmp_path>/screenshots."""

from __future__ import annotations

import base64
import http.server
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from tests.browser import en_chromium, one_worker_server, wait
from tests.server import TrailServer, free_port
from tests.test_accessibility_browser import audit, axe_path
from tests.test_dashboard_browser import screenshots
from tests.test_dashboard_share_browser import field_error, ready, saved, submit
from tests.test_signin import send
from tests.test_signin_browser import at, fill, set_first_password, shown
from tests.test_stats_e2e import wait_for
from trail.api.dashboard import pages

EMAIL, PASSWORD = "owner@settings.test", "settings pass 2"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    yield from one_worker_server(tmp_path_factory, "dashboard-settings")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    yield from en_chromium(tmp_path_factory)


@pytest.fixture(scope="module")
def owner(server: TrailServer, browser: webdriver.Chrome) -> str:
    """The admin with a password, signed in in the browser."""
    set_first_password(browser, server, EMAIL, PASSWORD)
    return EMAIL


def admin(server: TrailServer, method: str, path: str, body: Any = None) -> Any:
    r = server.call(method, path, body, key=server.admin_key)
    assert r.status == 200, (path, r.body)
    return r.json() if r.body else None


def domain(server: TrailServer, site: str) -> dict[str, Any]:
    return admin(server, "GET", f"/api/v1/domain?id={site}")[0]


def open_settings(driver: webdriver.Chrome, server: TrailServer, site: str) -> None:
    driver.get(f"{server.url}/sites/{site}/settings")
    if "/signin" in driver.current_url:
        fill(driver, email=EMAIL, password=PASSWORD)
        at(driver, "/sites")
        driver.get(f"{server.url}/sites/{site}/settings")
    wait(driver, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
    )


def row(driver: webdriver.Chrome, section: str, text: str) -> WebElement:
    """The row of `section`'s list showing `text`, once the list has it."""
    wait(driver, 10).until(lambda d: text in d.find_element(By.ID, f"{section}-list").text)
    items = driver.find_elements(By.CSS_SELECTOR, f"#{section}-list > li")
    return next(li for li in items if text in li.text)


def edit(driver: webdriver.Chrome, section: str, text: str) -> None:
    """Opens the edit form of the row showing `text`; the form's first field gets the focus."""
    row(driver, section, text).find_element(By.CSS_SELECTOR, "button[data-edit]").click()
    wait(driver, 10).until(lambda d: d.find_elements(By.ID, f"{section}-edit"))
    focused = driver.switch_to.active_element
    assert (focused.get_attribute("id") or "").startswith(f"{section}-edit-")


def edited(driver: webdriver.Chrome, section: str, text: str) -> None:
    """Waits for the form to close and the list to show `text`, with the focus back on the row's
    Edit button."""
    wait(driver, 10).until(lambda d: not d.find_elements(By.ID, f"{section}-edit"))
    row(driver, section, text)
    assert driver.switch_to.active_element.get_attribute("data-edit")
    assert driver.find_element(By.ID, f"{section}-status").text.startswith("Saved")


def no_foreign_loads(driver: webdriver.Chrome, server: TrailServer) -> None:
    loads = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(u.startswith(server.url + "/") for u in loads), loads


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real (decodable) PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def scheme(driver: webdriver.Chrome, name: str) -> None:
    features = [{"name": "prefers-color-scheme", "value": name}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})


def computed(driver: webdriver.Chrome, selector: str, prop: str) -> str:
    return str(
        driver.execute_script(
            "return getComputedStyle(document.querySelector(arguments[0]))[arguments[1]]",
            selector,
            prop,
        )
    )


# -- partials ---------------------------------------------------------------------------------


def test_pages_take_in_their_partials() -> None:
    bundle = pages.bundle()
    head = (pages.PARTIALS / "head.html").read_text().strip()
    header = (pages.PARTIALS / "header.html").read_text().strip()
    for name, content in bundle.pages.items():
        text = content.decode()
        assert "{{" not in text, name
        assert text.count('<meta charset="utf-8">') == 1, name
        assert '<link rel="icon" href="/assets/favicon.' in text, name
    for name in ("sites", "settings", "site"):
        assert bundle.pages[name].decode().count('<header class="bar">') == 1
        assert 'id="sign-out"' in bundle.pages[name].decode()
    assert "{{favicon.svg}}" in head and 'id="sign-out"' in header
    urls = {"favicon.svg": "/assets/favicon.x.svg"}
    assert pages.render("<head>\n{{> head.html}}\n</head>", "t", urls).count("<meta") == 3
    with pytest.raises(ValueError, match="no partial 'nope.html'"):
        pages.render("{{> nope.html}}", "t", urls)
    with pytest.raises(ValueError, match=r"\{\{missing.js\}\} names no asset"):
        pages.render('<script src="{{missing.js}}"></script>', "t", urls)


# -- editing records --------------------------------------------------------------------------


def test_records_are_edited_through_the_update_endpoints(
    server: TrailServer, owner: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    site, _ = server.create_site("edit.example")
    admin(
        server,
        "POST",
        "/api/v1/goal",
        # What the form does not show must survive an edit (PUT replaces the goal).
        {"domain_id": site, "name": "Pricing", "path_pattern": "/pricing", "visitors": 40},
    )
    steps = [
        {"name": "Home", "filter": {"path": ["/"]}},
        {"name": "Buy", "filter": {"path": ["/buy"], "country": ["de"]}},
    ]
    admin(server, "POST", "/api/v1/funnel", {"domain_id": site, "name": "Sale", "steps": steps})
    admin(server, "POST", "/api/v1/filter", {"domain_id": site, "type": "ip", "filter": "10.0.0.1"})
    admin(
        server, "POST", "/api/v1/domain/alternative", {"domain_id": site, "hostname": "a.example"}
    )
    admin(server, "POST", "/api/v1/domain/link", {"domain_id": site, "description": "board"})
    hook = {"domain_id": site, "event": "signup", "endpoint": "https://hooks.example/a"}
    admin(server, "POST", "/api/v1/webhook", hook)
    report = {"domain_id": site, "emails": ["ann@edit.example"], "interval": 1}
    admin(server, "POST", "/api/v1/report", report)
    body = {"domain_id": site, "type": "token", "description": "old key"}
    admin(server, "POST", "/api/v1/client", body)
    open_settings(browser, server, site)

    # The owner is listed without a role to pick or a delete button (it has no member record).
    owner_row = row(browser, "members", EMAIL)
    assert "Owner" in owner_row.text and not owner_row.find_elements(By.TAG_NAME, "button")

    # Goal: a 400 by its field, then saved; the rest of the goal is kept.
    edit(browser, "goals", "Pricing")
    assert browser.find_element(By.ID, "goals-edit-name").get_attribute("value") == "Pricing"
    assert (
        browser.find_element(By.ID, "goals-edit-path_pattern").get_attribute("value") == "/pricing"
    )
    submit(browser, "goals-edit", name="Plans", path_pattern="", event_name="")
    assert field_error(browser, "goals-edit", "path_pattern")  # the API's 400, by the field
    assert browser.find_element(By.ID, "goals-edit-path_pattern").get_attribute("aria-invalid")
    submit(browser, "goals-edit", name="Plans", path_pattern="/plans/**")
    edited(browser, "goals", "Plans")
    [goal] = admin(server, "GET", f"/api/v1/goal?id={site}")
    assert (goal["name"], goal["path_pattern"], goal["visitor_goal"]) == ("Plans", "/plans/**", 40)

    # Escape closes the form without saving, the focus back on its Edit button.
    edit(browser, "goals", "Plans")
    browser.find_element(By.ID, "goals-edit-name").send_keys("x", Keys.ESCAPE)
    wait(browser, 10).until(lambda d: not d.find_elements(By.ID, "goals-edit"))
    assert browser.switch_to.active_element.get_attribute("data-edit") == goal["id"]
    assert admin(server, "GET", f"/api/v1/goal?id={site}")[0]["name"] == "Plans"

    # Funnel: steps filled in; a changed step value; the second step keeps its country.
    edit(browser, "funnels", "Sale")
    assert browser.find_element(By.ID, "funnels-edit-step1-value").get_attribute("value") == "/buy"
    submit(browser, "funnels-edit", **{"step1-value": "/checkout"})
    edited(browser, "funnels", "Sale")
    [funnel] = admin(server, "GET", f"/api/v1/funnel?id={site}")
    assert funnel["steps"][1]["filter"] == {"path": ["/checkout"], "country": ["de"]}
    assert list(funnel["steps"][1]["filter"]) == ["path", "country"]  # the form's first
    # A step's 400 shows by that step's value.
    edit(browser, "funnels", "Sale")
    submit(browser, "funnels-edit", **{"step0-param": "platform", "step0-value": "toaster"})
    wait(browser, 10).until(
        lambda d: d.find_element(By.ID, "funnels-edit-step0-value-error").is_displayed()
    )
    browser.find_element(By.CSS_SELECTOR, "#funnels-edit button.quiet:not(.inline)").click()

    # Traffic filter: its 400, then saved.
    edit(browser, "filters", "10.0.0.1")
    submit(browser, "filters-edit", filter="not an ip")
    assert "not an IP" in field_error(browser, "filters-edit", "filter")
    submit(browser, "filters-edit", type="path", filter="/admin/*", description="staff")
    edited(browser, "filters", "path: /admin/*")
    [rule] = admin(server, "GET", f"/api/v1/filter?domain_id={site}")
    assert (rule["type"], rule["filter"], rule["description"]) == ("path", "/admin/*", "staff")

    # Alternative domain.
    edit(browser, "alternatives", "a.example")
    submit(browser, "alternatives-edit", hostname="edit.example")
    assert (
        field_error(browser, "alternatives-edit", "hostname") == "already allowed for this domain"
    )
    submit(browser, "alternatives-edit", hostname="b.example")
    edited(browser, "alternatives", "b.example")

    # Access link: description and an end.
    edit(browser, "links", "board")
    submit(browser, "links-edit", description="wallboard")
    edited(browser, "links", "wallboard")
    [link] = admin(server, "GET", f"/api/v1/domain/link?domain_id={site}")
    assert (link["description"], link["valid_until"]) == ("wallboard", None)

    # Webhook.
    edit(browser, "webhooks", "signup")
    submit(browser, "webhooks-edit", endpoint="ftp://hooks.example/a")
    assert "http" in field_error(browser, "webhooks-edit", "endpoint")
    submit(browser, "webhooks-edit", event="purchase", endpoint="https://hooks.example/b")
    edited(browser, "webhooks", "purchase → https://hooks.example/b")

    # Email report: how often and where it links.
    edit(browser, "reports", "ann@edit.example")
    submit(browser, "reports-edit", interval="4", link_to="public")
    edited(browser, "reports", "Every 4 weeks")
    [saved_report] = admin(server, "GET", f"/api/v1/report?id={site}")
    assert (saved_report["interval"], saved_report["link_to"]) == (4, "public")

    # Access key: its description.
    edit(browser, "clients", "old key")
    submit(browser, "clients-edit", description="new key")
    edited(browser, "clients", "new key")
    screenshots(browser, tmp_path / "screenshots", "settings-edited")
    # An open editor, for the screenshots.
    edit(browser, "funnels", "Sale")
    screenshots(browser, tmp_path / "screenshots", "settings-editing-funnel")
    logged = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert all(e["source"] == "network" for e in logged), logged  # the 400s asked for


def test_general_settings_and_switches(
    server: TrailServer, owner: str, browser: webdriver.Chrome
) -> None:
    site, _ = server.create_site("general.example")
    open_settings(browser, server, site)
    submit(browser, "general-subdomain", subdomain="Not Valid!")
    assert field_error(browser, "general-subdomain", "subdomain")
    submit(browser, "general-subdomain", subdomain="general-two")
    saved(browser, "general-subdomain")
    submit(browser, "general-active", time="5")
    assert "between 60 and 86400" in field_error(browser, "general-active", "time")
    submit(browser, "general-active", time="300")
    saved(browser, "general-active")
    found = domain(server, site)
    assert (found["subdomain"], found["active_visitors_seconds"]) == ("general-two", 300)

    for name, key, want in (
        ("group_by_title", "group_by_title", True),
        ("disable_scripts", "disable_scripts", True),
        ("allow_any_hostname", "settings", {"allow_any_hostname": "true"}),
    ):
        box = browser.find_element(By.ID, f"general-{name}")
        assert not box.is_selected()
        box.click()

        def changed(_: webdriver.Chrome, k: str = key, w: object = want) -> bool:
            return bool(domain(server, site)[k] == w)

        wait(browser, 10).until(changed)
        assert browser.find_element(By.ID, f"general-{name}").is_selected()
    browser.find_element(By.ID, "general-allow_any_hostname").click()
    wait(browser, 10).until(
        lambda d: domain(server, site)["settings"] == {"allow_any_hostname": "false"}
    )
    # A reload shows what the domain says.
    open_settings(browser, server, site)
    assert browser.find_element(By.ID, "general-disable_scripts").is_selected()
    assert not browser.find_element(By.ID, "general-allow_any_hostname").is_selected()
    assert browser.find_element(By.ID, "general-active-time").get_attribute("value") == "300"


# -- the snippet ------------------------------------------------------------------------------


class TagPage(http.server.BaseHTTPRequestHandler):
    """Serves `pages[path]` (HTML with a snippet pasted in) on 127.0.0.1."""

    pages: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        text = self.pages.get(self.path)
        if text is None:
            self.send_error(404)
            return
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def tag_site() -> Iterator[str]:
    port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), TagPage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    httpd.shutdown()
    httpd.server_close()


def page_with(tag: str, title: str) -> str:
    return (
        f"<!doctype html><html><head><title>{title}</title>{tag}</head><body>{title}</body></html>"
    )


def paths(server: TrailServer, site: str) -> dict[str, int]:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    rows = server.stats("page", site, **{"from": day, "to": day, "tz": "UTC"})
    return {r["path"]: r["views"] for r in rows}


def test_snippet_options_rewrite_the_tag_and_pages_follow_it(
    server: TrailServer, owner: str, browser: webdriver.Chrome, tag_site: str
) -> None:
    site, _ = server.create_site("127.0.0.1")
    open_settings(browser, server, site)
    plain = shown(browser, "snippet-tracker").text
    want = f'<script defer data-id="{site}" src="{server.url}/js/tracker.js"></script>'
    assert plain == want
    browser.find_element(By.ID, "snippet-opt-localhost").click()
    dev = shown(browser, "snippet-tracker").text
    assert dev == want.replace(" src=", " data-allow-localhost src=")
    browser.find_element(By.ID, "snippet-opt-disabled").click()
    off = shown(browser, "snippet-tracker").text
    assert off == want.replace(" src=", " data-allow-localhost data-disabled src=")
    browser.find_element(By.ID, "snippet-opt-localhost").click()
    assert shown(browser, "snippet-tracker").text == want.replace(" src=", " data-disabled src=")
    # The Pirsch browser SDK by the identification code; a new code rewrites it.
    code = domain(server, site)["identification_code"]
    web = shown(browser, "snippet-web").text
    assert f'identificationCode: "{code}"' in web and f'"{server.url}/api/v1"' in web
    assert "pirsch-sdk/web" in web and "pirsch-sdk" in shown(browser, "snippet-sdk").text
    browser.find_element(By.CSS_SELECTOR, "#snippet-code button[type=submit]").click()
    new_code = wait(browser, 10).until(
        lambda d: (c := domain(server, site)["identification_code"]) != code and c
    )
    wait(browser, 10).until(lambda d: new_code in d.find_element(By.ID, "snippet-web").text)

    # The tags at work on a page of 127.0.0.1: the plain one sends nothing from a loopback
    # address, data-allow-localhost does, data-disabled does not.
    TagPage.pages.update(
        {
            "/plain": page_with(plain, "Plain"),
            "/dev": page_with(dev, "Dev"),
            "/off": page_with(off, "Off"),
        }
    )
    for path in ("/plain", "/off", "/dev"):
        browser.get(tag_site + path)
        title = path[1:].title()
        wait(browser, 10).until(lambda d: d.title == title)  # noqa: B023 (waited for at once)
    wait_for(lambda: paths(server, site), lambda p: "/dev" in p)
    time.sleep(1)  # the others had their chance: they came first
    assert paths(server, site) == {"/dev": 1}


def test_the_sites_page_snippet_has_the_options(
    server: TrailServer, owner: str, browser: webdriver.Chrome
) -> None:
    browser.get(server.url + "/sites")
    if "/signin" in browser.current_url:
        fill(browser, email=EMAIL, password=PASSWORD)
        at(browser, "/sites")
    browser.find_element(By.ID, "hostname").send_keys("snippet.example")
    browser.find_element(By.CSS_SELECTOR, "#add-site button[type=submit]").click()
    tag = shown(browser, "snippet-tracker").text
    assert "data-allow-localhost" not in tag
    browser.find_element(By.ID, "snippet-opt-localhost").click()
    assert " data-allow-localhost src=" in shown(browser, "snippet-tracker").text
    [site] = admin(server, "GET", "/api/v1/domain?domain=snippet.example")
    assert site["identification_code"] in shown(browser, "snippet-web").text


# -- themes on shared dashboards ----------------------------------------------------------------


def test_the_theme_shows_on_shared_dashboards(
    server: TrailServer, owner: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    site, _ = server.create_site("themed.example")
    open_settings(browser, server, site)
    submit(browser, "theme-colours", accent="red")
    assert "hex colour" in field_error(browser, "theme-colours", "accent")
    submit(
        browser,
        "theme-colours",
        accent="#aa0000",
        background="#fafae0",
        card="#e0f0ff",
        background_dark="#101830",
    )
    saved(browser, "theme-colours")
    logo = tmp_path / "my logo.png"
    logo.write_bytes(png(40, 20, (0, 128, 0)))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    browser.find_element(By.ID, "theme-files-logo_dark").send_keys(str(bad))
    browser.find_element(By.CSS_SELECTOR, "#theme-files button[type=submit]").click()
    assert "PNG" in field_error(browser, "theme-files", "logo_dark")  # the API's 400
    browser.find_element(By.ID, "theme-files-logo_dark").clear()
    browser.find_element(By.ID, "theme-files-logo_light").send_keys(str(logo))
    browser.find_element(By.CSS_SELECTOR, "#theme-files button[type=submit]").click()
    saved(browser, "theme-files")
    preview = wait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#theme-images img.preview")
    )
    wait(browser, 10).until(lambda d: d.execute_script("return arguments[0].naturalWidth", preview))
    settings = domain(server, site)["theme_settings"]
    assert settings["accent"] == "#aa0000" and settings["logo_light"].startswith("/api/v1/theme/")
    screenshots(browser, tmp_path / "screenshots", "settings-theme")

    # Nobody else reads the file through the API; the shared dashboard does, once it is shared.
    assert send(server, "GET", settings["logo_light"]).status == 401
    assert send(server, "GET", f"/share-theme/{site}/logo_light").status == 404  # not public
    admin(server, "POST", "/api/v1/domain/public", {"domain_id": site})
    r = send(server, "GET", f"/share-theme/{site}/logo_light")
    assert r.status == 200 and r.headers["content-type"] == "image/png"
    assert r.body == logo.read_bytes()

    browser.delete_all_cookies()
    scheme(browser, "light")
    try:
        browser.get(f"{server.url}/share/{site}")
        ready(browser)
        assert computed(browser, "body", "backgroundColor") == "rgb(250, 250, 224)"
        assert computed(browser, ".bar", "backgroundColor") == "rgb(224, 240, 255)"
        assert computed(browser, "#export", "backgroundColor") == "rgb(170, 0, 0)"  # --accent
        assert computed(browser, "#export", "color") == "rgb(255, 255, 255)"  # readable on it
        accent = browser.execute_script(
            "return getComputedStyle(document.documentElement).getPropertyValue('--accent')"
        )
        assert accent.strip() == "#aa0000"
        on_accent = browser.execute_script(
            "return getComputedStyle(document.documentElement).getPropertyValue('--on-accent')"
        )
        assert on_accent.strip() == "#fff"
        img = browser.find_element(By.ID, "share-logo")
        assert img.get_attribute("src") == f"{server.url}/share-theme/{site}/logo_light"
        assert img.get_attribute("alt") == "themed.example"
        wait(browser, 10).until(lambda d: d.execute_script("return arguments[0].naturalWidth", img))
        assert browser.execute_script("return arguments[0].naturalWidth", img) == 40
        screenshots(browser, tmp_path / "screenshots", "shared-themed")
        no_foreign_loads(browser, server)
        # Dark: the dark colours; the page's own where the theme has none for dark.
        scheme(browser, "dark")
        wait(browser, 10).until(
            lambda d: computed(d, "body", "backgroundColor") == "rgb(16, 24, 48)"
        )
        assert computed(browser, ".bar", "backgroundColor") == "rgb(30, 33, 37)"  # --card, dark
        # The toggle back to light brings the light colours back.
        browser.find_element(By.ID, "theme").click()
        wait(browser, 10).until(
            lambda d: computed(d, "body", "backgroundColor") == "rgb(250, 250, 224)"
        )
        browser.find_element(By.ID, "theme").click()
    finally:
        scheme(browser, "light")

    # An access link's dashboard of the same site has the theme too, its logo through the code.
    admin(server, "POST", "/api/v1/domain/public", {"domain_id": site})  # private again
    link = admin(server, "POST", "/api/v1/domain/link", {"domain_id": site, "description": "tv"})
    browser.get(f"{server.url}/share/{site}/{link['code']}")
    ready(browser)
    img = browser.find_element(By.ID, "share-logo")
    assert (img.get_attribute("src") or "").endswith(
        f"/share-theme/{site}/logo_light?access={link['code']}"
    )
    wait(browser, 10).until(lambda d: d.execute_script("return arguments[0].naturalWidth", img))
    assert computed(browser, "body", "backgroundColor") == "rgb(250, 250, 224)"
    assert send(server, "GET", f"/share-theme/{site}/logo_light").status == 404
    assert send(server, "GET", f"/share-theme/{site}/logo_light?access=nope").status == 404
    no_foreign_loads(browser, server)


def test_only_logos_trail_holds_are_shown(
    server: TrailServer, owner: str, browser: webdriver.Chrome
) -> None:
    """A logo setting that is another host's URL is neither fetched nor linked; a data: image is
    served by trail."""
    site, _ = server.create_site("elsewhere.example")
    image = png(8, 8, (200, 0, 0))
    data_url = "data:image/png;base64," + base64.b64encode(image).decode()
    body = {
        "domain_id": site,
        "settings": {
            "logo_light": "https://logos.elsewhere.example/logo.png",
            "favicon": data_url,
            "accent": "url(https://elsewhere.example/x)",  # not a colour: left out
        },
    }
    admin(server, "POST", "/api/v1/domain/theme", body)
    admin(server, "POST", "/api/v1/domain/public", {"domain_id": site})
    assert send(server, "GET", f"/share-theme/{site}/logo_light").status == 404
    r = send(server, "GET", f"/share-theme/{site}/favicon")
    assert r.status == 200 and r.body == image
    html = send(server, "GET", f"/share/{site}").body.decode()
    assert "logos.elsewhere.example" not in html and "url(" not in html
    assert f'<link rel="icon" href="/share-theme/{site}/favicon">' in html

    browser.get(f"{server.url}/share/{site}")
    ready(browser)
    assert not browser.find_elements(By.ID, "share-logo")
    assert browser.find_element(By.CSS_SELECTOR, ".bar .brand").text == "trail"
    accent = browser.execute_script(
        "return getComputedStyle(document.documentElement).getPropertyValue('--accent')"
    )
    assert accent.strip() == "#1a5fb4"  # trail's own
    no_foreign_loads(browser, server)

    # With the data: image as the logo, the header shows it, served by trail.
    body = {"domain_id": site, "settings": {"logo_light": data_url}}
    admin(server, "POST", "/api/v1/domain/theme", body)
    browser.get(f"{server.url}/share/{site}")
    ready(browser)
    img = browser.find_element(By.ID, "share-logo")
    assert img.get_attribute("src") == f"{server.url}/share-theme/{site}/logo_light"
    wait(browser, 10).until(
        lambda d: d.execute_script("return arguments[0].naturalWidth", img) == 8
    )
    no_foreign_loads(browser, server)


# -- accessibility ------------------------------------------------------------------------------


@pytest.mark.parametrize("colours", ["light", "dark"])
def test_editing_and_a_themed_shared_dashboard_pass_axe(
    server: TrailServer, owner: str, browser: webdriver.Chrome, colours: str
) -> None:
    """axe-core (as tests/test_accessibility_browser.py runs it) on an open editor with a field's
    400, the theme and snippet cards, and a themed shared dashboard."""
    path = axe_path()
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make axe` (make test runs it) to download axe-core")
    axe = path.read_text()
    site, _ = server.create_site(f"{colours}.axe.example")
    goal = {"domain_id": site, "name": "Signup", "event_name": "signup"}
    admin(server, "POST", "/api/v1/goal", goal)
    theme = {"accent": "#8a1c1c", "background": "#fbf8ef", "accent_dark": "#ffb4a8"}
    admin(server, "POST", "/api/v1/domain/theme", {"domain_id": site, "settings": theme})
    admin(server, "POST", "/api/v1/domain/public", {"domain_id": site})
    scheme(browser, colours)
    try:
        open_settings(browser, server, site)
        edit(browser, "goals", "Signup")
        submit(browser, "goals-edit", event_name="")
        assert field_error(browser, "goals-edit", "path_pattern")
        browser.find_element(By.ID, "snippet-opt-localhost").click()
        audit(browser, axe, "/sites/<id>/settings editing a goal", colours)
        browser.get(f"{server.url}/share/{site}")
        ready(browser)
        audit(browser, axe, "/share/<id> with a theme", colours)
    finally:
        scheme(browser, "light")

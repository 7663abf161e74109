"""Shared dashboards, settings and compressed pages over a real server, in headless Chromium: a
public site's dashboard reads signed out, a private one answers 404, an access link opens its one
site until `valid_until`; a site's settings change it through the management API and show its
400s next to the field, and a Viewer cannot open them. Screenshots at 1280 and 375 px go to
<tmp_path>/screenshots."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.access_fixtures import create_user
from tests.browser import en_chromium, one_worker_server, wait
from tests.server import TrailServer
from tests.test_dashboard_browser import api, screenshots, send_scenario, stat
from tests.test_signin import send, sign_in
from tests.test_signin_browser import at, fill, set_first_password, shown
from tests.test_stats_e2e import wait_for

try:
    import brotli
except ImportError:  # pragma: no cover
    brotli = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    yield from one_worker_server(tmp_path_factory, "dashboard-share")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    yield from en_chromium(tmp_path_factory)


@pytest.fixture(scope="module")
def sites(server: TrailServer) -> dict[str, str]:
    """A public and a private site, each with the known scenario."""
    out = {}
    for name in ("public", "private"):
        site, key = server.create_site(f"{name}.example")
        send_scenario(server, key, f"{name}.example")
        total = wait_for(lambda s=site: api(server, "total", s), lambda t: t["views"] >= 8)
        assert (total["visitors"], total["views"]) == (7, 8)
        out[name] = site
    r = server.call(
        "POST", "/api/v1/domain/public", {"domain_id": out["public"]}, key=server.admin_key
    )
    assert r.status == 200 and r.json()["public"] is True, r.body
    return out


def ready(driver: webdriver.Chrome, after: int = 0) -> int:
    """Waits for the dashboard's ready mark after generation `after`, every part loaded."""
    wait(driver, 20).until(
        lambda d: int(d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") or 0) > after
    )
    body = driver.find_element(By.TAG_NAME, "body")
    assert body.get_attribute("data-failed") == "0"
    return int(body.get_attribute("data-loaded") or 0)


def no_errors(driver: webdriver.Chrome, server: TrailServer, answers_4xx: bool = False) -> None:
    """Nothing loaded from elsewhere, no script error, and no failed request unless the test
    made the API answer 4xx (chromium logs those)."""
    loads = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(u.startswith(server.url + "/") for u in loads), loads  # trail only
    logged = [
        e
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and not (answers_4xx and e["source"] == "network")
    ]
    assert not logged, logged


# -- compression ------------------------------------------------------------------------------


def test_pages_and_assets_are_sent_compressed(server: TrailServer) -> None:
    plain = send(server, "GET", "/signin")
    assert plain.status == 200 and "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    asset = next(p for p in plain.body.decode().split('"') if p.endswith(".js"))
    for path, body in (("/signin", plain.body), (asset, send(server, "GET", asset).body)):
        r = send(server, "GET", path, Accept_Encoding="gzip, deflate")
        assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
        assert gzip.decompress(r.body) == body and len(r.body) < len(body)
        r = send(server, "GET", path, Accept_Encoding="gzip;q=0, identity")
        assert "content-encoding" not in r.headers and r.body == body
        r = send(server, "GET", path, Accept_Encoding="gzip, br")
        if brotli is None:
            assert r.headers["content-encoding"] == "gzip"
        else:
            assert r.headers["content-encoding"] == "br"
            assert brotli.decompress(r.body) == body


# -- sharing ----------------------------------------------------------------------------------


def test_a_public_dashboard_reads_signed_out_and_a_private_one_is_404(
    server: TrailServer, sites: dict[str, str], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    assert send(server, "GET", f"/share/{sites['private']}").status == 404
    assert send(server, "GET", "/share/no-such-site").status == 404
    assert send(server, "GET", f"/sites/{sites['public']}").status == 303  # to sign-in

    browser.get(f"{server.url}/share/{sites['public']}")
    gen = ready(browser)
    assert shown(browser, "site-name").text == "public.example"
    total = api(server, "total", sites["public"])
    assert stat(browser, "visitors")[0] == total["visitors"] == 7
    assert not browser.find_elements(By.ID, "sign-out")
    assert "read-only" in browser.find_element(By.CSS_SELECTOR, "header").text
    # Filtering works as on the private dashboard, and stays on the shared URL.
    browser.find_element(By.CSS_SELECTOR, "#panel-sources .row").click()
    ready(browser, gen)
    assert "referrer_name=Google" in browser.current_url
    assert stat(browser, "visitors")[0] == 4
    assert f"/share/{sites['public']}?" in browser.current_url
    screenshots(browser, tmp_path / "screenshots", "shared-public")
    no_errors(browser, server)

    browser.get(f"{server.url}/share/{sites['private']}")
    assert shown(browser, "notice-title").text == "Dashboard not found"


def test_an_access_link_opens_its_site_until_valid_until(
    server: TrailServer, sites: dict[str, str], browser: webdriver.Chrome
) -> None:
    private, public = sites["private"], sites["public"]
    until = datetime.now(UTC) + timedelta(seconds=8)
    r = server.call(
        "POST",
        "/api/v1/domain/link",
        {"domain_id": private, "description": "for a client", "valid_until": until.isoformat()},
        key=server.admin_key,
    )
    assert r.status == 200, r.body
    code = r.json()["code"]
    # The code opens its site only.
    assert send(server, "GET", f"/share/{public}/{code}").status == 404
    assert send(server, "GET", f"/share/{private}/not-a-code").status == 404

    browser.get_log("browser")  # the previous test's 404 page
    browser.get(f"{server.url}/share/{private}/{code}")
    ready(browser)
    assert shown(browser, "site-name").text == "private.example"
    assert stat(browser, "visitors")[0] == api(server, "total", private)["visitors"]
    no_errors(browser, server)
    # The page's API calls carry the code, and the code reads nothing of another site.
    assert send(server, "GET", f"/api/v1/statistics/total?id={public}&access={code}").status == 404

    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.5)
    assert send(server, "GET", f"/share/{private}/{code}").status == 404
    browser.refresh()
    assert shown(browser, "notice-title").text == "Dashboard not found"
    r = send(server, "GET", f"/api/v1/statistics/total?id={private}&access={code}")
    assert r.status == 404


# -- settings ---------------------------------------------------------------------------------


def field_error(driver: webdriver.Chrome, form: str, name: str) -> str:
    return shown(driver, f"{form}-{name}-error").text


def submit(driver: webdriver.Chrome, form: str, **fields: str) -> None:
    for name, value in fields.items():
        box = driver.find_element(By.ID, f"{form}-{name}")
        if box.tag_name == "select":
            driver.execute_script("arguments[0].value = arguments[1]", box, value)
        else:
            box.clear()
            box.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, f"#{form} button[type=submit]").click()


def saved(driver: webdriver.Chrome, form: str) -> None:
    wait(driver, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f"#{form} .saved").text == "Saved."
    )


def test_settings_change_the_site_through_the_api(
    server: TrailServer, sites: dict[str, str], browser: webdriver.Chrome, tmp_path: Path
) -> None:
    site = sites["private"]
    set_first_password(browser, server, "owner@share.test", "settings pass 1")
    browser.get(f"{server.url}/sites/{site}/settings")
    wait(browser, 10).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
    )
    assert shown(browser, "site-name").text == "Settings of private.example"

    submit(browser, "general-hostname", hostname="not a host")
    assert field_error(browser, "general-hostname", "hostname")  # the API's 400, by the field
    submit(browser, "general-hostname", hostname="renamed.example")
    saved(browser, "general-hostname")
    submit(browser, "general-timezone", timezone="Europe/Berlin")
    saved(browser, "general-timezone")
    domain = server.call("GET", f"/api/v1/domain?id={site}", key=server.admin_key).json()[0]
    assert (domain["hostname"], domain["timezone"]) == ("renamed.example", "Europe/Berlin")

    browser.find_element(By.ID, "general-public").click()
    wait(browser, 10).until(lambda d: f"/share/{site}" in d.find_element(By.ID, "share-link").text)
    assert server.call("GET", f"/api/v1/domain?id={site}", key=server.admin_key).json()[0]["public"]
    browser.find_element(By.ID, "general-public").click()
    wait(browser, 10).until(lambda d: "Only members" in d.find_element(By.ID, "share-link").text)

    submit(browser, "goals-add", name="Pricing", path_pattern="/pricing")
    wait(browser, 10).until(lambda d: "Pricing" in d.find_element(By.ID, "goals").text)
    submit(browser, "filters-add", type="ip", filter="not an ip")
    assert field_error(browser, "filters-add", "filter")
    submit(browser, "filters-add", type="ip", filter="10.0.0.1")
    wait(browser, 10).until(lambda d: "ip: 10.0.0.1" in d.find_element(By.ID, "filters").text)
    submit(browser, "links-add", description="board")
    wait(browser, 10).until(lambda d: "board" in d.find_element(By.ID, "links").text)
    # The list is drawn again after each change: read the link through `wait`, which tries
    # again when the element it found was replaced meanwhile.
    link = wait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#links .records a").get_attribute("href")
    )
    assert link.startswith(f"{server.url}/share/{site}/")
    submit(browser, "clients-add", description="server")
    assert shown(browser, "client-secret-value").text.startswith("pa_")
    browser.find_element(By.ID, "funnels-add-name").send_keys("Buy")
    browser.find_element(By.ID, "funnels-add-step0-value").send_keys("/")
    browser.find_element(By.ID, "funnels-add-step1-value").send_keys("/pricing")
    browser.find_element(By.CSS_SELECTOR, "#funnels-add button[type=submit]").click()
    wait(browser, 10).until(lambda d: "Buy" in d.find_element(By.ID, "funnels").text)
    screenshots(browser, tmp_path / "screenshots", "settings")

    submit(browser, "general-delete", confirm="wrong")
    assert "renamed.example" in field_error(browser, "general-delete", "confirm")
    assert server.call("GET", f"/api/v1/domain?id={site}", key=server.admin_key).json()
    no_errors(browser, server, answers_4xx=True)


def signed_in_viewer(server: TrailServer, site: str, email: str) -> str:
    """A new user made a Viewer of `site` (invited, accepted) and signed in: its cookie
    (`trail_session=...`)."""
    viewer = create_user(server.data_dir, email)["api_key"]
    r = server.call("POST", "/api/v1/member", {"id": site, "emails": [email]}, key=server.admin_key)
    assert r.status == 200, r.body
    invitation = server.call("GET", "/api/v1/invitation", key=viewer).json()[0]
    r = server.call("POST", "/api/v1/invitation", {"id": invitation["id"]}, key=viewer)
    assert r.status == 200, r.body
    r = server.call("PUT", "/api/v1/user/password", {"password": "viewer pass 1"}, key=viewer)
    assert r.status == 200, r.body
    return sign_in(server, email, "viewer pass 1").headers["set-cookie"].split(";")[0]


def test_a_viewer_cannot_open_settings(server: TrailServer, sites: dict[str, str]) -> None:
    site = sites["public"]
    cookie = signed_in_viewer(server, site, "viewer@share.test")
    assert send(server, "GET", f"/sites/{site}", Cookie=cookie).status == 200
    r = send(server, "GET", f"/sites/{site}/settings", Cookie=cookie)
    assert r.status == 403 and b"Admin role" in r.body
    r = send(server, "GET", f"/sites/{sites['private']}/settings", Cookie=cookie)
    assert r.status == 404  # a site out of the viewer's reach
    assert send(server, "GET", f"/sites/{site}/settings").status == 303  # signed out


def test_the_settings_link_is_for_admins_and_owners_only(
    server: TrailServer, sites: dict[str, str], browser: webdriver.Chrome
) -> None:
    site = sites["public"]
    browser.get(f"{server.url}/sites/{site}")  # signed in as the owner by the settings test
    if "/signin" in browser.current_url:
        fill(browser, email="owner@share.test", password="settings pass 1")
        at(browser, "/sites")
        browser.get(f"{server.url}/sites/{site}")
    ready(browser)
    link = shown(browser, "settings-link")
    assert link.get_attribute("href") == f"{server.url}/sites/{site}/settings"
    link.click()
    at(browser, f"/sites/{site}/settings")

    browser.get(f"{server.url}/share/{site}")
    ready(browser)
    assert not browser.find_elements(By.ID, "settings-link")

    cookie = signed_in_viewer(server, site, "viewer2@share.test")
    name, _, value = cookie.partition("=")
    browser.delete_all_cookies()
    browser.add_cookie({"name": name, "value": value, "path": "/", "httpOnly": True})
    browser.get(f"{server.url}/sites/{site}")
    ready(browser)
    assert shown(browser, "who").text == "viewer2@share.test"
    assert not browser.find_element(By.ID, "settings-link").is_displayed()

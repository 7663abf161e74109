"""The site dashboard's world map, the chart's comparison line, paging through the sessions and the
events' metadata, in headless Chromium over a real server (with the test GeoIP database) and a
known scenario; every figure checked is the API's for the same query, and axe-core audits those
states. Screenshots at 1280 and 375 px go to <tmp_path>/screenshots. The vendored files are
checked against the checksums in vendor/SOURCES.md."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser import clear_of_midnight, en_chromium, one_worker_server, today_at_most, wait
from tests.server import TrailServer, request
from tests.test_accessibility_browser import COLOUR_SCHEMES, audit, axe_path, scheme
from tests.test_dashboard_browser import UA, api, loaded, screenshots, stat
from tests.test_signin_browser import set_first_password
from tests.test_stats_e2e import wait_for
from trail import geoip

ROOT = Path(__file__).resolve().parents[1]
MMDB = ROOT / "rust_core" / "tests" / "data" / "geo-test.mmdb"
VENDOR = ROOT / "trail" / "static" / "dashboard" / "vendor"
GZIP = {"Accept-Encoding": "gzip"}
# The test database's networks (tests/fixtures/make_mmdb.py): address -> country.
# 24 visitors from the United Kingdom, 3 from Sweden, 2 from Australia, 1 from Germany today;
# 2 more from the United Kingdom yesterday: 32 sessions, more than a page of 20.
TODAY = [
    *(f"81.2.69.{n}" for n in range(1, 25)),
    *(f"89.160.20.{n}" for n in range(1, 4)),
    *(f"203.0.113.{n}" for n in range(1, 3)),
    "2001:db8::1",
]
YESTERDAY = ["81.2.69.101", "81.2.69.102"]
# The comparison window of the last 30 days (the 30 days before them): 5 visitors 35 days ago
# and 3 more 40 days ago.
EARLIER = {
    35: [f"81.2.69.{n}" for n in range(150, 155)],
    40: ["89.160.20.150", "89.160.20.151", "89.160.20.152"],
}
# Events (stamped on arrival, so sent by visitors whose session is going on): name -> metadata.
EVENTS = [
    ("81.2.69.1", "signup", {"plan": "pro", "source": "ad"}),
    ("81.2.69.2", "signup", {"plan": "pro"}),
    ("81.2.69.3", "signup", {"plan": "pro", "source": "newsletter"}),
    ("89.160.20.1", "signup", {"plan": "free"}),
    ("81.2.69.4", "download", {}),
]


def stamp(t: datetime) -> str:
    return t.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def hit(ip: str, when: datetime, path: str = "/") -> dict[str, Any]:
    return {
        "url": "https://more.example" + path,
        "ip": ip,
        "user_agent": UA.format(v=120),
        "time": stamp(when),
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    yield from one_worker_server(tmp_path_factory, "dashboard-more", prepare=with_test_geoip)


def with_test_geoip(data: Path) -> None:
    """The test database where `trail geoip update` puts DB-IP's: used without `geoip_db`, and
    credited under the locations panel."""
    geoip.db_path(data).parent.mkdir(parents=True)
    shutil.copy(MMDB, geoip.db_path(data))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    yield from en_chromium(tmp_path_factory)


@pytest.fixture(scope="module")
def site(server: TrailServer, browser: webdriver.Chrome) -> str:
    """A site with the scenario; the browser signed in."""
    site, key = server.create_site("more.example")
    now = clear_of_midnight()  # today's hits are today's while the module runs
    hits = [
        hit(ip, today_at_most(now, timedelta(seconds=1200 - 20 * i))) for i, ip in enumerate(TODAY)
    ]
    hits += [hit(ip, now - timedelta(days=1)) for ip in YESTERDAY]
    hits += [hit(ip, now - timedelta(days=d)) for d, ips in EARLIER.items() for ip in ips]
    hits.append(hit("81.2.69.1", today_at_most(now, timedelta(seconds=60)), "/pricing"))
    assert server.call("POST", "/api/v1/hit/batch", hits, key=key).status == 200
    for ip, name, meta in EVENTS:
        event = {k: v for k, v in hit(ip, now).items() if k != "time"}
        event.update(event_name=name, event_meta=meta)
        assert server.call("POST", "/api/v1/event", event, key=key).status == 200
    wait_for(lambda: api(server, "total", site), lambda t: t["views"] >= len(TODAY) + 3)
    wait_for(lambda: api(server, "events", site), lambda e: sum(r["count"] for r in e) >= 5)

    set_first_password(browser, server, "more@browser.test", "more pass 12")
    return site


def query(driver: webdriver.Chrome) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(driver.current_url).query)


def open_dashboard(
    driver: webdriver.Chrome, server: TrailServer, site: str, search: str = ""
) -> int:
    driver.get(f"{server.url}/sites/{site}{search}")
    return loaded(driver)


def tip(driver: webdriver.Chrome) -> str:
    return driver.execute_script(
        "const t = document.querySelector('#panel-locations .map-tip');"
        "return t && !t.hidden ? t.textContent : ''"
    )


def test_world_map(
    server: TrailServer, browser: webdriver.Chrome, site: str, tmp_path: Path
) -> None:
    gen = open_dashboard(browser, server, site)
    countries = api(server, "country", site, limit="300")
    expected = {r["country_code"].upper(): r["visitors"] for r in countries}
    assert expected == {"GB": 26, "SE": 3, "AU": 2, "DE": 1}
    wait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#panel-locations .world"))
    painted = browser.execute_script(
        "return [...document.querySelectorAll('#panel-locations .world path.on')]"
        ".map(p => [p.dataset.code, Number(p.dataset.visitors), getComputedStyle(p).fill])"
    )
    assert {code: v for code, v, _ in painted} == expected
    # The choropleth: the most visitors in the darkest (most opaque) shade.
    shades = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#panel-locations .world path.on')]"
        ".map(p => [p.dataset.code, Number(getComputedStyle(p).fillOpacity)]))"
    )
    assert shades["GB"] == 1 and shades["GB"] > shades["SE"] > shades["AU"] > shades["DE"] > 0
    unpainted = browser.find_elements(By.CSS_SELECTOR, "#panel-locations .world path:not(.on)")
    assert len(unpainted) > 150  # every other country of the atlas, without visitors
    assert "26 visitors" in browser.find_element(By.CSS_SELECTOR, ".map-scale").text
    # DB-IP's database is credited, with its licence.
    credit = browser.find_element(By.CSS_SELECTOR, "#panel-locations .attribution")
    assert credit.text == "IP geolocation by DB-IP (CC BY 4.0)"
    links = [a.get_attribute("href") for a in credit.find_elements(By.TAG_NAME, "a")]
    assert links == ["https://db-ip.com/", "https://creativecommons.org/licenses/by/4.0/"]
    # The list beside the map is the API's first 10 rows.
    rows = browser.find_elements(By.CSS_SELECTOR, "#panel-locations .row")
    assert [r.get_attribute("data-key") for r in rows] == [r["country_code"] for r in countries]

    # Hover shows the name and visitors.
    gb = browser.find_element(By.CSS_SELECTOR, "#panel-locations .world path[data-code=GB]")
    ActionChains(browser).move_to_element(gb).perform()
    wait(browser, 5).until(lambda d: tip(d) == "United Kingdom: 26 visitors")
    # The map is one tab stop, on the country with the most visitors; arrow keys move on.
    assert gb.get_attribute("tabindex") == "0"
    assert gb.get_attribute("aria-label") == "United Kingdom: 26 visitors. Filter by it"
    # Tab from the panel's last tab reaches it.
    browser.execute_script("document.querySelector('#tabs-locations button:last-child').focus()")
    ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.get_attribute("data-code") == "GB"
    assert tip(browser) == "United Kingdom: 26 visitors"
    ActionChains(browser).send_keys(Keys.ARROW_RIGHT).perform()
    active = browser.switch_to.active_element
    assert active.get_attribute("data-code") == "SE"
    assert tip(browser) == "Sweden: 3 visitors"
    assert gb.get_attribute("tabindex") == "-1" and active.get_attribute("tabindex") == "0"
    screenshots(browser, tmp_path / "screenshots", "dashboard-map")
    browser.execute_script("document.documentElement.dataset.theme = 'dark'")
    dark = browser.execute_script("return getComputedStyle(arguments[0]).fill", gb)
    assert dark != next(fill for code, _, fill in painted if code == "GB")  # follows the theme
    browser.execute_script("delete document.documentElement.dataset.theme")

    # Enter (or a click) filters the dashboard by the country.
    browser.execute_script("arguments[0].focus()", active)
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    gen = loaded(browser, gen)
    assert query(browser) == {"country": [countries[1]["country_code"]]}
    sweden = api(server, "total", site, country=countries[1]["country_code"])
    assert stat(browser, "visitors")[0] == sweden["visitors"] == 3
    loads = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert any("/assets/countries-110m." in u for u in loads)
    # The map's files: the vendored ones, under hashed names, cached a year, compressed.
    script = browser.find_element(By.CSS_SELECTOR, "script[data-topology]")
    for name, attribute in (("countries-110m.json", "data-topology"), ("codes.json", "data-codes")):
        r = request("GET", server.url + script.get_attribute(attribute), None, GZIP)
        headers = {k.lower(): v for k, v in r.headers.items()}
        assert (r.status, headers["content-type"], headers["content-encoding"]) == (
            200,
            "application/json",
            "gzip",
        )
        assert "immutable" in headers["cache-control"]
        assert gzip.decompress(r.body) == (VENDOR / name).read_bytes()
    assert all(u.startswith(server.url + "/") for u in loads), loads  # trail only
    browser.find_element(By.CSS_SELECTOR, "#filters .chip-remove").click()
    loaded(browser, gen)
    gb = browser.find_element(By.CSS_SELECTOR, "#panel-locations .world path[data-code=GB]")
    gb.click()
    wait(browser, 10).until(lambda d: query(d) == {"country": [countries[0]["country_code"]]})
    loaded(browser, gen + 1)
    assert stat(browser, "visitors")[0] == 26
    logged = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not logged, logged


def window(days_back: int, length: int) -> dict[str, str]:
    today = datetime.now(UTC).date()
    last = today - timedelta(days=days_back)
    return {"from": str(last - timedelta(days=length - 1)), "to": str(last), "tz": "UTC"}


def chart(driver: webdriver.Chrome) -> list[list[float | None]]:
    return driver.execute_script("return window.trail.dash.chart.data.map(s => [...s])")


def test_chart_comparison_line(
    server: TrailServer, browser: webdriver.Chrome, site: str, tmp_path: Path
) -> None:
    gen = open_dashboard(browser, server, site)
    xs, ys, previous = chart(browser)
    now = server.stats("visitor", site, **window(0, 30))
    before = server.stats("visitor", site, **window(30, 30))
    assert ys == [r["visitors"] for r in now] and len(xs) == 30
    assert previous == [r["visitors"] for r in before]
    assert sum(previous) == 8 and previous[-6] == 5 and previous[-11] == 3  # 35 and 40 days ago
    legend = browser.find_element(By.ID, "chart-legend").text
    assert "Visitors," in legend and "Previous period," in legend
    assert browser.find_element(By.ID, "chart").get_attribute("aria-describedby") == "chart-legend"
    screenshots(browser, tmp_path / "screenshots", "dashboard-compare")

    # Views: the comparison follows the chart's metric.
    browser.find_element(By.ID, "stat-views").click()
    gen = loaded(browser, gen)
    assert chart(browser)[2] == [r["views"] for r in before]

    # A day is charted by hour, and compared with the day before, hour by hour.
    open_dashboard(browser, server, site, "?range=today")
    xs, ys, previous = chart(browser)
    hours = server.stats("hours", site, **window(0, 1))
    yesterday = server.stats("hours", site, **window(1, 1))
    assert ys == [h["visitors"] for h in hours]
    assert previous == [h["visitors"] for h in yesterday] and sum(previous) == 2

    # The previous year: the same dates a year before (no traffic then).
    open_dashboard(browser, server, site, "?compare=year")
    assert set(chart(browser)[2]) == {0}
    assert "Previous year," in browser.find_element(By.ID, "chart-legend").text


def session_ids(driver: webdriver.Chrome) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#panel-sessions .session')]"
        ".map(b => b.dataset.session)"
    )


def test_sessions_paging(
    server: TrailServer, browser: webdriver.Chrome, site: str, tmp_path: Path
) -> None:
    open_dashboard(browser, server, site)
    first = api(server, "session/list", site, limit="20")
    second = api(server, "session/list", site, offset="20", limit="20")
    ids = [f"{s['visitor_id']}:{s['session_id']}" for s in first + second]
    assert len(first) == 20 and len(second) == 12 and len(set(ids)) == 32
    assert session_ids(browser) == ids[:20]
    more = browser.find_element(By.ID, "more-sessions")
    assert more.is_displayed()
    more.click()
    wait(browser, 10).until(lambda d: len(session_ids(d)) > 20)
    assert session_ids(browser) == ids  # sessions 21 to 32 are the API's at offset 20
    assert not more.is_displayed()  # no more after them
    active = browser.switch_to.active_element
    assert active.get_attribute("data-session") == ids[20]  # the focus on the first new one
    assert "32 sessions shown" in browser.find_element(By.ID, "panel-sessions").text
    # The 21st opens its journey as any other.
    active.click()
    wait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#journey-body li"))
    browser.find_element(By.ID, "journey-close").click()
    screenshots(browser, tmp_path / "screenshots", "dashboard-sessions")


def test_event_meta(
    server: TrailServer, browser: webdriver.Chrome, site: str, tmp_path: Path
) -> None:
    gen = open_dashboard(browser, server, site)
    events = api(server, "events", site)
    signup = next(e for e in events if e["name"] == "signup")
    assert signup["meta_keys"] == ["plan", "source"]
    assert not browser.find_elements(
        By.CSS_SELECTOR, "#panel-events .meta-toggle[data-event=download]"
    )
    toggle = browser.find_element(By.CSS_SELECTOR, "#panel-events .meta-toggle[data-event=signup]")
    assert toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    box = browser.find_element(By.ID, toggle.get_attribute("aria-controls"))
    wait(browser, 10).until(lambda d: len(box.find_elements(By.CSS_SELECTOR, ".row")) == 4)

    def shown_meta() -> dict[str, int]:
        return browser.execute_script(
            "return Object.fromEntries([...arguments[0].querySelectorAll('.row')]"
            ".map(r => [r.dataset.meta, Number(r.querySelector('.num').dataset.value)]))",
            box,
        )

    expected = {
        f"{k}={m['meta_value']}": m["count"]
        for k in signup["meta_keys"]
        for m in api(server, "event/meta", site, event="signup", event_meta_key=k)
    }
    assert (
        shown_meta()
        == expected
        == {"plan=pro": 3, "plan=free": 1, "source=ad": 1, "source=newsletter": 1}
    )
    assert [h.text for h in box.find_elements(By.TAG_NAME, "h3")] == ["plan", "source"]
    screenshots(browser, tmp_path / "screenshots", "dashboard-event-meta")

    # A value filters the dashboard by the event and meta_<key>=value.
    box.find_element(By.CSS_SELECTOR, ".row[data-meta='plan=pro']").click()
    loaded(browser, gen)
    assert query(browser) == {"event": ["signup"], "meta_plan": ["pro"]}
    assert "Event meta plan is pro" in browser.find_element(By.ID, "filters").text
    filtered = api(server, "total", site, event="signup", meta_plan="pro")
    assert stat(browser, "visitors")[0] == filtered["visitors"] == 3
    # The event stays open, its values now under the filter.
    toggle = browser.find_element(By.CSS_SELECTOR, "#panel-events .meta-toggle[data-event=signup]")
    assert toggle.get_attribute("aria-expanded") == "true"
    box = browser.find_element(By.ID, toggle.get_attribute("aria-controls"))
    plan = api(server, "event/meta", site, event="signup", event_meta_key="plan", meta_plan="pro")
    assert shown_meta().get("plan=pro") == plan[0]["count"]
    toggle.click()
    assert not box.is_displayed() and toggle.get_attribute("aria-expanded") == "false"


@pytest.fixture(scope="module")
def axe_source() -> str:
    path = axe_path()
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make axe` (make test runs it) to download axe-core")
    return path.read_text()


@pytest.mark.parametrize("colours", COLOUR_SCHEMES)
def test_accessible(
    server: TrailServer, browser: webdriver.Chrome, site: str, axe_source: str, colours: str
) -> None:
    """axe-core finds nothing serious with the map's countries, an event's metadata open, a
    second page of sessions and the map's focus on a country."""
    scheme(browser, colours)
    try:
        open_dashboard(browser, server, site)
        browser.find_element(By.CSS_SELECTOR, "#panel-events .meta-toggle").click()
        wait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".event-meta .row"))
        browser.find_element(By.ID, "more-sessions").click()
        wait(browser, 10).until(lambda d: len(session_ids(d)) > 20)
        browser.execute_script(
            "document.querySelector('#panel-locations .world path[tabindex=\"0\"]').focus()"
        )
        assert tip(browser)
        audit(
            browser,
            axe_source,
            "/sites/<id> with the map, event metadata, a second page of sessions",
            colours,
        )
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_vendored_files_match_sources() -> None:
    """Every vendored file is the one vendor/SOURCES.md names, byte for byte."""
    vendor = VENDOR
    sources = (vendor / "SOURCES.md").read_text()
    row = r"^  \| `([^`]+)` \| `([0-9a-f]{64})` \|$"
    listed = dict(re.findall(row, sources, re.MULTILINE))
    assert {"countries-110m.json", "codes.json", "uPlot.iife.min.js"} <= set(listed)
    files = {p.name for p in vendor.iterdir() if p.name != "SOURCES.md"}
    assert files == set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name

"""The site dashboard's live visitors, comparison and scale, filter chips with every operator,
goals, funnels, tags, sessions, CSV export, saved views and theme toggle, in headless Chromium
over a real server with a known scenario; every figure checked is the API's for the same query.
Screenshots at 1280 and 375 px go to <tmp_path>/screenshots."""

from __future__ import annotations

import base64
import csv
import io
import urllib.parse
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from tests.browser import en_chromium, one_worker_server, wait
from tests.server import TrailServer
from tests.test_dashboard_browser import UA, api, loaded, screenshots, stat
from tests.test_signin_browser import set_first_password, shown
from tests.test_stats_e2e import wait_for

# (visitor, path, referrer, minutes ago, tags): 4 from Google, 2 from Hacker News (one tagged),
# one direct visitor with two pages, and two visitors in the last minutes (live), one of them with
# two pages and an event.
SCENARIO = [
    *((n, "/", "https://www.google.com/", 40 - n, None) for n in range(1, 5)),
    (5, "/blog", "https://news.ycombinator.com/", 34, None),
    (6, "/", "https://news.ycombinator.com/", 33, {"author": "ann"}),
    (7, "/", "", 32, None),
    (7, "/pricing", "", 31, None),
    (8, "/pricing", "https://www.bing.com/", 3, None),
    (8, "/", "https://www.bing.com/", 2, None),
    (9, "/blog", "", 1, {"author": "bob"}),
]


def ago(minutes: int) -> str:
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    yield from one_worker_server(tmp_path_factory, "dashboard-panels")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    yield from en_chromium(tmp_path_factory)


@pytest.fixture(scope="module")
def site(server: TrailServer, browser: webdriver.Chrome) -> str:
    """A site with the scenario, a goal and a funnel; the browser signed in."""
    site, key = server.create_site("panels.example")
    hits = [
        {
            "url": "https://panels.example" + path,
            "ip": f"81.2.69.{n}",
            "user_agent": UA.format(v=110 + n),
            "referrer": referrer,
            "time": ago(minutes),
            **({"tags": tags} if tags else {}),
        }
        for n, path, referrer, minutes, tags in SCENARIO
    ]
    assert server.call("POST", "/api/v1/hit/batch", hits, key=key).status == 200
    # Events are stamped on arrival: visitor 8's session, which is still going on.
    event = {k: v for k, v in hits[9].items() if k != "time"}
    event.update(event_name="signup", event_meta={"plan": "pro"})
    assert server.call("POST", "/api/v1/event", event, key=key).status == 200
    admin = server.admin_key
    goal = {"domain_id": site, "name": "Pricing", "path_pattern": "/pricing"}
    assert server.call("POST", "/api/v1/goal", goal, key=admin).status == 200
    steps = [
        {"name": "Home", "filter": {"path": ["/"]}},
        {"name": "Pricing", "filter": {"path": ["/pricing"]}},
    ]
    funnel = {"domain_id": site, "name": "Buy", "steps": steps}
    assert server.call("POST", "/api/v1/funnel", funnel, key=admin).status == 200
    wait_for(lambda: api(server, "total", site), lambda t: t["views"] >= len(SCENARIO))
    wait_for(lambda: api(server, "events", site), lambda e: len(e) >= 1)

    set_first_password(browser, server, "panels@browser.test", "panels pass 1")
    return site


def query(driver: webdriver.Chrome) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(driver.current_url).query)


def open_dashboard(
    driver: webdriver.Chrome, server: TrailServer, site: str, search: str = ""
) -> int:
    driver.get(f"{server.url}/sites/{site}{search}")
    return loaded(driver)


def filter_form(
    driver: webdriver.Chrome, opener: WebElement, key: str | None, op: str, values: str
) -> None:
    """Opens the filter form with `opener`, fills it and applies it."""
    opener.click()
    form = driver.find_element(By.ID, "filter-form")
    assert form.is_displayed()
    if key is not None:
        Select(driver.find_element(By.ID, "filter-key")).select_by_value(key)
    Select(driver.find_element(By.ID, "filter-op")).select_by_value(op)
    box = driver.find_element(By.ID, "filter-values")
    box.clear()
    box.send_keys(values)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_live_visitors_and_refresh(
    server: TrailServer, browser: webdriver.Chrome, site: str
) -> None:
    open_dashboard(browser, server, site)

    def figure(d: webdriver.Chrome) -> str | None:
        # Read in one script: the figure's element is replaced whenever the page reads again.
        return d.execute_script("return document.querySelector('#active .num')?.dataset.value")

    def shows(d: webdriver.Chrome, want: int) -> bool:
        # When the page differs (a visitor can leave the active window between the page's read
        # and the API's), it is asked to read again, as when it becomes visible.
        if figure(d) == str(want):
            return True
        d.execute_script("document.dispatchEvent(new Event('visibilitychange'))")
        return False

    wait(browser, 15, poll_frequency=0.5).until(
        lambda d: shows(d, api(server, "active", site)["visitors"])
    )
    before = api(server, "active", site)["visitors"]
    assert before >= 2  # visitors 8 and 9, and 7 when its event is stamped on arrival
    # A new visitor arrives; the page asks again when it becomes visible (and every 30 s).
    r = server.call(
        "POST",
        "/api/v1/client",
        {"domain_id": site, "type": "token", "description": "live"},
        key=server.admin_key,
    )
    hit = {"url": "https://panels.example/", "ip": "81.2.69.50", "user_agent": UA.format(v=99)}
    assert server.call("POST", "/api/v1/hit", hit, key=r.json()["client_secret"]).status == 200
    wait_for(lambda: api(server, "active", site), lambda a: a["visitors"] == before + 1)
    wait(browser, 15, poll_frequency=0.5).until(lambda d: shows(d, before + 1))


def test_compare_and_scale_in_url(
    server: TrailServer, browser: webdriver.Chrome, site: str
) -> None:
    gen = open_dashboard(browser, server, site)
    Select(browser.find_element(By.ID, "compare")).select_by_value("year")
    gen = loaded(browser, gen)
    assert query(browser) == {"compare": ["year"]}
    last_year = str(date.today().year - 1)
    assert last_year in shown(browser, "period").text.split("compared with")[1]
    Select(browser.find_element(By.ID, "scale")).select_by_value("week")
    gen = loaded(browser, gen)
    assert query(browser) == {"compare": ["year"], "scale": ["week"]}
    # The week buckets reach the chart: one point per week of the API's answer.
    weeks = api(server, "visitor", site, scale="week")
    chart = browser.find_element(By.ID, "chart")
    assert chart.get_attribute("data-points") == str(len(weeks)) and len(weeks) in (5, 6)
    assert chart.get_attribute("aria-label") == "Visitors by week"
    browser.refresh()
    loaded(browser)
    assert (
        Select(browser.find_element(By.ID, "scale")).first_selected_option.get_attribute("value")
        == "week"
    )
    assert (
        Select(browser.find_element(By.ID, "compare")).first_selected_option.get_attribute("value")
        == "year"
    )
    assert stat(browser, "visitors")[0] == api(server, "total", site)["visitors"]


def test_filter_chips_every_operator(
    server: TrailServer, browser: webdriver.Chrome, site: str, tmp_path: Path
) -> None:
    gen = open_dashboard(browser, server, site)
    everyone = api(server, "total", site)["visitors"]
    cases = [
        ("!", "Google", ["!Google"], "Referrer is not Google"),
        ("~", "news", ["~news"], "Referrer contains news"),
        ("^", "o", ["^o"], "Referrer does not contain o"),
        ("", "Google\nBing", ["Google", "Bing"], "Referrer is Google or Bing"),
    ]
    for i, (op, values, expected, text) in enumerate(cases):
        if i == 0:
            filter_form(
                browser, browser.find_element(By.ID, "add-filter"), "referrer_name", op, values
            )
        else:  # edit the chip: operator and values
            filter_form(
                browser,
                browser.find_element(By.CSS_SELECTOR, "#filters .chip-edit"),
                None,
                op,
                values,
            )
        gen = loaded(browser, gen)
        assert query(browser) == {"referrer_name": expected}
        assert text in shown(browser, "filters").text
        q = "&".join("referrer_name=" + urllib.parse.quote(v) for v in expected)
        filtered = server.call(
            "GET", f"/api/v1/statistics/total?id={site}&{q}&" + window(), key=server.admin_key
        ).json()
        assert stat(browser, "visitors")[0] == filtered["visitors"]
        assert stat(browser, "views")[0] == filtered["views"]
        assert filtered["visitors"] != everyone
    screenshots(browser, tmp_path / "screenshots", "dashboard-chip")
    # An empty value is refused in the form, and Escape closes it.
    browser.find_element(By.CSS_SELECTOR, "#filters .chip-edit").click()
    browser.find_element(By.ID, "filter-values").clear()
    browser.find_element(By.CSS_SELECTOR, "#filter-form button[type=submit]").click()
    assert shown(browser, "filter-values-error").text
    browser.find_element(By.CSS_SELECTOR, "#filter-form button#filter-cancel").click()
    assert not browser.find_element(By.ID, "filter-form").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#filters .chip-remove").click()
    loaded(browser, gen)
    wait(browser, 10).until(lambda d: "referrer_name" not in d.current_url)


def window() -> str:
    today = datetime.now(UTC).date()
    return f"from={today - timedelta(days=29)}&to={today}&tz=UTC"


def test_goals_funnels_tags(
    server: TrailServer, browser: webdriver.Chrome, site: str, tmp_path: Path
) -> None:
    gen = open_dashboard(browser, server, site)
    goals = api(server, "goals", site)
    row = browser.find_element(By.CSS_SELECTOR, "#panel-goals .row")
    assert (
        row.find_element(By.CSS_SELECTOR, ".num").get_attribute("data-value")
        == str(goals[0]["stats"]["visitors"])
        == "2"
    )
    assert not browser.find_elements(By.ID, "stat-cr")
    funnel = server.call("GET", f"/api/v1/funnel?id={site}", key=server.admin_key).json()[0]
    steps = api(server, "funnel", site, funnel_id=funnel["id"])["data"]
    shown_steps = browser.find_elements(By.CSS_SELECTOR, "#panel-funnels .step .num")
    assert [int(s.get_attribute("data-value") or -1) for s in shown_steps] == [
        s["visitors"] for s in steps
    ]
    assert steps[1]["visitors"] == 2 and steps[1]["dropped"] >= 5
    assert f"{steps[1]['dropped']} dropped" in browser.find_element(By.ID, "panel-funnels").text
    tags = api(server, "tags", site)
    tag_row = browser.find_element(By.CSS_SELECTOR, "#panel-tags .row")
    assert (
        tag_row.text.startswith(tags[0]["key"])
        and tag_row.find_element(By.CSS_SELECTOR, ".num").text == str(tags[0]["visitors"]) == "2"
    )

    # Selecting the goal filters the dashboard by it and shows the conversion rate.
    row.click()
    gen = loaded(browser, gen)
    goal_id = goals[0]["page_goal"]["id"]
    assert query(browser) == {"goal": [goal_id]}
    by_goal = api(
        server, "total", site, pattern=urllib.parse.quote(goals[0]["page_goal"]["pattern"])
    )
    assert stat(browser, "visitors")[0] == by_goal["visitors"] == 2
    assert float(
        browser.find_element(By.CSS_SELECTOR, "#stat-cr .num").get_attribute("data-value") or -1
    ) == pytest.approx(by_goal["cr"])
    assert "Goal: Pricing" in shown(browser, "filters").text
    screenshots(browser, tmp_path / "screenshots", "dashboard-goal")
    browser.find_element(By.CSS_SELECTOR, "#filters .goal button").click()
    gen = loaded(browser, gen)
    assert query(browser) == {}

    # A tag drills down to its values; a value filters by tag_<key>.
    browser.find_element(By.CSS_SELECTOR, "#panel-tags .row").click()
    gen = loaded(browser, gen)
    assert query(browser) == {"tags": ["author"]}
    values = api(server, "tag/details", site, tag="author")
    rows = browser.find_elements(By.CSS_SELECTOR, "#panel-tags .row .name")
    assert sorted(r.text for r in rows) == sorted(v["value"] for v in values) == ["ann", "bob"]
    browser.find_element(By.CSS_SELECTOR, "#panel-tags button.row").click()
    loaded(browser, gen)
    assert len(query(browser)["tag_author"]) == 1
    assert stat(browser, "visitors")[0] == 1


def test_session_journey(
    server: TrailServer, browser: webdriver.Chrome, site: str, tmp_path: Path
) -> None:
    open_dashboard(browser, server, site)
    sessions = api(server, "session/list", site, limit="20")
    two = next(s for s in sessions if s["page_views"] == 2)  # the newest: visitor 8's
    buttons = browser.find_elements(By.CSS_SELECTOR, "#panel-sessions .session")
    assert len(buttons) == len(sessions)
    button = next(
        b
        for b in buttons
        if b.get_attribute("data-session") == f"{two['visitor_id']}:{two['session_id']}"
    )
    button.click()
    dialog = browser.find_element(By.ID, "journey")
    wait(browser, 10).until(lambda d: dialog.get_attribute("open") is not None)
    wait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#journey-body li"))
    details = api(
        server,
        "session/details",
        site,
        visitor_id=two["visitor_id"],
        session_id=str(two["session_id"]),
    )
    paths = [
        li.get_attribute("data-path") or li.get_attribute("data-event")
        for li in browser.find_elements(By.CSS_SELECTOR, "#journey-body li")
    ]
    expected = [(d["page_view"] or {}).get("path") or d["event"]["name"] for d in details]
    assert paths == expected and "/pricing" in paths and "signup" in paths
    screenshots(browser, tmp_path / "screenshots", "dashboard-journey")
    browser.find_element(By.ID, "journey-close").click()
    wait(browser, 10).until(lambda d: dialog.get_attribute("open") is None)
    assert browser.switch_to.active_element == button  # the focus goes back to the row


def test_csv_export(server: TrailServer, browser: webdriver.Chrome, site: str) -> None:
    open_dashboard(browser, server, site, "?referrer_name=!Google")
    href = browser.find_element(By.ID, "export").get_attribute("href")
    assert "referrer_name=%21Google" in href and "visitors=true" in href
    status, kind, body = browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(arguments[0]).then(async (r) => {
          const bytes = new Uint8Array(await r.arrayBuffer());
          done([r.status, r.headers.get('content-type'), btoa(String.fromCharCode(...bytes))]);
        });""",
        href,
    )
    assert (status, kind) == (200, "application/zip")
    files = zipfile.ZipFile(io.BytesIO(base64.b64decode(body)))
    assert "visitors.csv" in files.namelist() and "conversion_goals.csv" in files.namelist()
    pages = list(csv.DictReader(io.StringIO(files.read("pages.csv").decode())))
    expected = api(server, "page", site, referrer_name="!Google")
    assert {r["path"]: int(r["visitors"]) for r in pages} == {
        r["path"]: r["visitors"] for r in expected
    }
    assert (
        int(next(r for r in pages if r["path"] == "/")["visitors"])
        < api(server, "page", site)[0]["visitors"]
    )  # Google's four visitors of / are not in it


def test_saved_view_round_trip(server: TrailServer, browser: webdriver.Chrome, site: str) -> None:
    open_dashboard(browser, server, site, "?range=7d&referrer_name=!Google&compare=year")
    browser.find_element(By.CSS_SELECTOR, ".saved-views summary").click()
    browser.find_element(By.ID, "view-name").send_keys("Not Google")
    browser.find_element(By.CSS_SELECTOR, "#view-form button[type=submit]").click()
    wait(browser, 10).until(lambda d: "Saved" in d.find_element(By.ID, "view-status").text)
    views = server.call("GET", f"/api/v1/view?domain_id={site}", key=server.admin_key).json()
    assert [(v["name"], v["referrer_name"], v["period"], v["compare"]) for v in views] == [
        ("Not Google", ["!Google"], 7, "year")
    ]
    gen = open_dashboard(browser, server, site)
    browser.find_element(By.CSS_SELECTOR, ".saved-views summary").click()
    apply = wait(browser, 10).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#views li[data-view] button")
    )
    apply.click()
    loaded(browser, gen)
    assert query(browser) == {"range": ["7d"], "compare": ["year"], "referrer_name": ["!Google"]}
    browser.find_element(
        By.CSS_SELECTOR, "#views li[data-view] button[aria-label^='Delete']"
    ).click()
    wait(browser, 10).until(lambda d: "Deleted" in d.find_element(By.ID, "view-status").text)
    assert server.call("GET", f"/api/v1/view?domain_id={site}", key=server.admin_key).json() == []


def test_theme_toggle(server: TrailServer, browser: webdriver.Chrome, site: str) -> None:
    open_dashboard(browser, server, site)
    root = browser.find_element(By.TAG_NAME, "html")
    toggle = browser.find_element(By.ID, "theme")
    system_dark = browser.execute_script(
        "return matchMedia('(prefers-color-scheme: dark)').matches"
    )
    assert root.get_attribute("data-theme") is None
    assert toggle.get_attribute("aria-pressed") == str(system_dark).lower()
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    toggle.click()
    other = "light" if system_dark else "dark"
    assert root.get_attribute("data-theme") == other
    assert browser.execute_script("return localStorage.getItem('trail-theme')") == other
    assert (
        browser.execute_script("return getComputedStyle(document.body).backgroundColor")
        != background
    )
    browser.refresh()
    loaded(browser)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("data-theme") == other
    browser.find_element(By.ID, "theme").click()  # back to the system's: the choice is forgotten
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("data-theme") is None
    assert browser.execute_script("return localStorage.getItem('trail-theme')") is None
    logged = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not logged, logged

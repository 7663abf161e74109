"""Dashboard sign-in over a real server: passwords, the session cookie, CSRF, attempt limits,
set-password links, the pages, and the cookie as a third way to be a user's principal.

Requests go out from chosen loopback addresses (127.0.0.0/8 all reach the server), so each test
has client IPs of its own for the per-IP limit, and 127.0.0.9 plays the trusted proxy.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.access_fixtures import SERVER_ENV, World, build_world
from tests.server import Reply, TrailServer

PROXY = "127.0.0.9"
ACCOUNT_LIMIT, IP_LIMIT, WINDOW_S = 5, 6, 3600
ENV = {
    **SERVER_ENV,
    "TRAIL_TRUSTED_PROXIES": f"{PROXY}/32",
    "TRAIL_RATE_LIMIT_SIGNIN_ACCOUNT": f"{ACCOUNT_LIMIT}/{WINDOW_S}",
    "TRAIL_RATE_LIMIT_SIGNIN_IP": f"{IP_LIMIT}/{WINDOW_S}",
}
LINK_LINE = r"set the admin's dashboard password .*: (http://\S+/set-password#token=(\S+))"
_ips = (f"127.0.{a}.{b}" for a in range(1, 255) for b in range(1, 255))
_names = itertools.count()


def fresh_ip() -> str:
    """A client address no other request of this module used."""
    return next(_ips)


def send(
    server: TrailServer,
    method: str,
    path: str,
    body: Any = None,
    ip: str = "127.0.0.1",
    **headers: str,
) -> Reply:
    """One request from `ip`, redirects not followed; header names in lower case."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(ip, 0))
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        head = {
            "Content-Type": "application/json",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        }
        conn.request(method, path, body=data, headers=head)
        r = conn.getresponse()
        return Reply(r.status, r.read(), {k.lower(): v for k, v in r.getheaders()})
    finally:
        conn.close()


@dataclass
class Browser:
    """A signed-in browser: its cookie, CSRF token and address."""

    server: TrailServer
    cookie: str
    csrf: str
    ip: str
    answer: Reply

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Reply:
        """A request as trail's own page makes it (cookie, same Origin, CSRF token on writes)."""
        own = {"Cookie": self.cookie, "Origin": self.server.url, "Sec_Fetch_Site": "same-origin"}
        if method != "GET":
            own["X_CSRF_Token"] = self.csrf
        return send(self.server, method, path, body, self.ip, **{**own, **headers})


def sign_in(
    server: TrailServer, email: str, password: str, ip: str | None = None, **headers: str
) -> Reply:
    body = {"email": email, "password": password}
    return send(server, "POST", "/api/v1/auth/session", body, ip or fresh_ip(), **headers)


def browser(server: TrailServer, email: str, password: str, ip: str | None = None) -> Browser:
    ip = ip or fresh_ip()
    r = sign_in(server, email, password, ip)
    assert r.status == 200, r.body
    return Browser(server, r.headers["set-cookie"].split(";")[0], r.json()["csrf_token"], ip, r)


def cookie_attributes(reply: Reply) -> list[str]:
    return [part.strip() for part in reply.headers["set-cookie"].split(";")]


def printed(server: TrailServer, pattern: str, timeout: float = 10) -> re.Match[str]:
    """A line of the server's stdout matching `pattern`, read as far as needed."""
    assert server.proc is not None and server.proc.stdout is not None
    deadline = time.monotonic() + timeout
    while True:
        found = re.search(pattern, "".join(server.output))
        if found:
            return found
        line = server.proc.stdout.readline()
        if line:
            server.output.append(line)
        elif time.monotonic() > deadline:
            raise AssertionError(f"no {pattern!r} in {''.join(server.output)}")
        else:
            time.sleep(0.02)


def clear_of_window_edge() -> None:
    """Limits count in fixed windows: start a counting test well inside one."""
    left = WINDOW_S - time.time() % WINDOW_S
    if left < 15:
        time.sleep(left + 0.1)


@dataclass
class Person:
    id: str
    email: str
    password: str
    key: str


def new_user(server: TrailServer, account: str, password: str = "first password 1") -> Person:
    """A user made through the TinyTrail admin API, its password set with its own API key."""
    email = f"user{next(_names)}@signin.test"
    r = server.call(
        "POST",
        "/api/v1/users",
        {"account_id": account, "role": "user", "email": email},
        key=server.admin_key,
    )
    assert r.status == 201, r.body
    user = r.json()["data"]
    r = server.call("PUT", "/api/v1/user/password", {"password": password}, key=user["apiKey"])
    assert r.status == 200 and r.json() == {"revoked_sessions": 0}, r.body
    return Person(user["id"], email, password, user["apiKey"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    s = TrailServer(tmp_path_factory.mktemp("signin") / "data", workers=2, env=ENV).start()
    try:
        yield s
    finally:
        assert s.stop() == 0


@pytest.fixture(scope="module")
def account(server: TrailServer) -> str:
    r = server.call("POST", "/api/v1/accounts", {"name": "sign-in tests"}, key=server.admin_key)
    assert r.status == 201, r.body
    return str(r.json()["data"]["id"])


@pytest.fixture
def person(server: TrailServer, account: str) -> Person:
    return new_user(server, account)


# -- the first start's link -------------------------------------------------------------------


def test_the_first_start_prints_a_set_password_link_that_works_once(server: TrailServer) -> None:
    admin_id = printed(server, r"created admin user (\S+)").group(1)
    link, token = printed(server, LINK_LINE).groups()
    assert link.startswith(server.url + "/set-password#token=")
    page = send(server, "GET", "/set-password")
    assert page.status == 200 and b'autocomplete="new-password"' in page.body

    def use(body: dict[str, Any]) -> Reply:
        return send(server, "POST", "/api/v1/auth/password-link", body, fresh_ip())

    # The first admin has no email yet: the link asks for one, and stays usable.
    r = use({"token": token, "password": "admin password 1"})
    assert r.status == 400 and "email" in r.json()["validation"], r.body
    r = use({"token": token, "password": "short", "email": "root@signin.test"})
    assert r.status == 400 and "password" in r.json()["validation"], r.body
    r = use({"token": token, "password": "admin password 1", "email": "Root@Signin.test"})
    assert r.status == 200, r.body
    assert r.json()["user"] == {**r.json()["user"], "id": admin_id, "role": "admin"}
    assert r.json()["user"]["email"] == "root@signin.test"
    cookie = r.headers["set-cookie"].split(";")[0]
    me = send(server, "GET", "/api/v1/auth/session", Cookie=cookie)
    assert me.status == 200 and me.json()["user"]["id"] == admin_id
    # Once only.
    r = use({"token": token, "password": "another password", "email": "root@signin.test"})
    assert r.status == 400 and "token" in r.json()["validation"], r.body
    assert sign_in(server, "root@signin.test", "admin password 1").status == 200
    assert sign_in(server, "root@signin.test", "another password").status == 401


# -- signing in -------------------------------------------------------------------------------


def test_sign_in_sets_a_session_cookie(server: TrailServer, person: Person) -> None:
    r = sign_in(server, person.email.upper(), person.password)
    assert r.status == 200, r.body
    attributes = cookie_attributes(r)
    assert attributes[0].startswith("trail_session=") and len(attributes[0]) > 40
    assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= set(attributes)
    assert "Secure" not in attributes  # plain http, cookie_secure off
    assert person.password not in r.body.decode()
    body = r.json()
    assert body["user"]["id"] == person.id and body["user"]["email"] == person.email
    assert len(body["csrf_token"]) >= 32 and body["expires_at"].endswith("Z")


def test_wrong_password_and_unknown_email_get_the_same_answer(
    server: TrailServer, person: Person
) -> None:
    wrong = sign_in(server, person.email, "not the password")
    unknown = sign_in(server, "nobody@signin.test", person.password)
    assert wrong.status == unknown.status == 401
    assert (
        wrong.json() == unknown.json() == {"validation": {}, "error": ["wrong email or password"]}
    )
    assert "set-cookie" not in wrong.headers and "set-cookie" not in unknown.headers


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "x"}, "email"),
        ({"email": "a@b.test"}, "password"),
        ({"email": "a@b.test", "password": 12345678}, "password"),
        ({"email": ["a@b.test"], "password": "x"}, "email"),
        (b"email=a@b.test", "body"),
    ],
)
def test_bad_sign_in_input_names_the_field(server: TrailServer, body: Any, field: str) -> None:
    r = send(server, "POST", "/api/v1/auth/session", body, fresh_ip())
    assert r.status == 400 and field in r.json()["validation"], r.body


def test_the_cookie_is_secure_over_https_from_a_trusted_proxy(
    server: TrailServer, person: Person
) -> None:
    proxied = sign_in(server, person.email, person.password, PROXY, X_Forwarded_Proto="https")
    assert proxied.status == 200 and "Secure" in cookie_attributes(proxied)
    # The same header from anyone else is not believed.
    direct = sign_in(server, person.email, person.password, X_Forwarded_Proto="https")
    assert direct.status == 200 and "Secure" not in cookie_attributes(direct)


# -- attempt limits ---------------------------------------------------------------------------


def test_sign_in_attempts_are_limited_per_account(
    server: TrailServer, account: str, person: Person
) -> None:
    clear_of_window_edge()
    for _ in range(ACCOUNT_LIMIT):  # each from another address
        assert sign_in(server, person.email, "guess guess").status == 401
    ip = fresh_ip()
    r = sign_in(server, person.email, person.password, ip)  # even the right password now
    assert r.status == 429, r.body
    assert 1 <= int(r.headers["retry-after"]) <= WINDOW_S
    assert "too many sign-in attempts for this account" in r.json()["error"][0]
    assert "email" in r.json()["validation"] and "set-cookie" not in r.headers
    other = new_user(server, account)
    assert sign_in(server, other.email, other.password, ip).status == 200  # same address


def test_sign_in_attempts_are_limited_per_address(server: TrailServer, person: Person) -> None:
    clear_of_window_edge()
    ip = fresh_ip()
    for n in range(IP_LIMIT):  # each for another email
        assert sign_in(server, f"guess{n}@signin.test", "guess guess", ip).status == 401
    r = sign_in(server, person.email, person.password, ip)
    assert r.status == 429, r.body
    assert 1 <= int(r.headers["retry-after"]) <= WINDOW_S
    assert "too many sign-in attempts from this address" in r.json()["error"][0]
    assert sign_in(server, person.email, person.password).status == 200  # another address


# -- sessions ---------------------------------------------------------------------------------


def test_sign_out_revokes_the_session(server: TrailServer, person: Person) -> None:
    b = browser(server, person.email, person.password)
    assert b.call("GET", "/api/v1/user").json()["id"] == person.id
    assert b.call("DELETE", "/api/v1/auth/session", X_CSRF_Token="").status == 403
    assert b.call("GET", "/api/v1/user").status == 200  # still signed in
    r = b.call("DELETE", "/api/v1/auth/session")
    assert r.status == 200 and "Max-Age=0" in cookie_attributes(r)
    for path in ("/api/v1/user", "/api/v1/auth/session"):
        r = b.call("GET", path)
        assert r.status == 401 and "Max-Age=0" in cookie_attributes(r), (path, r.body)
    r = send(server, "GET", "/api/v1/auth/session")
    assert r.status == 401 and "not signed in" in r.json()["error"][0]


def test_a_made_up_cookie_is_refused(server: TrailServer) -> None:
    r = send(server, "GET", "/api/v1/domain", Cookie="trail_session=made-up")
    assert r.status == 401 and "sign in again" in r.json()["error"][0]


def test_changing_the_password_revokes_the_other_sessions(
    server: TrailServer, person: Person
) -> None:
    here = browser(server, person.email, person.password)
    elsewhere = browser(server, person.email, person.password)
    change = {"current_password": "not it at all", "password": "second password 2"}
    r = here.call("PUT", "/api/v1/user/password", change)
    assert r.status == 400 and r.json()["validation"] == {"current_password": "wrong password"}
    r = here.call("PUT", "/api/v1/user/password", {"password": "second password 2"})
    assert r.status == 400 and "current_password" in r.json()["validation"]
    r = here.call("PUT", "/api/v1/user/password", {**change, "current_password": person.password})
    assert r.status == 200 and r.json() == {"revoked_sessions": 1}, r.body
    assert here.call("GET", "/api/v1/user").status == 200
    assert elsewhere.call("GET", "/api/v1/user").status == 401
    assert sign_in(server, person.email, person.password).status == 401
    assert sign_in(server, person.email, "second password 2").status == 200
    # With the API key, every session goes.
    r = server.call(
        "PUT",
        "/api/v1/user/password",
        {"current_password": "second password 2", "password": "third password 3"},
        key=person.key,
    )
    assert r.status == 200 and r.json() == {"revoked_sessions": 2}, r.body
    assert here.call("GET", "/api/v1/user").status == 401


def test_password_rules_name_the_field(server: TrailServer, person: Person) -> None:
    for body, field in (
        ({"current_password": person.password, "password": "short"}, "password"),
        ({"current_password": person.password}, "password"),
        ({"current_password": person.password, "password": ["x" * 10]}, "password"),
        ({"current_password": 5, "password": "long enough 1"}, "current_password"),
    ):
        r = server.call("PUT", "/api/v1/user/password", body, key=person.key)
        assert r.status == 400 and field in r.json()["validation"], (body, r.body)
    r = server.call("PUT", "/api/v1/user/password", {"password": "long enough 1"})
    assert r.status == 401


# -- CSRF -------------------------------------------------------------------------------------


def test_cross_site_writes_with_the_cookie_are_refused(server: TrailServer, person: Person) -> None:
    b = browser(server, person.email, person.password)
    site = {"hostname": "csrf.example", "subdomain": f"csrf{next(_names)}", "timezone": "UTC"}
    refused = [
        b.call("POST", "/api/v1/domain", site, Origin="https://evil.example", X_CSRF_Token=""),
        b.call("POST", "/api/v1/domain", site, Origin="https://evil.example"),
        b.call("POST", "/api/v1/domain", site, Sec_Fetch_Site="cross-site"),
        b.call("POST", "/api/v1/domain", site, X_CSRF_Token=""),
        b.call("POST", "/api/v1/domain", site, X_CSRF_Token="not-the-token"),
        b.call("POST", "/api/v1/domain", site, Origin="null"),
        b.call("POST", "/api/v1/domain", site, Origin="http://[::1"),
    ]
    assert [r.status for r in refused] == [403] * len(refused), [r.body for r in refused]
    assert refused[3].json()["validation"] == {"X-CSRF-Token": "required with the session cookie"}
    own = server.call("GET", "/api/v1/domain", key=person.key).json()
    assert own == []  # nothing was made
    # A read needs no token; the page's own write goes through.
    assert b.call("GET", "/api/v1/domain", X_CSRF_Token="").status == 200
    made = b.call("POST", "/api/v1/domain", site)
    assert made.status == 200 and made.json()["hostname"] == "csrf.example", made.body
    # API keys are unaffected, also with the cookie and a foreign Origin beside them.
    r = send(
        server,
        "POST",
        "/api/v1/domain",
        {**site, "subdomain": f"csrf{next(_names)}"},
        Authorization=f"Bearer {person.key}",
        Cookie=b.cookie,
        Origin="https://evil.example",
    )
    assert r.status == 200, r.body


def test_signing_in_from_another_site_is_refused(server: TrailServer, person: Person) -> None:
    r = sign_in(server, person.email, person.password, Origin="https://evil.example")
    assert r.status == 403 and "set-cookie" not in r.headers
    r = sign_in(server, person.email, person.password, Origin=server.url)
    assert r.status == 200


# -- pages ------------------------------------------------------------------------------------


def test_the_root_sends_visitors_where_they_belong(server: TrailServer, person: Person) -> None:
    r = send(server, "GET", "/")
    assert (r.status, r.headers["location"]) == (303, "/signin")
    assert send(server, "GET", "/sites").headers["location"] == "/signin"
    b = browser(server, person.email, person.password)
    for path in ("/", "/signin"):
        r = send(server, "GET", path, Cookie=b.cookie)
        assert (r.status, r.headers["location"]) == (303, "/sites"), path
    r = send(server, "GET", "/sites", Cookie=b.cookie)
    assert r.status == 200 and b'id="sites"' in r.body
    b.call("DELETE", "/api/v1/auth/session")
    r = send(server, "GET", "/", Cookie=b.cookie)
    assert (r.status, r.headers["location"]) == (303, "/signin")
    assert "Max-Age=0" in cookie_attributes(r)  # the stale cookie goes


def test_the_sign_in_page_is_self_contained(server: TrailServer) -> None:
    r = send(server, "GET", "/signin")
    assert r.status == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    html = r.body.decode()
    for needed in ('<label for="email">', '<label for="password">', 'id="email"', 'id="password"'):
        assert needed in html
    assert 'role="alert"' in html and '<html lang="en">' in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/assets/") for a in assets)  # nothing from elsewhere
    for asset in assets:
        got = send(server, "GET", asset)
        assert got.status == 200 and "immutable" in got.headers["cache-control"]
        body = got.body.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")  # a name, not a URL
        assert b"http://" not in body and b"https://" not in body
    assert send(server, "GET", "/assets/nothing.js").status == 404


# -- the cookie is the user's principal -------------------------------------------------------


@pytest.fixture(scope="module")
def world(server: TrailServer) -> World:
    return build_world(server)


def _reads(w: World) -> list[str]:
    """Every Pirsch GET route, with site B (and B's organization) wherever it may be looked for."""
    from trail import app

    paths = sorted({r.path for t in app.PIRSCH for r in t.table if r.method == "get"})
    query = f"id={w.site_b}&domain_id={w.site_b}&organization_id={w.org}"
    query += "&from=2024-01-01&to=2024-01-31&type=event"
    return [
        f"{p.replace(':id', w.site_b)}?{query}"
        for p in paths
        if not p.startswith(("/api/v1/hit", "/l/", "/*path"))
    ]


@pytest.mark.parametrize("who", ["viewer", "admin", "owner"])
def test_the_cookie_reaches_what_the_users_key_reaches(world: World, who: str) -> None:
    w, server = world, world.server
    me = server.call("GET", "/api/v1/user", key=w.keys[who]).json()
    password = f"{who} password 1"
    r = server.call("PUT", "/api/v1/user/password", {"password": password}, key=w.keys[who])
    assert r.status == 200, r.body
    b = browser(server, me["email"], password)
    reads = _reads(w)
    assert any(p.startswith("/api/v1/statistics/total") for p in reads) and len(reads) > 60
    different = []
    for path in reads:
        by_key = server.call("GET", path, key=w.keys[who])
        by_cookie = b.call("GET", path)
        if (by_key.status, by_key.body) != (by_cookie.status, by_cookie.body):
            different.append(f"{path}: {by_key.status} vs {by_cookie.status}")
    assert not different, different
    # A write: allowed or refused alike (a Viewer may not change site B's settings).
    change = {"domain_id": w.site_b, "timezone": "Europe/Berlin"}
    by_cookie = b.call("POST", "/api/v1/domain/timezone", change)
    by_key = server.call("POST", "/api/v1/domain/timezone", change, key=w.keys[who])
    assert by_cookie.status == by_key.status == (403 if who == "viewer" else 200), by_cookie.body


# -- expiry, and a cookie that is always Secure -------------------------------------------------


def test_an_expired_session_is_refused(tmp_path: Path) -> None:
    env = {"TRAIL_SESSION_LIFETIME_S": "2", "TRAIL_COOKIE_SECURE": "true"}
    s = TrailServer(tmp_path / "data", workers=1, env=env).start()
    try:
        account = s.call("POST", "/api/v1/accounts", {"name": "a"}, key=s.admin_key)
        person = new_user(s, account.json()["data"]["id"])
        b = browser(s, person.email, person.password)
        attributes = cookie_attributes(b.answer)
        assert "Max-Age=2" in attributes and "Secure" in attributes  # configured: over http too
        assert b.call("GET", "/api/v1/user").status == 200
        expires = datetime.fromisoformat(b.answer.json()["expires_at"]).timestamp()
        time.sleep(max(0.0, expires - time.time() + 0.05))
        r = b.call("GET", "/api/v1/user")
        assert r.status == 401 and "expired" in r.json()["error"][0]
        assert send(s, "GET", "/", Cookie=b.cookie).headers["location"] == "/signin"
    finally:
        assert s.stop() == 0

"""The authorization matrix: every registered management and statistics route x seven callers.

Routes come from the app itself (build_app), so a route added later is covered without editing
this file. Each route is called with site B's id (and B's organization) in every place a route
may look for it. Callers: no credentials, an expired token, B's pa_ access key, a domain client
of site A (another account), and B's viewer, admin and owner. Checked: the status class, and that
no response to an outsider contains site B's data, and no response to B's people contains A's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.access_fixtures import SERVER_ENV, World, build_world
from tests.server import TrailServer

# Routes nobody authenticates for (ingestion, the token exchange, redirects, the tracker).
PUBLIC = (
    "/api/v1/token",
    "/api/v1/hit",
    "/api/v1/event",
    "/api/v1/session",
    "/api/v1/collect",
    "/health",
    "/js/",
    "/l/",
    "/*path",
    "/api/v1/hit/batch",
    "/api/v1/event/batch",
    "/api/v1/session/batch",
)
# The TinyTrail API has its own principals (admins manage accounts and users); only the
# "outsiders get nothing" rows apply to it.
TINYTRAIL = (
    "/api/v1/accounts",
    "/api/v1/users",
    "/api/v1/websites",
    "/api/v1/reports",
    "/api/v1/admin",
)
# Writes only an Owner may do.
OWNER_ONLY = {("DELETE", "/api/v1/domain")}
# Reads that hand out credentials or personal data: Admins and Owners only.
ADMIN_READS = {
    ("GET", "/api/v1/client"),
    ("GET", "/api/v1/domain/link"),
    ("GET", "/api/v1/invitation"),
}
# What a read-only dashboard (an access link) may read besides statistics: the domain (the spec's
# GET /domain?access=...) and the goal and funnel definitions it shows.
LINK_READS = {("GET", "/api/v1/domain"), ("GET", "/api/v1/goal"), ("GET", "/api/v1/funnel")}
# Routes that are about the caller, not about site B: a user may use them whatever its role.
PERSONAL = ("/api/v1/user", "/api/v1/organization", "/api/v1/theme", "/api/v1/invitation")


def registered_routes() -> list[tuple[str, str]]:
    """(METHOD, path) of every route a worker registers."""
    from trail import app

    tables = [*app.PIRSCH, *app.TINYTRAIL, app.fallback]
    routes = {(r.method.upper(), r.path) for table in tables for r in table.table}
    return sorted(r for r in routes if r[0] != "OPTIONS" and not r[1].startswith(PUBLIC))


ROUTES = registered_routes()
CALLERS = ("none", "expired", "access_key", "client_a", "access_link", "viewer", "admin", "owner")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    s = TrailServer(tmp_path_factory.mktemp("authz") / "data", workers=2, env=SERVER_ENV).start()
    try:
        yield build_world(s)
    finally:
        s.stop()


def _request(w: World, method: str, path: str) -> tuple[str, Any]:
    """The URL and body naming site B (and its organization) wherever a route may look."""
    target = w.org if path.startswith("/api/v1/organization") else w.site_b
    path = path.replace(":id", w.site_b).replace(":link_id", "x")
    query = (
        f"id={target}&domain_id={w.site_b}&organization_id={w.org}&from=2024-01-01&to=2024-01-31"
        f"&file=favicon&type=event&domain=victim-b.example&subdomain=victimb"
    )
    body = None
    if method != "GET":
        body = {
            "id": target,
            "domain_id": w.site_b,
            "organization_id": w.org,
            "name": "matrix",
            "hostname": "matrix.example",
            "description": "matrix",
            "type": "event",
            "emails": ["x@y.test"],
        }
    return f"{path}?{query}", body


def _order(routes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    # Deletes last, deleting site B and the organization very last: later rows need them.
    last = {("DELETE", "/api/v1/domain"): 3, ("DELETE", "/api/v1/organization"): 2}
    return sorted(routes, key=lambda r: (last.get(r, 0), r[0] == "DELETE", r))


def _expect(caller: str, method: str, path: str, status: int) -> str | None:
    """Why `status` is wrong for this caller and route, or None."""
    tinytrail = path.startswith(TINYTRAIL)
    write = method != "GET"
    if status >= 500:
        return "server error"
    stats = path.startswith("/api/v1/statistics") and method == "GET"
    if caller in ("none", "expired"):
        return None if status == 401 else "expected 401"
    if caller == "access_link":  # no credentials, ?access=<B's link>: B's statistics only
        if stats:
            return None if status in (200, 400) else "the access link did not open B's statistics"
        if (method, path) in LINK_READS:
            return None if status == 200 else "an access link did not open a dashboard read"
        return None if status in (401, 404) or tinytrail else "an access link reached management"
    if caller in ("viewer", "admin", "owner") and stats and status not in (200, 400):
        return "B's statistics refused to B's people"
    if caller == "access_key":
        return None if status in (401, 403) else "access keys are write-only: expected 401/403"
    if caller == "client_a":
        if tinytrail:
            return None if status in (401, 403, 404) else "expected 401/403/404"
        return None if (status in (400, 403, 404) or not write) else "a write reached site B"
    if tinytrail:
        return None
    personal = path.startswith(PERSONAL)
    if caller == "viewer":
        if write and not personal:
            return None if status in (400, 403, 404) else "a viewer wrote"
        if (method, path) in ADMIN_READS:
            return None if status in (400, 403, 404) else "a viewer read an admin-only list"
        return None if status not in (401, 403) or personal else "a viewer was refused a read"
    if caller == "admin":
        if (method, path) in OWNER_ONLY:
            return None if status == 403 else "expected 403 (owner only)"
        if path.startswith("/api/v1/organization/") or (
            path == "/api/v1/organization" and method in ("PUT", "DELETE")
        ):
            return None if status in (403, 404) else "the admin of B is not in B's organization"
        return None if status not in (401, 403) else "an admin was refused"
    return None if status not in (401, 403) else "the owner was refused"


def test_every_route_is_in_the_matrix() -> None:
    paths = {p for _, p in ROUTES}
    for must in (
        "/api/v1/domain",
        "/api/v1/client",
        "/api/v1/domain/alternative",
        "/api/v1/domain/link",
        "/api/v1/member",
        "/api/v1/organization",
        "/api/v1/view",
        "/api/v1/theme",
        "/api/v1/statistics/total",
    ):
        assert must in paths


def test_authorization_matrix(world: World) -> None:
    w = world
    failures: list[str] = []
    for caller in CALLERS:  # the owner last: its deletes remove site B
        if caller == "viewer":  # every outsider has had its go: B is untouched
            r = w.call("GET", f"/api/v1/domain?id={w.site_b}", who="owner")
            assert [d["hostname"] for d in r.json()] == ["victim-b.example"], r.body
        for method, path in _order(ROUTES) if caller == "owner" else ROUTES:
            url, body = _request(w, method, path)
            if caller == "access_link":
                url += f"&access={w.markers_b[2]}"
            r = w.call(method, url, body, who=None if caller in ("none", "access_link") else caller)
            text = r.body.decode("utf-8", "replace")
            problem = _expect(caller, method, path, r.status)
            if r.status >= 400 and '"error"' not in text and problem is None:
                problem = "error without the Pirsch error body"
            outsider = caller in ("none", "expired", "access_key", "client_a") or (
                caller == "access_link"
                and not path.startswith("/api/v1/statistics")
                and (method, path) not in LINK_READS
            )
            leaked = [m for m in (w.markers_b if outsider else w.markers_a) if m in text]
            if leaked:
                problem = f"leaked {leaked}"
            if problem:
                failures.append(
                    f"{caller:10} {method:6} {path}: {r.status} {problem}: {text[:160]}"
                )
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)

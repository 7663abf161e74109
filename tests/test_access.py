"""The access model and the management resources over HTTP: tokens, scopes, domain settings,
alternative domains (enforced at ingestion), access links, members, organizations, snippets,
views, themes and the /user endpoints. One server for the module."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.access_fixtures import SERVER_ENV, World, build_world, create_user, oauth_token
from tests.server import CACHE_MS, TrailServer, request

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    s = TrailServer(tmp_path_factory.mktemp("access") / "data", workers=2, env=SERVER_ENV).start()
    try:
        yield build_world(s)
    finally:
        s.stop()


def new_site(w: World, host: str, who: str = "owner") -> str:
    r = w.call(
        "POST",
        "/api/v1/domain",
        {"hostname": host, "subdomain": host.split(".")[0], "timezone": "UTC"},
        who=who,
    )
    assert r.status == 200, r.body
    return r.json()["id"]


def bad(r, field: str) -> None:
    """A 400 in the Pirsch error format naming `field`."""
    assert r.status == 400, r.body
    assert field in r.json()["validation"], r.body
    assert r.json()["error"]


# -- tokens and clients --------------------------------------------------------------------------


def test_token_exchange_and_its_failures(w: World) -> None:
    s = w.server
    r = w.call(
        "POST",
        "/api/v1/client",
        {"domain_id": w.site_b, "type": "oauth", "description": "sdk"},
        who="owner",
    )
    client = r.json()
    assert len(client["client_id"]) == 32 and len(client["client_secret"]) == 64
    r = s.call(
        "POST",
        "/api/v1/token",
        {"client_id": client["client_id"], "client_secret": client["client_secret"]},
    )
    assert r.status == 200
    expires = datetime.fromisoformat(r.json()["expires_at"])
    assert r.json()["expires_at"].endswith("Z")
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    token = r.json()["access_token"]
    assert (
        s.call(
            "GET",
            f"/api/v1/statistics/total?id={w.site_b}&from=2024-01-01&to=2024-01-02",
            key=token,
        ).status
        == 200
    )
    # Wrong secret, unknown id: 401 with an error body; missing fields: 400 naming them.
    r = s.call(
        "POST", "/api/v1/token", {"client_id": client["client_id"], "client_secret": "x" * 64}
    )
    assert r.status == 401 and r.json()["error"]
    r = s.call(
        "POST", "/api/v1/token", {"client_id": "y" * 32, "client_secret": client["client_secret"]}
    )
    assert r.status == 401 and r.json()["error"]
    bad(s.call("POST", "/api/v1/token", {"client_id": client["client_id"]}), "client_secret")
    # Expired and unknown tokens: 401 with an error body, never 200 (the SDKs refresh on 401).
    for key in (w.keys["expired"], "no-such-token"):
        r = s.call(
            "GET", f"/api/v1/statistics/total?id={w.site_b}&from=2024-01-01&to=2024-01-02", key=key
        )
        assert r.status == 401 and r.json()["error"]
    # The secret is shown once: the list has no secret.
    listed = w.call("GET", f"/api/v1/client?id={w.site_b}", who="owner").json()
    assert client["id"] in [c["id"] for c in listed]
    assert all("client_secret" not in c for c in listed)
    # Update the description; delete; the token dies with the client.
    r = w.call(
        "POST", "/api/v1/client", {"id": client["id"], "description": "renamed"}, who="owner"
    )
    assert r.json()["description"] == "renamed"
    assert w.call("DELETE", f"/api/v1/client?id={client['id']}", who="owner").status == 200
    assert s.call("GET", f"/api/v1/domain?id={w.site_b}", key=token).status == 401


def test_access_keys_are_48_characters_and_write_only(w: World) -> None:
    key = w.access_key_b
    assert key.startswith("pa_") and len(key) == 48
    r = w.server.call(
        "POST",
        "/api/v1/hit",
        {"url": "https://victim-b.example/", "ip": "81.2.69.9", "user_agent": CHROME},
        key=key,
    )
    assert r.status == 200, r.body
    for path in (
        "/api/v1/domain",
        f"/api/v1/statistics/total?id={w.site_b}&from=2024-01-01&to=2024-01-02",
    ):
        r = w.server.call("GET", path, key=key)
        assert r.status == 403 and "write-only" in r.json()["error"][0]


def test_client_validation_and_scopes_are_enforced(w: World) -> None:
    bad(
        w.call("POST", "/api/v1/client", {"domain_id": w.site_b, "type": "magic"}, who="owner"),
        "type",
    )
    bad(
        w.call(
            "POST",
            "/api/v1/client",
            {"domain_id": w.site_b, "type": "oauth", "scope_statistics": "w"},
            who="owner",
        ),
        "scope_statistics",
    )
    # Statistics only: reads statistics, nothing else.
    token, _ = oauth_token(w.server, w.keys["owner"], w.site_b, scope_statistics="r")
    stats = f"/api/v1/statistics/total?id={w.site_b}&from=2024-01-01&to=2024-01-02"
    assert w.server.call("GET", stats, key=token).status == 200
    assert (
        w.server.call("GET", f"/api/v1/domain?id={w.site_b}", key=token).status == 200
    )  # the SDKs' lookup
    r = w.server.call("GET", f"/api/v1/domain/alternative?domain_id={w.site_b}", key=token)
    assert r.status == 403 and "domains" in r.json()["error"][0]
    assert w.server.call(
        "POST",
        "/api/v1/hit",
        {"url": "https://victim-b.example/", "ip": "81.2.69.9", "user_agent": CHROME},
        key=token,
    ).status in (401, 403)
    # Domains read only: may read settings, may not change them; no statistics.
    token, _ = oauth_token(w.server, w.keys["owner"], w.site_b, scope_domains="r")
    assert (
        w.server.call("GET", f"/api/v1/domain/alternative?domain_id={w.site_b}", key=token).status
        == 200
    )
    r = w.server.call("POST", "/api/v1/domain/title", {"domain_id": w.site_b}, key=token)
    assert r.status == 403
    assert w.server.call("GET", stats, key=token).status == 403
    # A domain client never manages clients or domains, whatever its scopes.
    token, _ = oauth_token(w.server, w.keys["owner"], w.site_b, scope_domains="w")
    assert (
        w.server.call(
            "POST", "/api/v1/client", {"domain_id": w.site_b, "type": "token"}, key=token
        ).status
        == 403
    )
    assert w.server.call("DELETE", f"/api/v1/domain?id={w.site_b}", key=token).status == 403


def test_user_clients_cannot_grant_more_than_they_hold(w: World) -> None:
    r = w.call(
        "POST",
        "/api/v1/client",
        {"type": "oauth", "description": "user client", "scope_domains": "w"},
        who="owner",
    )
    assert r.status == 200 and r.json()["domain_id"] is None
    client = r.json()
    token = w.server.call(
        "POST",
        "/api/v1/token",
        {"client_id": client["client_id"], "client_secret": client["client_secret"]},
    ).json()["access_token"]
    # It acts with its user's reach: sees B, creates a domain client with the domains scope only.
    assert (
        w.server.call("GET", f"/api/v1/domain?id={w.site_b}", key=token).json()[0]["id"] == w.site_b
    )
    r = w.server.call(
        "POST",
        "/api/v1/client",
        {"domain_id": w.site_b, "type": "oauth", "scope_statistics": "r"},
        key=token,
    )
    assert r.status == 403 and "scope_statistics" in r.json()["error"][0]
    assert (
        w.server.call(
            "POST",
            "/api/v1/client",
            {"domain_id": w.site_b, "type": "oauth", "scope_domains": "r"},
            key=token,
        ).status
        == 200
    )
    listed = w.call("GET", "/api/v1/client", who="owner").json()
    assert [c["id"] for c in listed] == [client["id"]]


# -- domains -------------------------------------------------------------------------------------


def test_domain_settings_round_trip(w: World) -> None:
    site = new_site(w, "settings.example")
    before = w.call("GET", f"/api/v1/domain?id={site}", who="owner").json()[0]
    code = w.call("PUT", "/api/v1/domain", {"id": site}, who="owner").json()["identification_code"]
    assert len(code) == 32 and code != before["identification_code"]
    steps = [
        ("hostname", {"hostname": "renamed.example"}, "hostname", "renamed.example"),
        ("subdomain", {"subdomain": "renamed"}, "subdomain", "renamed"),
        ("public", {}, "public", True),
        ("scripts", {}, "disable_scripts", True),
        ("title", {}, "group_by_title", True),
        ("active", {"time": 120}, "active_visitors_seconds", 120),
        ("timezone", {"timezone": "Europe/Berlin"}, "timezone", "Europe/Berlin"),
        ("metadata", {"metadata": {"team": "web"}}, "metadata", {"team": "web"}),
        (
            "settings",
            {"settings": {"allow_any_hostname": True, "x": 1}},
            "settings",
            {"allow_any_hostname": "true", "x": "1"},
        ),
        ("custom", {"hostname": "stats.renamed.example"}, "custom_domain", "stats.renamed.example"),
    ]
    for path, body, field, value in steps:
        r = w.call("POST", f"/api/v1/domain/{path}", {"domain_id": site, **body}, who="owner")
        assert r.status == 200, (path, r.body)
        assert w.call("GET", f"/api/v1/domain?id={site}", who="owner").json()[0][field] == value, (
            path
        )
    r = w.call("POST", "/api/v1/domain/public", {"domain_id": site}, who="owner")
    assert r.json()["public"] is False  # a toggle
    assert (
        w.call("GET", "/api/v1/domain/custom?domain=stats.renamed.example", who="owner").json()
        is True
    )
    assert w.call("GET", "/api/v1/domain/custom?domain=free.example", who="owner").json() is False
    assert [
        d["id"]
        for d in w.call("GET", "/api/v1/domain?domain=stats.renamed.example", who="owner").json()
    ] == [site]
    assert [
        d["id"] for d in w.call("GET", "/api/v1/domain?subdomain=renamed", who="owner").json()
    ] == [site]


def test_domain_settings_validation(w: World) -> None:
    site = new_site(w, "valid.example")
    cases = [
        ("hostname", {"hostname": "https://x.example/path"}, "hostname"),
        ("subdomain", {"subdomain": "victimb"}, "subdomain"),  # taken by site B
        ("subdomain", {"subdomain": "no spaces"}, "subdomain"),
        ("active", {"time": 5}, "time"),
        ("timezone", {"timezone": "Mars/Olympus"}, "timezone"),
        ("metadata", {"metadata": [1]}, "metadata"),
        ("settings", {"settings": {"allow_any_hostname": "yes"}}, "settings.allow_any_hostname"),
        ("custom", {"hostname": "bad host"}, "hostname"),
    ]
    for path, body, field in cases:
        bad(
            w.call("POST", f"/api/v1/domain/{path}", {"domain_id": site, **body}, who="owner"),
            field,
        )
    bad(w.call("POST", "/api/v1/domain/public", {}, who="owner"), "domain_id")
    bad(w.call("POST", "/api/v1/domain", {"hostname": "x.example"}, who="owner"), "subdomain")
    w.call(
        "POST",
        "/api/v1/domain/custom",
        {"domain_id": site, "hostname": "taken.example"},
        who="owner",
    )
    other = new_site(w, "other.example")
    bad(
        w.call(
            "POST",
            "/api/v1/domain/custom",
            {"domain_id": other, "hostname": "taken.example"},
            who="owner",
        ),
        "hostname",
    )


def test_user_toggles_and_self_hosted_answers(w: World) -> None:
    assert w.call("POST", "/api/v1/user/favorite", {"id": w.site_b}, who="viewer").status == 200
    assert w.call("POST", "/api/v1/user/pin", {"id": w.site_b}, who="viewer").status == 200
    assert w.call("POST", "/api/v1/user/active", None, who="viewer").status == 200
    assert w.call("POST", "/api/v1/user/fullwidth", None, who="viewer").status == 200
    assert (
        w.call("POST", "/api/v1/user/favorite", {"id": w.site_a}, who="viewer").status == 404
    )  # not theirs
    me = w.call("GET", "/api/v1/user", who="viewer").json()
    assert me["email"] == "viewer@b.test"
    assert me["favorite_domains"] == [w.site_b] and me["pinned_domains"] == [w.site_b]
    assert me["active_visitors_title"] is True and me["full_width"] is True
    w.call("POST", "/api/v1/user/favorite", {"id": w.site_b}, who="viewer")
    assert w.call("GET", "/api/v1/user", who="viewer").json()["favorite_domains"] == []
    bad(
        w.call("POST", "/api/v1/user/filter", {"default_time_range": "forever"}, who="viewer"),
        "default_time_range",
    )
    r = w.call(
        "POST",
        "/api/v1/user/password",
        {"current_password": "a", "password": "b", "confirm_password": "b"},
        who="viewer",
    )
    assert r.status == 400 and "API keys" in r.json()["error"][0]
    for method, path in (
        ("POST", "/api/v1/google/import"),
        ("GET", "/api/v1/google/import/profile"),
    ):
        r = w.call(method, path, {"domain_id": w.site_b} if method == "POST" else None, who="owner")
        assert r.status == 400 and "not available in self-hosted trail" in r.json()["error"][0]
    assert w.call("GET", "/api/v1/google/import/profile").status == 401


# -- alternative domains, enforced at ingestion --------------------------------------------------


def test_alternative_domains_crud_and_ingestion(w: World) -> None:
    import polars as pl

    site = new_site(w, "main.example")
    r = w.call("POST", "/api/v1/client", {"domain_id": site, "type": "token"}, who="owner")
    key = r.json()["client_secret"]
    r = w.call(
        "POST",
        "/api/v1/domain/alternative",
        {"domain_id": site, "hostname": "www.main.example"},
        who="owner",
    )
    assert r.status == 200
    alt = r.json()
    assert set(alt) == {"id", "def_time", "mod_time", "domain_id", "hostname"}
    bad(
        w.call(
            "POST",
            "/api/v1/domain/alternative",
            {"domain_id": site, "hostname": "www.main.example"},
            who="owner",
        ),
        "hostname",
    )
    bad(
        w.call(
            "POST",
            "/api/v1/domain/alternative",
            {"domain_id": site, "hostname": "a b"},
            who="owner",
        ),
        "hostname",
    )
    bad(w.call("POST", "/api/v1/domain/alternative", {"domain_id": site}, who="owner"), "hostname")
    assert (
        w.call(
            "POST",
            "/api/v1/domain/alternative",
            {"domain_id": site, "hostname": "x.example"},
            who="client_a",
        ).status
        == 404
    )
    r = w.call(
        "PUT",
        "/api/v1/domain/alternative",
        {"id": alt["id"], "hostname": "shop.main.example"},
        who="owner",
    )
    assert r.json()["hostname"] == "shop.main.example"
    listed = w.call("GET", f"/api/v1/domain/alternative?domain_id={site}", who="owner").json()
    assert [a["hostname"] for a in listed] == ["shop.main.example"]
    # Ingestion: the main host and the alternative are accepted, another host is dropped.
    for i, host in enumerate(("main.example", "shop.main.example", "evil.example")):
        r = w.server.call(
            "POST",
            "/api/v1/hit",
            {"url": f"https://{host}/p", "ip": f"81.2.69.{i + 10}", "user_agent": CHROME},
            key=key,
        )
        assert r.status == 200, r.body
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    folder = w.server.data_dir / "segments" / "requests" / f"site={site}" / f"day={day}"
    rows = _wait_rows(folder, 3)
    dropped = rows.filter(pl.col("bot"))
    assert dropped["bot_reason"].to_list() == ["hostname_not_allowed"]
    # allow_any_hostname through the settings endpoint lets the other host in.
    w.call(
        "POST",
        "/api/v1/domain/settings",
        {"domain_id": site, "settings": {"allow_any_hostname": True}},
        who="owner",
    )
    time.sleep(3 * CACHE_MS / 1000)  # the engine caches site rules briefly
    w.server.call(
        "POST",
        "/api/v1/hit",
        {"url": "https://evil.example/q", "ip": "81.2.69.20", "user_agent": CHROME},
        key=key,
    )
    rows = _wait_rows(folder, 4)
    assert rows.height == 4 and rows.filter(pl.col("bot")).height == 1  # the fourth was accepted
    assert w.call("DELETE", f"/api/v1/domain/alternative?id={alt['id']}", who="owner").status == 200
    assert w.call("GET", f"/api/v1/domain/alternative?domain_id={site}", who="owner").json() == []


def _wait_rows(folder, n: int, timeout: float = 15):
    import polars as pl

    deadline = time.monotonic() + timeout
    while True:
        files = sorted(folder.glob("*.arrow")) if folder.exists() else []
        rows = pl.concat([pl.read_ipc(f) for f in files]) if files else pl.DataFrame()
        if rows.height >= n or time.monotonic() > deadline:
            return rows


# -- access links --------------------------------------------------------------------------------


def test_access_links_open_statistics_until_they_expire(w: World) -> None:
    stats = f"/api/v1/statistics/total?id={w.site_b}&from=2024-01-01&to=2024-01-02"
    bad(
        w.call(
            "POST",
            "/api/v1/domain/link",
            {"domain_id": w.site_b, "valid_until": "next week"},
            who="owner",
        ),
        "valid_until",
    )
    soon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = w.call(
        "POST",
        "/api/v1/domain/link",
        {"domain_id": w.site_b, "description": "board", "valid_until": soon},
        who="owner",
    )
    link = r.json()
    assert r.status == 200 and len(link["code"]) == 32 and link["valid_until"].startswith(soon[:19])
    assert w.call("GET", f"{stats}&access={link['code']}").status == 200
    assert w.call("GET", f"/api/v1/domain?access={link['code']}").json()[0]["id"] == w.site_b
    # Only that one site, read only.
    a_stats = f"/api/v1/statistics/total?id={w.site_a}&from=2024-01-01&to=2024-01-02"
    assert w.call("GET", f"{a_stats}&access={link['code']}").status == 404
    assert (
        w.call(
            "POST", f"/api/v1/domain/title?access={link['code']}", {"domain_id": w.site_b}
        ).status
        == 401
    )
    # Viewers may not list the codes; admins may.
    assert w.call("GET", f"/api/v1/domain/link?domain_id={w.site_b}", who="viewer").status == 403
    codes = [
        x["code"]
        for x in w.call("GET", f"/api/v1/domain/link?domain_id={w.site_b}", who="admin").json()
    ]
    assert link["code"] in codes
    # Expired: the link stops working.
    past = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = w.call(
        "PUT",
        "/api/v1/domain/link",
        {"id": link["id"], "description": "board", "valid_until": past},
        who="owner",
    )
    assert r.status == 200 and r.json()["valid_until"].startswith(past[:19])
    assert w.call("GET", f"{stats}&access={link['code']}").status == 404
    assert w.call("GET", f"/api/v1/domain?access={link['code']}").json() == []
    # No expiry again, then deleted.
    w.call("PUT", "/api/v1/domain/link", {"id": link["id"], "valid_until": None}, who="owner")
    assert w.call("GET", f"{stats}&access={link['code']}").status == 200
    assert w.call("DELETE", f"/api/v1/domain/link?id={link['id']}", who="owner").status == 200
    assert w.call("GET", f"{stats}&access={link['code']}").status == 404


# -- members, invitations, organizations ---------------------------------------------------------


def test_members_roles_and_removal(w: World) -> None:
    site = new_site(w, "team.example")
    user = create_user(w.server.data_dir, "member@team.test")
    w.keys["member"] = user["api_key"]
    bad(
        w.call("POST", "/api/v1/member", {"id": site, "emails": ["not-an-email"]}, who="owner"),
        "emails",
    )
    assert w.call("GET", f"/api/v1/domain?id={site}", who="member").json() == []
    r = w.call("POST", "/api/v1/member", {"id": site, "emails": ["member@team.test"]}, who="owner")
    assert [i["email"] for i in r.json()] == ["member@team.test"]
    invitations = w.call("GET", "/api/v1/invitation", who="member").json()
    assert [i["domain_id"] for i in invitations] == [site]
    assert (
        w.call("POST", "/api/v1/invitation", {"id": invitations[0]["id"]}, who="viewer").status
        == 404
    )  # not theirs
    member = w.call("POST", "/api/v1/invitation", {"id": invitations[0]["id"]}, who="member").json()
    assert member["role"] == "Viewer"
    assert (
        w.call("GET", f"/api/v1/domain?id={site}", who="member").json()[0]["user_role"] == "Viewer"
    )
    assert w.call("POST", "/api/v1/domain/title", {"domain_id": site}, who="member").status == 403
    bad(w.call("PUT", "/api/v1/member", {"id": member["id"], "role": "Owner"}, who="owner"), "role")
    assert (
        w.call("PUT", "/api/v1/member", {"id": member["id"], "role": "admin"}, who="member").status
        == 403
    )
    assert (
        w.call("PUT", "/api/v1/member", {"id": member["id"], "role": "admin"}, who="owner").json()[
            "role"
        ]
        == "Admin"
    )
    assert w.call("POST", "/api/v1/domain/title", {"domain_id": site}, who="member").status == 200
    assert w.call("DELETE", f"/api/v1/domain?id={site}", who="member").status == 403
    roles = {
        m["user"]["email"]: m["role"]
        for m in w.call("GET", f"/api/v1/member?id={site}", who="member").json()
    }
    assert roles == {"owner@b.test": "Owner", "member@team.test": "Admin"}
    assert w.call("DELETE", f"/api/v1/member?id={member['id']}", who="owner").status == 200
    assert w.call("GET", f"/api/v1/domain?id={site}", who="member").json() == []
    # An invitation can be withdrawn by the inviter.
    r = w.call("POST", "/api/v1/member", {"id": site, "emails": ["later@team.test"]}, who="owner")
    assert (
        w.call(
            "DELETE",
            "/api/v1/invitation",
            {"id": r.json()[0]["id"], "domain_id": site},
            who="owner",
        ).status
        == 200
    )
    assert w.call("GET", f"/api/v1/invitation?domain_id={site}", who="owner").json() == []


def test_organizations(w: World) -> None:
    bad(w.call("POST", "/api/v1/organization", {"name": ""}, who="owner"), "name")
    org = w.call("POST", "/api/v1/organization", {"name": "Acme"}, who="owner").json()
    assert org["role"] == "Owner"
    org = w.call(
        "PUT", "/api/v1/organization", {"id": org["id"], "name": "Acme Inc"}, who="owner"
    ).json()
    assert org["name"] == "Acme Inc"
    site = new_site(w, "acme.example")
    r = w.call(
        "POST", "/api/v1/organization/domain", {"id": org["id"], "domain_id": site}, who="owner"
    )
    assert r.status == 200 and r.json()["organization_id"] == org["id"]
    assert [
        d["id"]
        for d in w.call("GET", f"/api/v1/organization/domain?id={org['id']}", who="owner").json()
    ] == [site]
    # Auto-join: a new user with an acme.test email becomes a Viewer of the organization's sites.
    r = w.call(
        "POST",
        "/api/v1/organization/autojoin",
        {"id": org["id"], "auto_join": ["acme.test"]},
        who="owner",
    )
    assert r.json()["auto_join"] == ["acme.test"]
    bad(
        w.call(
            "POST",
            "/api/v1/organization/autojoin",
            {"id": org["id"], "auto_join": ["not a host"]},
            who="owner",
        ),
        "auto_join",
    )
    joined = create_user(w.server.data_dir, "dev@acme.test")
    w.keys["dev"] = joined["api_key"]
    assert [
        (d["id"], d["user_role"]) for d in w.call("GET", "/api/v1/domain", who="dev").json()
    ] == [(site, "Viewer")]
    assert [o["role"] for o in w.call("GET", "/api/v1/organization", who="dev").json()] == [
        "Viewer"
    ]
    assert (
        w.call("PUT", "/api/v1/organization", {"id": org["id"], "name": "x"}, who="dev").status
        == 403
    )
    assert w.call("GET", f"/api/v1/organization/domain?id={org['id']}", who="viewer").status == 404
    assert (
        w.call(
            "DELETE",
            f"/api/v1/organization/autojoin?id={org['id']}&auto_join=acme.test",
            who="owner",
        ).status
        == 200
    )
    # Deleting the organization without its domains gives the site back to its owner.
    assert w.call("DELETE", f"/api/v1/organization?id={org['id']}", who="owner").status == 200
    assert w.call("GET", f"/api/v1/domain?id={site}", who="owner").json()[0]["user_role"] == "Owner"
    assert w.call("GET", "/api/v1/domain", who="dev").json() == []


# -- snippets, views, themes ---------------------------------------------------------------------


def test_snippets(w: World) -> None:
    r = w.call("GET", f"/api/v1/domain/snippet?domain_id={w.site_b}&type=event", who="owner")
    assert r.status == 200 and r.json()["id"] is None
    body = {
        "domain_id": w.site_b,
        "type": "page view",
        "dev": True,
        "include": "/a,/b",
        "exclude": "/x",
        "domains": "victim-b.example",
        "endpoint": "https://proxy.example/hit",
        "sample": "",
    }
    saved = w.call("POST", "/api/v1/domain/snippet", body, who="admin").json()
    again = w.call("POST", "/api/v1/domain/snippet", {**body, "dev": False}, who="admin").json()
    assert again["id"] == saved["id"] and again["dev"] is False
    assert (
        w.call(
            "GET", f"/api/v1/domain/snippet?domain_id={w.site_b}&type=page%20view", who="viewer"
        ).json()["include"]
        == "/a,/b"
    )
    bad(w.call("POST", "/api/v1/domain/snippet", {**body, "type": "pageview"}, who="owner"), "type")
    bad(
        w.call("POST", "/api/v1/domain/snippet", {**body, "endpoint": "ftp://x"}, who="owner"),
        "endpoint",
    )
    assert w.call("POST", "/api/v1/domain/snippet", body, who="viewer").status == 403


def test_views(w: World) -> None:
    body = {
        "domain_id": w.site_b,
        "name": "Blog",
        "from": "2024-01-02",
        "to": "2024-03-04",
        "from_time": "14:56",
        "period": 5,
        "compare": "previous",
        "path": ["/blog"],
        "visitor_id": 12345,
    }
    view = w.call("POST", "/api/v1/view", body, who="admin").json()
    assert view["name"] == "Blog" and view["path"] == ["/blog"] and view["compare"] == "previous"
    view = w.call(
        "POST", "/api/v1/view", {**body, "id": view["id"], "name": "Blog 2"}, who="admin"
    ).json()
    assert [
        v["name"] for v in w.call("GET", f"/api/v1/view?domain_id={w.site_b}", who="viewer").json()
    ] == ["Blog 2"]
    for field, value in (
        ("name", ""),
        ("from", "2024-13-01"),
        ("from_time", "25:00"),
        ("compare", "decade"),
        ("path", "/blog"),
        ("period", -1),
    ):
        bad(w.call("POST", "/api/v1/view", {**body, field: value}, who="admin"), field)
    assert w.call("DELETE", f"/api/v1/view?id={view['id']}", who="client_a").status == 404
    assert w.call("DELETE", f"/api/v1/view?id={view['id']}", who="admin").status == 200
    assert w.call("GET", f"/api/v1/view?domain_id={w.site_b}", who="admin").json() == []


def _multipart(data: dict, files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = "trailboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="data"\r\n\r\n{json.dumps(data)}\r\n'.encode()
    ]
    for name, content in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name.split(".")[0]}"; '
            f'filename="{name}"\r\nContent-Type: image/png\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_themes_with_uploaded_files(w: World) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    body, content_type = _multipart(
        {"name": "Dark", "settings": {"accent": "#123456"}}, {"logo_light.png": png}
    )
    headers = {"Authorization": f"Bearer {w.keys['owner']}", "Content-Type": content_type}
    r = request("POST", w.server.url + "/api/v1/theme", body, headers)
    assert r.status == 200, r.body
    theme = r.json()
    assert theme["settings"]["accent"] == "#123456"
    stored = w.server.data_dir / "themes" / theme["id"] / "logo_light"
    assert stored.read_bytes() == png
    r = w.call("GET", theme["settings"]["logo_light"], who="owner")
    assert r.status == 200 and r.body == png and r.headers.get("content-type") == "image/png"
    assert (
        w.call("GET", theme["settings"]["logo_light"], who="viewer").status == 404
    )  # the owner's own theme
    body, content_type = _multipart({"name": "Bad"}, {"logo_light.png": b"not an image"})
    r = request(
        "POST", w.server.url + "/api/v1/theme", body, {**headers, "Content-Type": content_type}
    )
    bad(r, "logo_light")
    bad(w.call("POST", "/api/v1/theme", {"name": "", "settings": {}}, who="owner"), "name")
    # Base theme of a site, then per-site settings on top.
    r = w.call(
        "PUT", "/api/v1/domain/theme", {"domain_id": w.site_b, "theme_id": theme["id"]}, who="owner"
    )
    assert r.json()["accent"] == "#123456"
    r = w.call(
        "POST",
        "/api/v1/domain/theme",
        {"domain_id": w.site_b, "settings": {"accent": "#ffffff"}},
        who="admin",
    )
    assert r.json()["theme_id"] == theme["id"] and r.json()["theme_settings"] == {
        "accent": "#ffffff"
    }
    assert [t["id"] for t in w.call("GET", "/api/v1/theme", who="owner").json()] == [theme["id"]]
    assert (
        w.call(
            "DELETE", f"/api/v1/theme/file?theme_id={theme['id']}&file=logo_light", who="owner"
        ).status
        == 200
    )
    assert not stored.exists()
    assert (
        w.call("DELETE", f"/api/v1/theme?id={theme['id']}&keep_settings=true", who="owner").status
        == 200
    )
    assert w.call("GET", f"/api/v1/domain?id={w.site_b}", who="owner").json()[0]["theme_id"] == ""

"""Pirsch management over HTTP: domains, clients, tokens, and who may see what."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import create_user
from tests.server import Reply, TrailServer, request


def domain_body(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "hostname": f"{name}.example.com",
        "subdomain": name,
        "timezone": "Europe/Berlin",
        **extra,
    }


def unique() -> str:
    return "s" + uuid.uuid4().hex[:12]


def create_domain(s: TrailServer, key: str | None = None, **extra: Any) -> dict[str, Any]:
    r = s.call("POST", "/api/v1/domain", domain_body(unique(), **extra), key=key or s.admin_key)
    assert r.status == 200, r.body
    return r.json()


def assert_pirsch_error(r: Reply, status: int, field: str | None = None) -> None:
    assert r.status == status, (r.status, r.body)
    assert r.headers.get("content-type", "").startswith("application/json")
    body = r.json()
    assert (
        isinstance(body["error"], list) and body["error"] and isinstance(body["validation"], dict)
    )
    if field is not None:
        assert field in body["validation"], body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/domain"),
        ("POST", "/api/v1/domain"),
        ("DELETE", "/api/v1/domain?id=x"),
        ("GET", "/api/v1/client?id=x"),
        ("POST", "/api/v1/client"),
        ("DELETE", "/api/v1/client?id=x"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer tt_nope"},
        {"X-API-KEY": "tt_nope"},
        {"Authorization": "Basic abc"},
    ],
)
def test_401_without_valid_credentials(
    shared_server: TrailServer, method: str, path: str, headers: dict[str, str]
) -> None:
    r = request(method, shared_server.url + path, {} if method == "POST" else None, headers)
    assert_pirsch_error(r, 401)


def test_create_and_list_domains(shared_server: TrailServer) -> None:
    s = shared_server
    site = create_domain(s, display_name="Shop", group_by_title=True)
    assert uuid.UUID(site["id"]).version == 4
    assert (
        site["timezone"] == "Europe/Berlin"
        and site["display_name"] == "Shop"
        and site["group_by_title"]
    )
    assert site["active_visitors_seconds"] == 600 and len(site["identification_code"]) == 32
    # X-API-KEY works like Bearer for user keys.
    r = request("GET", s.url + "/api/v1/domain", headers={"X-API-KEY": s.admin_key or ""})
    assert r.status == 200 and site["id"] in [d["id"] for d in r.json()]
    for query in (
        f"id={site['id']}",
        f"subdomain={site['subdomain']}",
        f"domain={site['hostname']}",
    ):
        r = s.call("GET", f"/api/v1/domain?{query}", key=s.admin_key)
        assert [d["id"] for d in r.json()] == [site["id"]], query
    assert s.call("GET", "/api/v1/domain?id=unknown", key=s.admin_key).json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subdomain": "a1", "timezone": "UTC"}, "hostname"),
        ({"hostname": "a.com", "timezone": "UTC"}, "subdomain"),
        ({"hostname": "a.com", "subdomain": "a2"}, "timezone"),
        ({"hostname": "a.com", "subdomain": "a3", "timezone": "Mars/Olympus"}, "timezone"),
        ({"hostname": "a.com", "subdomain": "a4", "timezone": "../../etc/passwd"}, "timezone"),
        ({"hostname": "https://a.com/x", "subdomain": "a5", "timezone": "UTC"}, "hostname"),
        ({"hostname": "a.com", "subdomain": "bad sub", "timezone": "UTC"}, "subdomain"),
        ({"hostname": 5, "subdomain": "a6", "timezone": "UTC"}, "hostname"),
        ({"hostname": "a.com", "subdomain": "a7", "timezone": "UTC", "public": "yes"}, "public"),
        (
            {
                "hostname": "a.com",
                "subdomain": "a8",
                "timezone": "UTC",
                "active_visitors_seconds": 5,
            },
            "active_visitors_seconds",
        ),
    ],
)
def test_domain_validation_names_the_field(
    shared_server: TrailServer, body: dict[str, Any], field: str
) -> None:
    assert_pirsch_error(
        shared_server.call("POST", "/api/v1/domain", body, key=shared_server.admin_key), 400, field
    )


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"[1, 2]", b"null"])
def test_bad_bodies_are_400(shared_server: TrailServer, raw: bytes) -> None:
    r = request(
        "POST",
        shared_server.url + "/api/v1/domain",
        raw,
        {"Authorization": f"Bearer {shared_server.admin_key}"},
    )
    assert_pirsch_error(r, 400, "body")


def test_duplicate_subdomain(shared_server: TrailServer) -> None:
    site = create_domain(shared_server)
    body = domain_body(site["subdomain"])
    assert_pirsch_error(
        shared_server.call("POST", "/api/v1/domain", body, key=shared_server.admin_key),
        400,
        "subdomain",
    )


def test_access_key_client(shared_server: TrailServer) -> None:
    s = shared_server
    site = create_domain(s)
    r = s.call(
        "POST",
        "/api/v1/client",
        {"domain_id": site["id"], "type": "token", "description": "server"},
        key=s.admin_key,
    )
    assert r.status == 200, r.body
    client = r.json()
    key = client["client_secret"]
    assert key.startswith("pa_") and len(key) == 48 and key[3:].isalnum()
    assert client["scope_hit"] == "w" and client["scope_statistics"] == ""
    listed = s.call("GET", f"/api/v1/client?id={site['id']}", key=s.admin_key).json()
    assert [c["id"] for c in listed] == [client["id"]] and "client_secret" not in listed[0]
    # An access key is write-only: it cannot manage domains or read statistics.
    assert_pirsch_error(s.call("POST", "/api/v1/domain", domain_body(unique()), key=key), 403)
    assert_pirsch_error(
        s.call(
            "GET",
            f"/api/v1/statistics/total?id={site['id']}&from=2024-01-01&to=2024-01-02",
            key=key,
        ),
        403,
    )
    assert s.call("DELETE", f"/api/v1/client?id={client['id']}", key=s.admin_key).status == 200
    assert_pirsch_error(s.call("GET", "/api/v1/domain", key=key), 401)
    assert s.call("GET", f"/api/v1/client?id={site['id']}", key=s.admin_key).json() == []


def test_oauth_client_and_token(shared_server: TrailServer) -> None:
    s = shared_server
    site = create_domain(s)
    other = create_domain(s)
    body = {
        "domain_id": site["id"],
        "type": "oauth",
        "description": "dash",
        "scope_statistics": "r",
        "scope_domains": "r",
    }
    client = s.call("POST", "/api/v1/client", body, key=s.admin_key).json()
    assert len(client["client_id"]) == 32 and len(client["client_secret"]) == 64
    assert client["scope_statistics"] == "r" and client["scope_hit"] == ""
    assert_pirsch_error(
        s.call(
            "POST", "/api/v1/token", {"client_id": client["client_id"], "client_secret": "x" * 64}
        ),
        401,
    )
    assert_pirsch_error(
        s.call("POST", "/api/v1/token", {"client_id": client["client_id"]}), 400, "client_secret"
    )
    r = s.call(
        "POST",
        "/api/v1/token",
        {"client_id": client["client_id"], "client_secret": client["client_secret"]},
    )
    assert r.status == 200, r.body
    token = r.json()
    assert token["expires_at"].endswith("Z") and token["access_token"]
    # A domain client sees exactly its domain; the other one does not exist for it.
    assert [d["id"] for d in s.call("GET", "/api/v1/domain", key=token["access_token"]).json()] == [
        site["id"]
    ]
    assert_pirsch_error(
        s.call("GET", f"/api/v1/client?id={other['id']}", key=token["access_token"]), 403
    )
    # Update the description, then delete: the token dies with its client.
    r = s.call(
        "POST", "/api/v1/client", {"id": client["id"], "description": "renamed"}, key=s.admin_key
    )
    assert r.json()["description"] == "renamed" and "client_secret" not in r.json()
    assert s.call("DELETE", f"/api/v1/client?id={client['id']}", key=s.admin_key).status == 200
    assert_pirsch_error(s.call("GET", "/api/v1/domain", key=token["access_token"]), 401)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "token"}, "domain_id"),
        ({"domain_id": "x", "type": "magic"}, "type"),
        ({"domain_id": "x", "type": "oauth", "scope_hit": "r"}, "scope_hit"),
        ({"domain_id": "x", "type": "oauth", "description": 7}, "description"),
    ],
)
def test_client_validation(shared_server: TrailServer, body: dict[str, Any], field: str) -> None:
    assert_pirsch_error(
        shared_server.call("POST", "/api/v1/client", body, key=shared_server.admin_key), 400, field
    )


def test_foreign_and_unknown_ids_are_404(shared_server: TrailServer) -> None:
    s = shared_server
    admin_site = create_domain(s)
    user = create_user(s.data_dir, "user")
    key = user["api_key"]
    own = create_domain(s, key=key)
    assert [d["id"] for d in s.call("GET", "/api/v1/domain", key=key).json()] == [own["id"]]
    assert own["organization_id"] == user["account_id"]
    for method, path, body in [
        ("GET", f"/api/v1/client?id={admin_site['id']}", None),
        ("DELETE", f"/api/v1/domain?id={admin_site['id']}", None),
        ("POST", "/api/v1/client", {"domain_id": admin_site["id"], "type": "token"}),
        (
            "GET",
            f"/api/v1/statistics/total?id={admin_site['id']}&from=2024-01-01&to=2024-01-02",
            None,
        ),
        ("DELETE", f"/api/v1/domain?id={uuid.uuid4()}", None),
        ("DELETE", f"/api/v1/client?id={uuid.uuid4()}", None),
    ]:
        assert_pirsch_error(s.call(method, path, body, key=key), 404)
    # The admin sees every account's domains.
    assert own["id"] in [d["id"] for d in s.call("GET", "/api/v1/domain", key=s.admin_key).json()]


def test_delete_domain_revokes_its_keys(shared_server: TrailServer) -> None:
    s = shared_server
    site = create_domain(s)
    client = s.call(
        "POST", "/api/v1/client", {"domain_id": site["id"], "type": "token"}, key=s.admin_key
    ).json()
    assert s.call("DELETE", f"/api/v1/domain?id={site['id']}", key=s.admin_key).status == 200
    assert s.call("GET", f"/api/v1/domain?id={site['id']}", key=s.admin_key).json() == []
    assert_pirsch_error(s.call("GET", "/api/v1/domain", key=client["client_secret"]), 401)
    assert_pirsch_error(s.call("DELETE", f"/api/v1/domain?id={site['id']}", key=s.admin_key), 404)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_unknown_routes_are_json_404(shared_server: TrailServer, method: str) -> None:
    assert_pirsch_error(request(method, shared_server.url + "/api/v1/no/such/route"), 404)

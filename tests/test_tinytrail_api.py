"""TinyTrail management API end to end: envelope, error codes, roles, account scoping, validation,
recoverable user keys shared with the Pirsch API, excluded IPs, and rate limits across workers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import Reply, TrailServer, request
from tests.test_ingest_e2e import CHROME_WIN, wait_for

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    data = tmp_path_factory.mktemp("tt-api") / "data"
    s = TrailServer(
        data, workers=2, env={"TRAIL_SEAL_INTERVAL_MS": "200", "TRAIL_RATE_LIMIT_API": "100000/60"}
    ).start()
    yield s
    s.stop()


def tt(
    s: TrailServer,
    method: str,
    path: str,
    body: Any = None,
    key: str | None = "admin",
    raw: bytes | None = None,
) -> Reply:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["X-API-KEY"] = s.admin_key if key == "admin" else key
    return request(method, s.url + path, raw if raw is not None else body, headers)


def data(r: Reply, status: int = 200) -> Any:
    assert r.status == status, r.body
    body = r.json()
    assert body["status"] == "success"
    return body["data"]


def error(r: Reply, status: int, code: str, starts: str = "") -> str:
    assert r.status == status, r.body
    body = r.json()
    assert body["status"] == "error" and body["error"]["code"] == code, body
    assert body["error"]["message"].startswith(starts), body
    return body["error"]["message"]


def new_account(s: TrailServer, name: str) -> tuple[str, str, str]:
    """(account id, user id, user key) of a fresh account with one `user`."""
    account = data(tt(s, "POST", "/api/v1/accounts", {"name": name}), 201)
    assert set(account) == {"id", "name", "createdAt"} and account["name"] == name
    user = data(
        tt(
            s,
            "POST",
            "/api/v1/users",
            {"account_id": account["id"], "role": "user", "email": f"{name}@example.com"},
        ),
        201,
    )
    assert user["apiKey"].startswith("tt_") and user["accountId"] == account["id"]
    return account["id"], user["id"], user["apiKey"]


def test_auth_errors_use_the_envelope(server: TrailServer) -> None:
    error(tt(server, "GET", "/api/v1/websites", key=None), 401, "UNAUTHORIZED")
    error(tt(server, "GET", "/api/v1/websites", key="tt_nope"), 401, "UNAUTHORIZED")
    _, _, key = new_account(server, "roles")
    for method, path in [
        ("GET", "/api/v1/accounts"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/admin/aggregate"),
    ]:
        error(tt(server, method, path, {}, key=key), 403, "FORBIDDEN")
    error(tt(server, "DELETE", f"/api/v1/accounts/{MISSING}"), 404, "NOT_FOUND")
    error(tt(server, "DELETE", "/api/v1/accounts/not-a-uuid"), 400, "INVALID_PAYLOAD", "id: ")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/accounts", {}, "name"),
        ("/api/v1/accounts", {"name": 5}, "name"),
        ("/api/v1/users", {"role": "user"}, "account_id"),
        ("/api/v1/users", {"account_id": MISSING, "role": "owner"}, "role"),
        ("/api/v1/users", {"account_id": MISSING, "role": "user"}, "account_id"),  # not found
        ("/api/v1/websites", {}, "domain"),
        ("/api/v1/websites", {"domain": "https://x.com/a"}, "domain"),
        ("/api/v1/websites", {"domain": "x.com", "content_groups": "blog"}, "content_groups"),
        (
            "/api/v1/websites",
            {"domain": "x.com", "content_groups": [{"name": "B"}]},
            "content_groups[0].pattern",
        ),
        (
            "/api/v1/websites",
            {"domain": "x.com", "excluded_ips": ["1.2.3.4", "nope"]},
            "excluded_ips[1]",
        ),
        ("/api/v1/admin/aggregate", {"date": "2026-02-30"}, "date"),
        ("/api/v1/admin/aggregate", {"date": "yesterday"}, "date"),
    ],
)
def test_validation_names_the_field(server: TrailServer, path: str, body: Any, field: str) -> None:
    error(tt(server, "POST", path, body), 400, "INVALID_PAYLOAD", f"{field}: ")


def test_malformed_bodies(server: TrailServer) -> None:
    error(
        tt(server, "POST", "/api/v1/accounts", raw=b"{not json"), 400, "INVALID_PAYLOAD", "body: "
    )
    error(tt(server, "POST", "/api/v1/accounts", raw=b"[1]"), 400, "INVALID_PAYLOAD", "body: ")
    error(tt(server, "POST", "/api/v1/accounts", raw=b"\xff\xfe"), 400, "INVALID_PAYLOAD", "body: ")


def test_users_and_recoverable_keys(server: TrailServer) -> None:
    account, user_id, key = new_account(server, "keys")
    again = data(tt(server, "GET", f"/api/v1/users/{user_id}/api-key"))
    assert again == {"id": user_id, "apiKey": key}
    users = data(tt(server, "GET", "/api/v1/users"))
    mine = [u for u in users if u["id"] == user_id]
    assert mine == [
        {
            "id": user_id,
            "accountId": account,
            "email": "keys@example.com",
            "role": "user",
            "createdAt": mine[0]["createdAt"],
        }
    ]  # no apiKey in lists
    # The same key works on the Pirsch API.
    site = data(tt(server, "POST", "/api/v1/websites", {"domain": "keys.example"}, key=key), 201)
    r = request("GET", server.url + "/api/v1/domain", headers={"Authorization": f"Bearer {key}"})
    assert r.status == 200 and [d["id"] for d in r.json()] == [site["id"]]
    error(tt(server, "GET", f"/api/v1/users/{MISSING}/api-key"), 404, "NOT_FOUND")
    deleted = data(tt(server, "DELETE", f"/api/v1/users/{user_id}"))
    assert deleted["id"] == user_id and "apiKey" not in deleted
    error(tt(server, "GET", "/api/v1/websites", key=key), 401, "UNAUTHORIZED")
    error(tt(server, "DELETE", f"/api/v1/users/{user_id}"), 404, "NOT_FOUND")


def test_websites_are_scoped_to_the_account(server: TrailServer) -> None:
    a_account, _, a_key = new_account(server, "alpha")
    _, _, b_key = new_account(server, "beta")
    site = data(
        tt(
            server,
            "POST",
            "/api/v1/websites",
            {
                "domain": "Alpha.Example",
                "content_groups": [{"name": "Docs", "pattern": "/docs/*"}],
                "excluded_ips": ["10.1.2.3/8", "::1"],
            },
            key=a_key,
        ),
        201,
    )
    assert site == {
        "id": site["id"],
        "accountId": a_account,
        "domain": "alpha.example",
        "contentGroups": [{"name": "Docs", "pattern": "/docs/*"}],
        "excludedIps": ["10.0.0.0/8", "::1"],
        "createdAt": site["createdAt"],
    }
    error(
        tt(server, "POST", "/api/v1/websites", {"domain": "alpha.example"}, key=a_key),
        400,
        "INVALID_PAYLOAD",
        "domain: ",
    )
    # Another account may use the same domain; it never sees alpha's website.
    data(tt(server, "POST", "/api/v1/websites", {"domain": "alpha.example"}, key=b_key), 201)
    assert [w["id"] for w in data(tt(server, "GET", "/api/v1/websites", key=a_key))] == [site["id"]]
    assert site["id"] not in [
        w["id"] for w in data(tt(server, "GET", "/api/v1/websites", key=b_key))
    ]
    assert site["id"] in [w["id"] for w in data(tt(server, "GET", "/api/v1/websites"))]  # admin
    path = f"/api/v1/websites/{site['id']}"
    error(tt(server, "PATCH", path, {"domain": "x.example"}, key=b_key), 404, "NOT_FOUND")
    error(tt(server, "DELETE", path, key=b_key), 404, "NOT_FOUND")
    error(
        tt(server, "GET", f"/api/v1/reports/summary?website_id={site['id']}", key=b_key),
        404,
        "NOT_FOUND",
    )
    error(
        tt(
            server,
            "POST",
            "/api/v1/websites",
            {"domain": "y.example", "account_id": a_account},
            key=b_key,
        ),
        400,
        "INVALID_PAYLOAD",
        "account_id: ",
    )
    error(tt(server, "PATCH", path, {}, key=a_key), 400, "INVALID_PAYLOAD", "body: ")
    patched = data(
        tt(server, "PATCH", path, {"domain": "alpha2.example", "excluded_ips": []}, key=a_key)
    )
    assert (patched["domain"], patched["excludedIps"]) == ("alpha2.example", [])
    assert patched["contentGroups"] == site["contentGroups"]
    assert data(tt(server, "DELETE", path, key=a_key))["id"] == site["id"]
    error(tt(server, "DELETE", path, key=a_key), 404, "NOT_FOUND")


def test_admin_creates_websites_in_any_account_and_deletes_accounts(server: TrailServer) -> None:
    account, _, key = new_account(server, "gamma")
    site = data(
        tt(server, "POST", "/api/v1/websites", {"domain": "g.example", "account_id": account}), 201
    )
    assert site["accountId"] == account
    assert [w["id"] for w in data(tt(server, "GET", "/api/v1/websites", key=key))] == [site["id"]]
    deleted = data(tt(server, "DELETE", f"/api/v1/accounts/{account}"))
    assert deleted["id"] == account and deleted["name"] == "gamma"
    error(tt(server, "GET", "/api/v1/websites", key=key), 401, "UNAUTHORIZED")  # its user is gone
    assert site["id"] not in [w["id"] for w in data(tt(server, "GET", "/api/v1/websites"))]
    assert account not in [a["id"] for a in data(tt(server, "GET", "/api/v1/accounts"))]


def test_excluded_ips_are_dropped_at_ingest(server: TrailServer) -> None:
    site, key = server.create_site("excl.example")
    data(tt(server, "PATCH", f"/api/v1/websites/{site}", {"excluded_ips": ["81.2.71.0/24"]}))
    hits = [
        {
            "url": "https://excl.example/",
            "ip": ip,
            "user_agent": CHROME_WIN,
            "time": "2026-11-10T10:00:00Z",
        }
        for ip in ("81.2.71.9", "81.2.72.9")
    ]
    assert server.call("POST", "/api/v1/hit/batch", hits, key=key).status == 200
    url = f"/api/v1/reports/summary?website_id={site}&start_date=2026-11-10&end_date=2026-11-10"
    got = wait_for(
        lambda: data(tt(server, "GET", url)), lambda d: d["metrics"]["visits"]["value"] >= 1
    )
    time.sleep(0.5)  # a wrongly counted second hit would be sealed by now
    assert (
        data(tt(server, "GET", url))["metrics"]["visits"]["value"]
        == 1
        == got["metrics"]["visits"]["value"]
    )


def test_aggregate_runs_compaction_for_a_day(server: TrailServer) -> None:
    d = data(tt(server, "POST", "/api/v1/admin/aggregate", {"date": "2026-11-01"}))
    assert d["message"] == "Aggregation completed for 2026-11-01"
    # Without a body it aggregates yesterday (UTC).
    assert data(tt(server, "POST", "/api/v1/admin/aggregate", raw=b""))["message"].startswith(
        "Aggregation"
    )


def test_rate_limit_is_shared_by_all_workers(tmp_path: Path) -> None:
    """60 requests / 60 s per key with the default settings; 2 workers share one counter, so
    the 61st request is refused whichever worker answers it."""
    s = TrailServer(tmp_path / "data", workers=2).start()
    try:
        account = data(tt(s, "POST", "/api/v1/accounts", {"name": "rl"}), 201)
        user = data(
            tt(s, "POST", "/api/v1/users", {"account_id": account["id"], "role": "user"}), 201
        )
        # Windows are aligned to the epoch: start early in one so all 61 requests share it.
        if time.time() % 60 > 40:
            time.sleep(60.5 - time.time() % 60)
        statuses = [tt(s, "GET", "/api/v1/websites", key=user["apiKey"]).status for _ in range(60)]
        assert statuses == [200] * 60
        r = tt(s, "GET", "/api/v1/websites", key=user["apiKey"])
        error(r, 429, "RATE_LIMITED")
        headers = {k.lower(): v for k, v in r.headers.items()}
        assert 1 <= int(headers["retry-after"]) <= 60
        # Another key has its own budget.
        assert tt(s, "GET", "/api/v1/websites").status == 200
    finally:
        s.stop()

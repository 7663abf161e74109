"""The user's display name through the API of a real server: `POST /api/v1/user/name` (Pirsch's
endpoint) stores `full_name`, `GET /api/v1/user` and the dashboard's session answer show it, a
signed-in page changes it with its cookie and CSRF token, and bad input is a 400 naming the
field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.server import TrailServer
from tests.test_signin import Person, browser, new_user


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    s = TrailServer(tmp_path_factory.mktemp("user-name") / "data", workers=1).start()
    try:
        yield s
    finally:
        assert s.stop() == 0


@pytest.fixture(scope="module")
def person(server: TrailServer) -> Person:
    r = server.call("POST", "/api/v1/accounts", {"name": "names"}, key=server.admin_key)
    assert r.status == 201, r.body
    return new_user(server, str(r.json()["data"]["id"]))


def user(server: TrailServer, key: str) -> dict[str, Any]:
    r = server.call("GET", "/api/v1/user", key=key)
    assert r.status == 200, r.body
    return dict(r.json())


def test_the_name_is_stored_and_shown(server: TrailServer, person: Person) -> None:
    assert user(server, person.key)["full_name"] == ""
    r = server.call("POST", "/api/v1/user/name", {"full_name": "  Ada Lovelace "}, key=person.key)
    assert r.status == 200, r.body
    assert user(server, person.key)["full_name"] == "Ada Lovelace"
    # Another user's name is its own.
    assert user(server, str(server.admin_key))["full_name"] == ""

    # The dashboard's session answer carries it, and the cookie changes it (with the CSRF token).
    page = browser(server, person.email, person.password)
    assert page.answer.json()["user"]["full_name"] == "Ada Lovelace"
    r = page.call("POST", "/api/v1/user/name", {"full_name": "Ada King, Countess of Lovelace"})
    assert r.status == 200, r.body
    session = page.call("GET", "/api/v1/auth/session").json()
    assert session["user"]["full_name"] == "Ada King, Countess of Lovelace"
    refused = page.call("POST", "/api/v1/user/name", {"full_name": "Nobody"}, X_CSRF_Token="")
    assert refused.status == 403, refused.body
    assert user(server, person.key)["full_name"] == "Ada King, Countess of Lovelace"
    # The longest name allowed, with letters of any script.
    longest = "Ł" * 200
    assert (
        server.call("POST", "/api/v1/user/name", {"full_name": longest}, key=person.key).status
        == 200
    )
    assert user(server, person.key)["full_name"] == longest


BAD_NAMES = [
    ({}, "required"),
    ({"full_name": None}, "required"),
    ({"full_name": ""}, "required"),
    ({"full_name": "   "}, "required"),
    ({"full_name": "x" * 201}, "must be a string of at most 200 characters"),
    ({"full_name": 42}, "must be a string of at most 200 characters"),
    ({"full_name": ["Ada"]}, "must be a string of at most 200 characters"),
    ({"full_name": "Ada\nLovelace"}, "must not contain control characters (line breaks, tabs)"),
    ({"full_name": "Ada\tLovelace"}, "must not contain control characters (line breaks, tabs)"),
]


@pytest.mark.parametrize(("body", "problem"), BAD_NAMES)
def test_a_bad_name_is_a_400_naming_the_field(
    server: TrailServer, person: Person, body: dict[str, Any], problem: str
) -> None:
    before = user(server, person.key)["full_name"]
    r = server.call("POST", "/api/v1/user/name", body, key=person.key)
    assert r.status == 400, r.body
    answer = r.json()
    assert answer["validation"] == {"full_name": problem}
    assert answer["error"] == [f"full_name: {problem}"]
    assert user(server, person.key)["full_name"] == before


def test_a_body_that_is_no_object_is_a_400(server: TrailServer, person: Person) -> None:
    r = server.call("POST", "/api/v1/user/name", b"not json", key=person.key)
    assert r.status == 400, r.body
    r = server.call("POST", "/api/v1/user/name", ["Ada"], key=person.key)
    assert r.status == 400, r.body


def test_members_lists_show_the_name(server: TrailServer, person: Person) -> None:
    """A site's member list (its owner listed like a member) carries the owner's display name."""
    r = server.call(
        "POST",
        "/api/v1/domain",
        {"hostname": "names.example", "subdomain": "names", "timezone": "UTC"},
        key=person.key,
    )
    assert r.status in (200, 201), r.body
    domain = r.json()["id"]
    assert (
        server.call("POST", "/api/v1/user/name", {"full_name": "Grace"}, key=person.key).status
        == 200
    )

    def owner_name() -> str:
        r = server.call("GET", f"/api/v1/member?id={domain}", key=person.key)
        assert r.status == 200, r.body
        owners = [m for m in r.json() if m["role"] == "Owner"]
        assert [m["user_id"] for m in owners] == [person.id]
        return str(owners[0]["user"]["full_name"])

    assert owner_name() == "Grace"
    assert (
        server.call("POST", "/api/v1/user/name", {"full_name": "Grace H."}, key=person.key).status
        == 200
    )
    assert owner_name() == "Grace H."

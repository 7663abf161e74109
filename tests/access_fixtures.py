"""A populated trail for the access tests: an owner's site B with a viewer and an admin member,
and site A of another account with a domain client. Shared by test_authz_matrix and test_access."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.server import TrailServer

# The TinyTrail API is rate limited per key; the matrix sends many requests.
SERVER_ENV = {"TRAIL_RATE_LIMIT_API": "100000/60", "TRAIL_SEAL_INTERVAL_MS": "200"}


def create_user(data_dir: Path, email: str, role: str = "user") -> dict[str, str]:
    """`trail admin create-user`, as an operator would run it next to the live server."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "trail",
            "admin",
            "create-user",
            "--data-dir",
            str(data_dir),
            "--role",
            role,
            "--email",
            email,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


@dataclass
class World:
    server: TrailServer
    site_b: str = ""
    access_key_b: str = ""
    site_a: str = ""
    org: str = ""
    keys: dict[str, str] = field(default_factory=dict)  # principal name -> bearer credential
    markers_b: list[str] = field(default_factory=list)  # strings only site B's data contains
    markers_a: list[str] = field(default_factory=list)

    def call(
        self, method: str, path: str, body: object = None, who: str | None = None, **headers: str
    ):
        return self.server.call(
            method, path, body, key=self.keys.get(who) if who else None, **headers
        )


def oauth_token(s: TrailServer, admin_key: str, site: str, **scopes: str) -> tuple[str, dict]:
    r = s.call(
        "POST",
        "/api/v1/client",
        {"domain_id": site, "type": "oauth", "description": "t", **scopes},
        key=admin_key,
    )
    assert r.status == 200, r.body
    client = r.json()
    r = s.call(
        "POST",
        "/api/v1/token",
        {"client_id": client["client_id"], "client_secret": client["client_secret"]},
    )
    assert r.status == 200, r.body
    return r.json()["access_token"], client


def expire_token_of(s: TrailServer, client_record_id: str) -> str:
    """A bearer token of `client_record_id` that expired ten seconds ago (written into the meta env
    the way issue_token does, since waiting an hour is not an option)."""
    from trail.storage.meta import MetaStore, hash_secret

    token = "expired-" + client_record_id
    meta = MetaStore.open(s.data_dir / "meta")
    try:
        meta.tables["tokens"].put(
            hash_secret(token), {"client": client_record_id, "expires": time.time() - 10}
        )
    finally:
        meta.close()
    return token


def build_world(s: TrailServer) -> World:
    w = World(s)
    admin = s.admin_key or ""
    owner = create_user(s.data_dir, "owner@b.test")
    viewer = create_user(s.data_dir, "viewer@b.test")
    member_admin = create_user(s.data_dir, "admin@b.test")
    w.keys = {
        "owner": owner["api_key"],
        "viewer": viewer["api_key"],
        "admin": member_admin["api_key"],
        "trail_admin": admin,
    }
    # Site A: another account (the trail admin's), with an all-scopes domain client.
    r = s.call(
        "POST",
        "/api/v1/domain",
        {"hostname": "other-a.example", "subdomain": "othera", "timezone": "UTC"},
        key=admin,
    )
    assert r.status == 200, r.body
    w.site_a = r.json()["id"]
    w.markers_a = ["other-a.example", r.json()["identification_code"]]
    all_scopes = {
        f"scope_{k}": v
        for k, v in {
            "hit": "w",
            "event": "w",
            "session": "w",
            "statistics": "r",
            "domains": "w",
            "organizations": "w",
            "themes": "w",
            "billing": "r",
        }.items()
    }
    w.keys["client_a"], _ = oauth_token(s, admin, w.site_a, **all_scopes)
    # Site B: the owner's, with members, an access key, an expired token and some records.
    r = s.call(
        "POST",
        "/api/v1/domain",
        {"hostname": "victim-b.example", "subdomain": "victimb", "timezone": "UTC"},
        key=w.keys["owner"],
    )
    assert r.status == 200, r.body
    w.site_b = r.json()["id"]
    w.markers_b = ["victim-b.example", r.json()["identification_code"]]
    r = s.call(
        "POST",
        "/api/v1/client",
        {"domain_id": w.site_b, "type": "token", "description": "k"},
        key=w.keys["owner"],
    )
    w.access_key_b = w.keys["access_key"] = r.json()["client_secret"]
    _, client_b = oauth_token(s, w.keys["owner"], w.site_b, **all_scopes)
    w.keys["expired"] = expire_token_of(s, client_b["id"])
    r = s.call(
        "POST",
        "/api/v1/domain/alternative",
        {"domain_id": w.site_b, "hostname": "alt.victim-b.example"},
        key=w.keys["owner"],
    )
    assert r.status == 200, r.body
    r = s.call(
        "POST",
        "/api/v1/domain/link",
        {"domain_id": w.site_b, "description": "secret-link-b"},
        key=w.keys["owner"],
    )
    w.markers_b.append(r.json()["code"])
    r = s.call("POST", "/api/v1/organization", {"name": "org-of-b"}, key=w.keys["owner"])
    w.org = r.json()["id"]
    _invite(w, "viewer@b.test", "viewer", "Viewer")
    _invite(w, "admin@b.test", "admin", "Admin")
    return w


def _invite(w: World, email: str, who: str, role: str) -> None:
    r = w.call("POST", "/api/v1/member", {"id": w.site_b, "emails": [email]}, who="owner")
    assert r.status == 200, r.body
    r = w.call("GET", "/api/v1/invitation", who=who)
    invitation = next(i for i in r.json() if i["domain_id"] == w.site_b)
    r = w.call("POST", "/api/v1/invitation", {"id": invitation["id"]}, who=who)
    assert r.status == 200, r.body
    if role != "Viewer":
        r = w.call("PUT", "/api/v1/member", {"id": r.json()["id"], "role": role}, who="owner")
        assert r.status == 200, r.body

"""The collect service's pure parts, table-driven: payload -> engine item, client IP, origins."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from trail.api.browser import hit_item
from trail.errors import FieldError
from trail.services import collect
from trail.services.collect import parse_collect
from trail.storage.meta import MetaStore
from trail.storage.models import Site

SITE = "00000000-0000-4000-8000-000000000000"


def body(event_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "website_id": SITE,
        "event_type": event_type,
        "url": "https://a.test/p?q=1",
        "path": "/p",
        **extra,
    }


MAPPING = [
    # (event type, extra fields, kind, item fields expected on top of url)
    (
        "page_view",
        {"title": "T", "screen_width": 1280.0, "screen_height": 720},
        "hit",
        {"title": "T", "screen_width": 1280, "screen_height": 720},
    ),
    ("close_tab", {}, "session", {}),
    (
        "scroll_25",
        {},
        "event",
        {"event_name": "scroll_25", "event_meta": {}, "non_interactive": True},
    ),
    (
        "scroll_75",
        {"properties": {"depth": 80}},
        "event",
        {"event_name": "scroll_75", "event_meta": {"depth": 80}, "non_interactive": True},
    ),
    (
        "outbound_link",
        {"properties": {"url": "https://b.test/"}},
        "event",
        {
            "event_name": "outbound_link",
            "event_meta": {"url": "https://b.test/"},
            "non_interactive": False,
        },
    ),
    (
        "custom",
        {"properties": {"name": " signup ", "plan": "pro", "n": 2, "ok": True, "deep": {"x": 1}}},
        "event",
        {"event_name": "signup", "event_meta": {"plan": "pro", "n": 2, "ok": True}},
    ),
    ("custom", {}, "event", {"event_name": "custom", "event_meta": {}}),
]


@pytest.mark.parametrize(("event_type", "extra", "kind", "fields"), MAPPING)
def test_event_types_map_onto_engine_kinds(
    event_type: str, extra: dict[str, Any], kind: str, fields: dict[str, Any]
) -> None:
    c = parse_collect(body(event_type, **extra))
    assert (c.website_id, c.event_type, c.kind) == (SITE, event_type, kind)
    assert c.item == {"url": "https://a.test/p?q=1", "referrer": "", "title": "", **fields}


@pytest.mark.parametrize(
    ("extra", "url"),
    [
        (
            {"utm_source": "tw", "utm_campaign": "launch"},
            "https://a.test/p?q=1&utm_source=tw&utm_campaign=launch",
        ),
        (
            {"utm_source": "tw", "url": "https://a.test/?utm_source=nl"},
            "https://a.test/?utm_source=nl",
        ),
        ({"utm_medium": "", "utm_source": None}, "https://a.test/p?q=1"),
    ],
)
def test_utm_fields_join_the_url_unless_it_has_them(extra: dict[str, Any], url: str) -> None:
    assert parse_collect(body("page_view", **extra)).item["url"] == url


@pytest.mark.parametrize(
    ("params", "item"),
    [
        (
            {
                "url": ["https://a.test/x"],
                "t": ["X"],
                "ref": ["https://g.test/"],
                "w": ["390"],
                "h": ["844.0"],
                "tag_author": ["kim"],
                "nc": ["1"],
            },
            {
                "url": "https://a.test/x",
                "title": "X",
                "referrer": "https://g.test/",
                "screen_width": 390,
                "screen_height": 844,
                "tags": {"author": "kim"},
            },
        ),
        (
            {"url": ["https://a.test/"], "w": [""]},
            {"url": "https://a.test/", "title": "", "referrer": ""},
        ),
    ],
)
def test_pirsch_hit_query_to_item(params: dict[str, list[str]], item: dict[str, Any]) -> None:
    assert hit_item(params) == item


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "url"),
        ({"url": ["/x"]}, "url"),
        ({"url": ["https://a.test/"], "w": ["big"]}, "w"),
        ({"url": ["https://a.test/"], "h": ["-5"]}, "h"),
    ],
)
def test_pirsch_hit_query_errors_name_the_parameter(
    params: dict[str, list[str]], field: str
) -> None:
    with pytest.raises(FieldError) as e:
        hit_item(params)
    assert e.value.field == field


def ctx(trusted: tuple[str, ...]) -> Any:
    return SimpleNamespace(config=SimpleNamespace(trusted_proxies=trusted))


@pytest.mark.parametrize(
    ("trusted", "peer", "headers", "want"),
    [
        ((), "81.2.69.1", {"x-forwarded-for": "1.2.3.4"}, "81.2.69.1"),  # untrusted peer
        (("127.0.0.1",), "127.0.0.1", {"x-forwarded-for": "9.9.9.9, 1.2.3.4"}, "1.2.3.4"),
        (
            ("10.0.0.0/8",),
            "10.1.1.1",
            {"x-forwarded-for": "192.168.1.5"},
            "10.1.1.1",
        ),  # private: ignored
        (
            ("10.0.0.0/8",),
            "10.1.1.1",
            {"cf-connecting-ip": "5.6.7.8", "x-forwarded-for": "1.2.3.4"},
            "5.6.7.8",
        ),
        (("10.0.0.0/8",), "10.1.1.1", {"forwarded": 'for="[2001:db8::1]:4711"'}, "2001:db8::1"),
        (("10.0.0.0/8",), "10.1.1.1", {"x-real-ip": "8.8.4.4"}, "8.8.4.4"),
    ],
)
def test_client_ip_for_rate_limits(
    trusted: tuple[str, ...], peer: str, headers: dict[str, str], want: str
) -> None:
    assert collect.client_ip(ctx(trusted), peer, headers) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1:5555", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]:80", "::1"),
        (None, "0.0.0.0"),
        ("garbage", "0.0.0.0"),
    ],
)
def test_peer_address(raw: str | None, want: str) -> None:
    assert collect.peer_address(raw) == want


class FakeMeta:
    def __init__(self, hostnames: list[str]) -> None:
        self.hostnames = hostnames

    def site_rules(self, site: Any) -> tuple[list[str], list[tuple[str, str]]]:
        return self.hostnames, []


@pytest.mark.parametrize(
    ("hostnames", "origin", "allowed"),
    [
        (["shop.test"], "https://shop.test", True),
        (["shop.test"], "http://www.shop.test:8080", True),
        (["shop.test", "shop.example"], "https://shop.example", True),
        (["shop.test"], "https://evil.test", False),
        (["shop.test"], "null", False),
        (["shop.test"], "", False),
        ([], "https://anything.test", True),  # the site accepts any hostname
    ],
)
def test_origin_allowed_for_a_site(hostnames: list[str], origin: str, allowed: bool) -> None:
    c = SimpleNamespace(meta=FakeMeta(hostnames))
    assert collect.origin_allowed_for(c, SimpleNamespace(id="s"), origin) is allowed  # type: ignore[arg-type]


def test_preflight_hosts_follow_the_meta_store(tmp_path: Path) -> None:
    """The hostnames a preflight is answered for: a site made or deleted counts from the next
    request on, however soon; Origins of no site rebuild nothing while the store is unchanged."""
    meta = MetaStore.open(tmp_path / "meta")
    try:
        scans = []
        all_sites = meta.all_sites

        def counted() -> list[Site]:
            scans.append(1)
            return all_sites()

        ctx: Any = SimpleNamespace(meta=SimpleNamespace(
            stamp=meta.stamp, all_sites=counted, site_rules=meta.site_rules
        ))  # fmt: skip
        known = collect.KnownHosts()

        def new_site(hostname: str) -> Site:
            return meta.create_site(Site(id="", hostname=hostname, subdomain=hostname[:4]))

        first = new_site("first.test")
        assert known.allows(ctx, "https://first.test")
        second = new_site("www.second.test")  # right after the rebuild
        assert known.allows(ctx, "https://second.test")
        assert not known.allows(ctx, "https://third.test")
        built = len(scans)
        for n in range(50):
            assert not known.allows(ctx, f"https://random-{n}.test")
        assert len(scans) == built, "Origins of no site rebuild nothing"
        meta.delete_site(first.id)
        assert not known.allows(ctx, "https://first.test")
        assert known.allows(ctx, "https://second.test") and second.id
    finally:
        meta.close()

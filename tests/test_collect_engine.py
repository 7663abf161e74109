"""The engine's browser parsers (rust_core/src/browser.rs) against the Python reference
(`collect.parse_collect`, `browser.hit_item`) on generated requests, through `Engine.browser`
on a real engine: the same refusals naming the same fields, the same acceptances; and the
engine's site directory (a miss asks for the site, a new meta stamp forgets it)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import pytest

from trail.api.browser import hit_item
from trail.core import Engine
from trail.datalists import load_bot_lists
from trail.errors import FieldError
from trail.services.collect import parse_collect, parse_json_object

SITE = "00000000-0000-4000-8000-000000000001"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
HEADERS = [("User-Agent", CHROME), ("Accept-Language", "de-DE")]
ORIGIN = "https://shop.test"
STAMP = 7


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    # No UA rules (they take seconds to load); bot lists as shipped. No rate limit.
    e = Engine(tmp_path, 0, {"seal_interval_ms": 50}, {}, load_bot_lists())
    e.put_browser_site("id", SITE, (SITE, "shop.test", False, ["shop.test"]), STAMP)
    e.put_browser_site("code", "abc", (SITE, "shop.test", False, ["shop.test"]), STAMP)
    yield e
    e.close()


POOLS: dict[str, list[Any]] = {
    "website_id": [SITE, SITE.upper(), "nope", 42, "", " ", None, "x" * 65],
    "event_type": ["page_view", "close_tab", "scroll_50", "custom", "outbound_link", "click", 1],
    "url": [
        "https://shop.test/a?q=1",
        "http://www.shop.test/b#top",
        "https://shop.test",
        "/relative",
        "javascript:alert(1)",
        "https://[::1/",
        "https://" + "a" * 254 + "/",
        "ftp://shop.test/",
        None,
        5,
    ],
    "path": ["/a", "/", "blog", "", None],
    "referrer": ["https://www.google.com/", "", "newsletter", 5, None, "r" * 9000],
    "title": ["Home", " Spaced ", "t" * 600, 3, None],
    "screen_width": [1920, 1280.7, 0, -1, 100001, "wide", True, None],
    "screen_height": [1080, None, 100000, -0.5],
    "utm_source": ["tw", "", None, ["x"], "a b&c"],
    "utm_campaign": ["launch", None],
    "properties": [None, {}, {"name": "signup", "plan": "pro", "deep": {"x": 1}}, {"name": 7}, [1]],
}


def generated_bodies(n: int) -> Iterator[bytes]:
    rng = random.Random(14)
    for _ in range(n):
        # Mostly the first (valid) value of each pool, so that every outcome occurs often.
        doc = {
            k: v[0] if rng.random() < 0.85 else rng.choice(v)
            for k, v in POOLS.items()
            if rng.random() < 0.97
        }
        yield json.dumps(
            {k: v for k, v in doc.items() if v is not None or rng.random() < 0.3}
        ).encode()
    yield from (b"", b"  ", b"[]", b"{", b"\xff\xfe{}", b"x" * 17000)


def reference(raw: bytes) -> tuple[str, str] | None:
    """(field, message) the Python rules refuse `raw` with, or None when they accept it."""
    try:
        parse_collect(parse_json_object(raw))
    except FieldError as e:
        return e.field, e.problem
    return None


def test_collect_refusals_match_the_reference(engine: Engine) -> None:
    outcomes: dict[str, int] = {}
    for raw in generated_bodies(400):
        got = engine.browser("collect", raw, [], "81.2.69.1", HEADERS, ORIGIN, STAMP)
        outcome, cors, field, message, _ = got
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        want = reference(raw)
        if want is not None:
            assert (outcome, cors, field) == ("invalid", "any_site", want[0]), raw
            if not message.startswith("malformed JSON"):  # serde's and orjson's wording differ
                assert message == want[1], raw
        elif json.loads(raw)["website_id"].lower() != SITE:
            assert (outcome, cors) == ("silent", "denied"), raw
        else:
            # Python accepts the fields; validate.rs and the pipeline may still refuse or drop.
            assert outcome in ("accepted", "silent") or (outcome, field) == ("invalid", "url"), raw
            assert cors == "allowed"
    assert min(outcomes.get(o, 0) for o in ("accepted", "invalid", "silent")) >= 5, outcomes


def test_pirsch_queries_match_the_reference(engine: Engine) -> None:
    rng = random.Random(15)
    values = {
        "url": ["https://shop.test/docs?x=1", "/x", "", "https://shop.test/a b", "mailto:x"],
        "t": ["Docs", "", "t" * 600],
        "ref": ["https://www.google.com/", ""],
        "w": ["390", "844.0", "", "big", "-5", "100001", "1e3", "nan"],
        "h": ["900", ""],
        "tag_author": ["kim", ""],
    }
    for _ in range(300):
        query = [("code", ["abc"])] + [
            (k, [quote_plus(rng.choice(v))]) for k, v in values.items() if rng.random() < 0.8
        ]
        got = engine.browser("pirsch_hit", b"", query, "81.2.69.2", HEADERS, ORIGIN, STAMP)
        # What trail/api/http.py `query_params` makes of the query Robyn hands over.
        params = {unquote_plus(k): [unquote_plus(v) for v in vs] for k, vs in query}
        try:
            hit_item(params)
        except FieldError as e:
            assert got[:3] == ("invalid", "allowed", e.field), query
            continue
        assert got[0] in ("accepted", "silent") or got[:3] == ("invalid", "allowed", "url"), query


def test_the_directory_asks_for_sites_it_does_not_know(engine: Engine) -> None:
    page = json.dumps(
        {"website_id": SITE, "event_type": "page_view", "url": "https://shop.test/", "path": "/"}
    ).encode()
    assert engine.browser("collect", page, [], "81.2.69.3", HEADERS, ORIGIN, STAMP)[0] == "accepted"
    # Another meta stamp: everything known is forgotten, the site is asked for again.
    assert engine.browser("collect", page, [], "81.2.69.3", HEADERS, ORIGIN, STAMP + 1)[:3] == (
        "lookup_id",
        "denied",
        SITE,
    )
    disabled = (SITE, "shop.test", True, ["shop.test"])
    engine.put_browser_site("id", SITE, disabled, STAMP + 1)
    got = engine.browser("collect", page, [], "81.2.69.3", HEADERS, ORIGIN, STAMP + 1)
    assert got[:2] == ("silent", "allowed")
    query = [("code", ["nosuchcode"]), ("url", ["https://shop.test/"])]
    got = engine.browser("pirsch_hit", b"", query, "81.2.69.3", HEADERS, ORIGIN, STAMP + 1)
    assert got[:3] == ("lookup_code", "denied", "nosuchcode")
    engine.put_browser_site("code", "nosuchcode", None, STAMP + 1)
    got = engine.browser("pirsch_hit", b"", query, "81.2.69.3", HEADERS, ORIGIN, STAMP + 1)
    assert got[:2] == ("not_found", "denied")


def test_the_rate_limit_comes_first(tmp_path: Path) -> None:
    options = {"rate_limit_collect": (2, 10_000)}
    e = Engine(tmp_path, 0, options, {}, load_bot_lists())
    try:
        answers = [
            e.browser("collect", b"[]", [], "81.2.69.4", HEADERS, ORIGIN, 1) for _ in range(3)
        ]
        assert [a[0] for a in answers] == ["invalid", "invalid", "limited"]
        assert answers[2][1] == "any_site" and 1 <= answers[2][4] <= 10
        # Another client is not affected.
        assert e.browser("collect", b"[]", [], "81.2.69.5", HEADERS, ORIGIN, 1)[0] == "invalid"
    finally:
        e.close()

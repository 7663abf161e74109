"""The engine takes a request body as `bytes` or as the `str` Robyn decoded it into (read in place,
without an encode in the handler), and both give the same answers: accepted, refused naming the
same field, and a str without a UTF-8 form refused as the invalid body it is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from trail.core import Engine, InvalidInput
from trail.datalists import load_bot_lists

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
SITE = "00000000-0000-4000-8000-000000000001"
HEADERS = [("user-agent", CHROME), ("accept-language", "de-DE")]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    # No UA rules: parsing is not what these tests are about, and the full rules take seconds.
    e = Engine(tmp_path, 0, {}, {}, load_bot_lists())
    yield e
    e.close()


def hit(n: int, **extra: object) -> dict[str, object]:
    return {"url": f"https://example.com/{n}", "ip": f"81.2.69.{n}", "user_agent": CHROME, **extra}


def refusal(engine: Engine, body: bytes | str) -> tuple[str, ...]:
    with pytest.raises(InvalidInput) as e:
        engine.ingest_api("site-a", "example.com", "hit", body)
    return e.value.args


def test_a_str_body_is_ingested_like_its_bytes(engine: Engine) -> None:
    for n, body in enumerate(
        [
            orjson.dumps(hit(1)).decode(),  # ASCII: CPython's str is its own UTF-8
            orjson.dumps(hit(2, title="Grüße aus 東京 🚀")).decode(),
            orjson.dumps(hit(3, title="Grüße aus 東京 🚀")),
        ]
    ):
        assert engine.ingest_api("site-a", "example.com", "hit", body)["accepted"] == 1, n
    batch = orjson.dumps([hit(4), hit(5, title="ñ")]).decode()
    assert engine.ingest_api("site-a", "example.com", "hit", batch, True)["accepted"] == 2


def test_a_str_body_is_refused_like_its_bytes(engine: Engine) -> None:
    for body in [orjson.dumps(hit(6, screen_width="wide")), b'{"url": ', b"[]", b""]:
        assert refusal(engine, body.decode()) == refusal(engine, body)
    # A lone surrogate has no UTF-8 form: encoded with surrogatepass, as handlers did before,
    # it is the invalid JSON its bytes are, never an encoding error.
    text = '{"url": "https://example.com/", "ip": "81.2.69.7", "title": "\udcff"}'
    assert refusal(engine, text) == refusal(engine, text.encode("utf-8", "surrogatepass"))
    assert refusal(engine, text)[0] == "body"
    with pytest.raises(TypeError):
        engine.ingest_api("site-a", "example.com", "hit", 42)


def test_browser_bodies_as_str_or_bytes(engine: Engine) -> None:
    stamp = 7
    engine.put_browser_site("id", SITE, (SITE, "example.com", False, ["example.com"]), stamp)
    view = {
        "website_id": SITE,
        "event_type": "page_view",
        "url": "https://example.com/ü",
        "path": "/ü",
    }
    origin = "https://example.com"
    for n, body in enumerate([orjson.dumps(view), orjson.dumps(view).decode()]):
        got = engine.browser("collect", body, [], f"81.2.69.{20 + n}", HEADERS, origin, stamp)
        assert got[:2] == ("accepted", "allowed"), got
    bad = orjson.dumps({**view, "screen_width": "wide"})
    as_bytes = engine.browser("collect", bad, [], "81.2.69.22", HEADERS, origin, stamp)
    as_str = engine.browser("collect", bad.decode(), [], "81.2.69.22", HEADERS, origin, stamp)
    assert as_bytes == as_str
    assert as_str[0] == "invalid" and as_str[2] == "screen_width"

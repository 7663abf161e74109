"""The engine's Python surface for what the background thread and validation know: a failing seal
shows in `Engine.background_status()` (for /health), and `LIMITS` carries validate.rs's numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from trail.core import LIMITS, Engine, InvalidInput
from trail.datalists import load_bot_lists
from trail.services import collect

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    options = {"seal_interval_ms": 20, "fsync_interval_ms": 20}
    # No UA rules: parsing is not what these tests are about, and the full rules take seconds.
    e = Engine(tmp_path, 0, options, {}, load_bot_lists())
    yield e
    e.close()


def wait_until(check: Callable[[], Any], timeout: float = 5) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def hit() -> bytes:
    return orjson.dumps({"url": "https://example.com/", "ip": "81.2.69.1", "user_agent": CHROME})


def test_a_failing_background_seal_shows_in_the_status(engine: Engine, tmp_path: Path) -> None:
    assert engine.background_status() == {
        "ok": True,
        "error": None,
        "last_error": None,
        "last_error_at_ms": None,
        "errors": 0,
    }
    # A file where the page_views directory should be: every background seal fails.
    blocker = tmp_path / "segments" / "page_views"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"")
    assert engine.ingest_api("site-a", "example.com", "hit", hit())["accepted"] == 1
    assert wait_until(lambda: not engine.background_status()["ok"])
    status = engine.background_status()
    assert status["error"].startswith("segment seal failed: ")
    assert status["last_error"] == status["error"]
    assert status["last_error_at_ms"] > 0 and status["errors"] >= 1

    blocker.unlink()
    assert wait_until(lambda: engine.background_status()["ok"])
    status = engine.background_status()
    assert status["error"] is None
    assert status["last_error"].startswith("segment seal failed: ")  # kept for /health
    assert list((tmp_path / "segments" / "page_views").rglob("*.arrow"))


def test_limits_are_the_engines() -> None:
    assert collect.MAX_URL == LIMITS["url"]
    assert collect.MAX_TITLE == LIMITS["title"]
    assert collect.MAX_SCREEN == LIMITS["screen"]
    assert set(LIMITS) >= {"url", "hostname", "title", "screen", "event_duration"}


def test_the_engine_refuses_past_each_limit(engine: Engine) -> None:
    base = {"url": "https://example.com/", "ip": "81.2.69.1", "user_agent": CHROME}
    cases = [
        ("hit", {"url": "https://example.com/" + "x" * LIMITS["url"]}, "url"),
        ("hit", {"screen_width": LIMITS["screen"] + 1}, "screen_width"),
        (
            "event",
            {"event_name": "e", "event_duration": LIMITS["event_duration"] + 1},
            "event_duration",
        ),
        ("hit", {"url": "https://" + ".".join(["a" * 60] * 5) + ".com/"}, "url"),
    ]
    for kind, extra, field in cases:
        with pytest.raises(InvalidInput) as e:
            engine.ingest_api("site-a", "example.com", kind, orjson.dumps({**base, **extra}))
        assert e.value.args[0] == field
    # At each limit, accepted (a title past its limit is cut, never refused).
    at_limit = {**base, "screen_width": LIMITS["screen"], "title": "t" * (LIMITS["title"] * 3)}
    assert engine.ingest_api("site-a", "example.com", "hit", orjson.dumps(at_limit))["accepted"]

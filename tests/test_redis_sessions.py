"""`session_store = "redis"`: two trail nodes with their own data dirs share one real redis-server.

A visitor whose hits alternate between the nodes must be one session, with the numbers a single
node gives for the same hits; the salt and the rate limits are shared; a stopped Redis answers
503 and /health says why.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.redis_server import RedisServer
from tests.server import TrailServer, free_port, request
from trail import config
from trail.stats import pages, reports, sessions
from trail.stats.filters import parse_filter

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
DAY = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
# One visitor: four pages over two minutes, alternating between the nodes (A, B, A, B).
VISIT = [("/", "10:00:00"), ("/pricing", "10:00:30"), ("/docs", "10:01:10"), ("/about", "10:02:00")]
NODE_ENV = {"TRAIL_SEAL_INTERVAL_MS": "200", "TRAIL_TRUSTED_PROXIES": "127.0.0.1"}


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    if server.proc and server.proc.poll() is None:
        server.stop()


def redis_env(redis: RedisServer, **extra: str) -> dict[str, str]:
    return {**NODE_ENV, "TRAIL_SESSION_STORE": "redis", "TRAIL_REDIS_URL": redis.url, **extra}


def two_nodes(tmp_path: Path, env: dict[str, str]) -> tuple[TrailServer, TrailServer, str, str]:
    """Nodes A and B with the same sites and keys (B starts from a copy of A's meta store, as
    a shared meta store would give them) and their own data dirs: (a, b, site id, key)."""
    a = TrailServer(tmp_path / "a", workers=1, env=env).start()
    site, key = a.create_site("shop.test")
    admin = a.admin_key
    a.stop()
    shutil.copytree(a.data_dir, tmp_path / "b")
    a = TrailServer(tmp_path / "a", workers=1, env=env).start()
    b = TrailServer(tmp_path / "b", workers=1, env=env).start()
    a.admin_key = b.admin_key = admin
    return a, b, site, key


def visit_hit(path: str, at: str) -> dict[str, Any]:
    return {"url": f"https://shop.test{path}", "ip": "81.2.69.42", "user_agent": CHROME,
            "time": f"{DAY}T{at}Z"}  # fmt: skip


def send(node: TrailServer, key: str, path: str, at: str) -> None:
    r = node.call("POST", "/api/v1/hit/batch", [visit_hit(path, at)], key=key)
    assert r.status == 200, r.body


def union_dir(dirs: list[Path], into: Path) -> Path:
    """One data dir holding every node's sealed rows (the first node's meta store), for the
    report code to read as it reads one node's: segment names get a worker number per node."""
    shutil.copytree(dirs[0], into)
    for n, d in enumerate(dirs[1:], start=1):
        for seg in (d / "segments").rglob("*.arrow"):
            target = into / seg.relative_to(d).parent / f"w{50 * n}{seg.name[1:]}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(seg, target)
    return into


def report(data_dir: Path, site: str) -> dict[str, Any]:
    """What trail.stats makes of a data dir for DAY, without ids (they differ between stores)."""
    f = parse_filter({"id": [site], "from": [DAY], "to": [DAY]})
    listed = sessions.session_list(data_dir, f)
    ids = ("visitor_id", "session_id")
    return {
        "total": reports.total(data_dir, f),
        "sessions": [{k: v for k, v in s.items() if k not in ids} for s in listed],
        "entry": pages.entry_pages(data_dir, f),
        "exit": pages.exit_pages(data_dir, f),
        "pages": pages.page(data_dir, f),
    }


def page_view_visitors(data_dir: Path) -> set[int]:
    files = list((data_dir / "segments" / "page_views").rglob("*.arrow"))
    assert files, f"no page views sealed in {data_dir}"
    return set(pl.concat([pl.read_ipc(p) for p in files])["visitor_id"].to_list())


def test_a_visitor_alternating_between_nodes_is_one_session(
    tmp_path: Path, redis: RedisServer
) -> None:
    a, b, site, key = two_nodes(tmp_path, redis_env(redis))
    for i, (path, at) in enumerate(VISIT):
        send((a, b)[i % 2], key, path, at)
    # The lock keys are gone with each commit; the session key expires like the LMDB sweep.
    assert redis.keys("trail:l:*") == []
    (state,) = redis.keys("trail:s:*")
    assert 7_100_000 < redis.command("PTTL", state) <= 7_200_000
    # One salt for the day, created once: both nodes gave the visitor the same id.
    assert redis.keys("trail:salt:*") == [f"trail:salt:{DAY.replace('-', '')}".encode()]
    a.stop()
    b.stop()
    assert page_view_visitors(a.data_dir) == page_view_visitors(b.data_dir)
    assert len(page_view_visitors(a.data_dir)) == 1

    one = TrailServer(tmp_path / "one", workers=1, env=NODE_ENV).start()
    one_site, one_key = one.create_site("shop.test")
    for path, at in VISIT:
        send(one, one_key, path, at)
    one.stop()

    union = report(union_dir([a.data_dir, b.data_dir], tmp_path / "union"), site)
    single = report(one.data_dir, one_site)
    assert union == single
    total = union["total"]
    assert (total["visitors"], total["sessions"], total["views"], total["bounces"]) == (1, 1, 4, 0)
    (s,) = union["sessions"]
    assert (s["page_views"], s["duration_seconds"], s["is_bounce"]) == (4, 120, False)
    assert (s["entry_path"], s["exit_path"]) == ("/", "/about")
    assert [(p["path"], p["exits"]) for p in union["exit"]] == [("/about", 1)]


def test_rate_limits_are_shared(tmp_path: Path, redis: RedisServer) -> None:
    env = redis_env(redis, TRAIL_RATE_LIMIT_COLLECT="4/86400")
    a, b, site, _ = two_nodes(tmp_path, env)
    page = {"website_id": site, "event_type": "page_view", "url": "https://shop.test/",
            "path": "/"}  # fmt: skip
    headers = {"Content-Type": "text/plain;charset=UTF-8", "User-Agent": CHROME,
               "X-Forwarded-For": "81.2.69.77", "Origin": "https://shop.test"}  # fmt: skip
    answers = [
        request("POST", node.url + "/api/v1/collect", json.dumps(page).encode(), headers).status
        for node in (a, b, a, b, a, b)
    ]
    # 4 per IP across both nodes, not 4 per node.
    assert answers == [202, 202, 202, 202, 429, 429]
    a.stop()
    b.stop()


def test_redis_stopped_answers_503_and_health_says_why(tmp_path: Path, redis: RedisServer) -> None:
    a, b, _site, key = two_nodes(tmp_path, redis_env(redis))
    b.stop()
    health = a.call("GET", "/health").json()
    assert health["session_store"] == {"backend": "redis", "ok": True, "error": None}
    redis.stop()
    r = a.call("POST", "/api/v1/hit/batch", [visit_hit("/", "11:00:00")], key=key)
    assert r.status == 503, r.body
    assert r.json()["error"] == ["session store unavailable, retry later"]
    assert r.headers.get("retry-after") == "1"
    down = a.call("GET", "/health")
    assert down.status == 503
    status = down.json()["session_store"]
    assert (status["backend"], status["ok"]) == ("redis", False)
    assert "redis session store" in status["error"]
    # Back on the same port: the node reconnects, nothing to restart.
    restarted = RedisServer(tmp_path / "redis2")
    restarted.port = redis.port
    restarted.start()
    try:
        assert a.call("GET", "/health").status == 200
        r = a.call("POST", "/api/v1/hit/batch", [visit_hit("/", "11:00:05")], key=key)
        assert r.status == 200, r.body
        assert len(restarted.keys("trail:s:*")) == 1
    finally:
        a.stop()
        restarted.stop()


def test_lmdb_is_the_default_and_reported(tmp_path: Path) -> None:
    node = TrailServer(tmp_path / "data", workers=1).start()
    try:
        health = node.call("GET", "/health").json()
        assert health["session_store"] == {"backend": "lmdb", "ok": True, "error": None}
    finally:
        node.stop()


@pytest.mark.parametrize(
    ("env", "setting", "message"),
    [
        ({"TRAIL_SESSION_STORE": "memcached"}, "session_store", "is not one of lmdb, redis"),
        ({"TRAIL_SESSION_STORE": "redis"}, "redis_url", "is required"),
        (
            {"TRAIL_SESSION_STORE": "redis", "TRAIL_REDIS_URL": "http://127.0.0.1:6379"},
            "redis_url",
            "expected redis://",
        ),
        (
            {"TRAIL_SESSION_STORE": "redis", "TRAIL_REDIS_URL": "redis://127.0.0.1:{closed}/0"},
            "redis_url",
            "the Redis server does not answer",
        ),
    ],
)
def test_bad_settings_are_refused_at_start(
    tmp_path: Path, env: dict[str, str], setting: str, message: str
) -> None:
    env = {k: v.replace("{closed}", str(free_port())) for k, v in env.items()}
    with pytest.raises(config.ConfigError) as e:
        config.load(env={"TRAIL_DATA_DIR": str(tmp_path), **env})
    assert e.value.setting == setting
    assert message in e.value.message
    assert "127.0.0.1" not in e.value.message  # a URL may hold a password: never echoed


def test_settings_from_toml_and_flags(tmp_path: Path, redis: RedisServer) -> None:
    toml = tmp_path / "trail.toml"
    toml.write_text(f'session_store = "redis"\nredis_url = "{redis.url}"\n')
    loaded = config.load(str(toml), env={}, flags={"data_dir": str(tmp_path / "d")})
    assert (loaded.session_store, loaded.redis_url) == ("redis", redis.url)
    flagged = config.load(env={}, flags={"data_dir": str(tmp_path / "d"), "session_store": "LMDB"})
    assert flagged.session_store == "lmdb"

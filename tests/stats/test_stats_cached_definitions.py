"""Goals and funnel answers over closed days come from the result cache, keyed by the goal and
funnel definitions as stored: a changed definition is answered afresh at once (a real `trail
serve` on loopback, one worker, so one cache; real LMDB and segment files)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from segment_rows import SiteData

from tests.server import TrailServer

DAY = "2024-03-10"
TABLES = ("sessions", "page_views", "events", "requests")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    data = tmp_path_factory.mktemp("cached-definitions") / "data"
    data.mkdir()
    # Compaction runs once at start and not again: it must not rewrite the day under the test.
    s = TrailServer(data, workers=1, env={"TRAIL_COMPACTION_INTERVAL_S": "1000000"}).start()
    yield s
    s.stop()


def backdate(data_dir: Path, site_id: str, mtime_ns: int) -> None:
    """Give the site's directories one old mtime: the cache's fingerprint of the files it read
    (trail.stats.cache) then stays the same whatever files are added."""
    for table in TABLES:
        site_dir = data_dir / "segments" / table / f"site={site_id}"
        for d in [site_dir, *site_dir.glob("day=*")] if site_dir.exists() else []:
            os.utime(d, ns=(mtime_ns, mtime_ns))


def save(server: TrailServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = server.call("POST", path, body, key=server.admin_key)
    assert r.status == 200, r.body
    result: dict[str, Any] = r.json()
    return result


def goal_visitors(server: TrailServer, site_id: str) -> list[tuple[str, int]]:
    answer = server.stats("goals", site_id, **{"from": DAY, "to": DAY})
    return [(g["page_goal"]["path_pattern"], g["stats"]["visitors"]) for g in answer]


def funnel_visitors(server: TrailServer, site_id: str, funnel_id: str) -> list[int]:
    answer = server.stats("funnel", site_id, funnel_id=funnel_id, **{"from": DAY, "to": DAY})
    return [step["visitors"] for step in answer["data"]]


def test_a_changed_goal_or_funnel_step_is_answered_afresh(server: TrailServer) -> None:
    site_id, _ = server.create_site("cached-definitions.example")
    rows = SiteData(server.data_dir, site_id)
    rows.visit(1, 1, [(f"{DAY} 10:00:00", "/"), (f"{DAY} 10:00:09", "/a")])
    rows.visit(2, 1, [(f"{DAY} 11:00:00", "/")])
    rows.write()
    backdate(server.data_dir, site_id, (int(time.time()) - 600) * 10**9)
    goal = save(server, "/api/v1/goal",
                {"domain_id": site_id, "name": "A", "path_pattern": "/a"})  # fmt: skip
    steps = [{"name": "Home", "filter": {"path": ["/"]}}, {"name": "A", "filter": {"path": ["/a"]}}]
    funnel = save(server, "/api/v1/funnel",
                  {"domain_id": site_id, "name": "Home to A", "steps": steps})  # fmt: skip
    for _ in range(2):  # computed, then the cached answer
        assert goal_visitors(server, site_id) == [("/a", 1)]
        assert funnel_visitors(server, site_id, funnel["id"]) == [2, 1]

    steps[1] = {"name": "B", "filter": {"path": ["/b"]}}
    save(server, "/api/v1/funnel",
         {"id": funnel["id"], "domain_id": site_id, "name": "Home to B", "steps": steps})  # fmt: skip
    assert funnel_visitors(server, site_id, funnel["id"]) == [2, 0]
    r = server.call("PUT", "/api/v1/goal", {"id": goal["id"], "domain_id": site_id, "name": "A",
                                            "path_pattern": "/*"}, key=server.admin_key)  # fmt: skip
    assert r.status == 200, r.body
    assert goal_visitors(server, site_id) == [("/*", 2)]
    # A second goal changes the list the answer is keyed by, too.
    save(server, "/api/v1/goal", {"domain_id": site_id, "name": "B", "path_pattern": "/"})
    assert goal_visitors(server, site_id) == [("/*", 2), ("/", 2)]


def test_goals_and_funnel_are_served_from_the_cache(tmp_path: Path) -> None:
    """In-process, to count the cache's hits: the same definitions hit, a changed one misses."""
    from trail.services import statistics
    from trail.stats import cache
    from trail.storage.goals import goal_store
    from trail.storage.meta import MetaStore

    site_id = "3f1c9a0e-1111-4222-8333-444455556666"
    rows = SiteData(tmp_path / "data", site_id)
    rows.visit(1, 1, [(f"{DAY} 10:00:00", "/"), (f"{DAY} 10:00:09", "/a")])
    rows.visit(2, 1, [(f"{DAY} 11:00:00", "/")])
    rows.write()
    backdate(tmp_path / "data", site_id, (int(time.time()) - 600) * 10**9)
    meta = MetaStore.open(tmp_path / "meta")
    try:
        store = goal_store(meta)
        store.save_goal({"domain_id": site_id, "name": "A", "path_pattern": "/a",
                         "pattern": "(?i)^/a$"})  # fmt: skip
        steps = [{"name": "Home", "filter": {"path": ["/"]}},
                 {"name": "A", "filter": {"path": ["/a"]}}]  # fmt: skip
        funnel = store.save_funnel({"domain_id": site_id, "name": "F", "steps": steps})
        ctx = SimpleNamespace(data_dir=tmp_path / "data", meta=meta)
        site = SimpleNamespace(id=site_id, timezone="UTC")
        span = {"id": [site_id], "from": [DAY], "to": [DAY]}
        ask = {"goals": span, "funnel": {**span, "funnel_id": [funnel["id"]]}}
        cache.clear()
        first = {name: statistics.run(ctx, name, params, site) for name, params in ask.items()}
        hits, misses = cache.stats["hits"], cache.stats["misses"]
        again = {name: statistics.run(ctx, name, params, site) for name, params in ask.items()}
        assert again == first and first["funnel"]["data"][1]["visitors"] == 1
        assert (cache.stats["hits"], cache.stats["misses"]) == (hits + 2, misses)

        store.save_funnel({"id": funnel["id"], "domain_id": site_id, "name": "F",
                           "steps": [steps[0], {"name": "B", "filter": {"path": ["/b"]}}]})  # fmt: skip
        changed = statistics.run(ctx, "funnel", ask["funnel"], site)
        assert changed["data"][1]["visitors"] == 0 and cache.stats["misses"] == misses + 1
    finally:
        meta.close()

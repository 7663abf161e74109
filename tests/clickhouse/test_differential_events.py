"""Event pages, tags, goals, funnels and options answer from ClickHouse as from the embedded
engine: the reports that need a parameter (an event, a tag key, a funnel) or definitions
created through the API, under random filters over the oracle's random traffic.

As tests/clickhouse/test_differential.py: an embedded server ingests the traffic and answers;
the rows are shipped to chDB; a server on the same data directory with storage = "clickhouse"
answers the same queries. Before it starts, the segment files are moved away, so an answer
that came from the embedded engine instead of ClickHouse would be empty and differ.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.clickhouse.drawing import busy_traffic, drawn, query_params, with_amounts
from tests.clickhouse.test_differential import _ask, _describe, _sealed
from tests.clickhouse.traffic import FAST_SEAL, ship_all
from tests.oracle.harness import BATCH, batches, renamed
from tests.oracle.traffic import EVENT_NAMES, TAGS
from tests.server import TrailServer
from trail.clickhouse import reports_events

TRAFFICS = int(os.environ.get("TRAIL_CH_DIFF_TRAFFICS", "2"))
QUERIES = int(os.environ.get("TRAIL_CH_DIFF_QUERIES", "6"))  # per site

GOALS: list[dict[str, Any]] = [
    {"name": "Blog", "path_pattern": "/blog*"},
    {"name": "Install", "path_pattern": "/docs/install"},
    {"name": "Signup", "event_name": "signup"},
    {"name": "Pro download", "event_name": "download", "event_meta_key": "plan",
     "event_meta_value": "pro"},
    {"name": "Signup at home", "path_pattern": "/", "event_name": "signup"},
    {"name": "Download amount", "event_name": "download", "custom_metric_key": "amount",
     "custom_metric_type": "float"},
    {"name": "Blog amount", "path_pattern": "/blog*", "event_name": "play video",
     "custom_metric_key": "amount", "custom_metric_type": "integer"},
]  # fmt: skip
FUNNELS: list[dict[str, Any]] = [
    {"name": "Home to blog", "steps": [
        {"name": "Home", "filter": {"path": ["/"]}},
        {"name": "Blog", "filter": {"path_pattern": ["/blog*"]}},
    ]},
    {"name": "Pricing to signup", "steps": [
        {"name": "Entry", "filter": {"entry_path": ["/", "/pricing"]}},
        {"name": "Pricing", "filter": {"path": ["/pricing", "/blog"]}},
        {"name": "Signup", "filter": {"event_name": ["signup"]}},
    ]},
    {"name": "Readers", "steps": [
        {"name": "Alice", "filter": {"tags": {"author": ["alice", "bob"]}}},
        {"name": "Download", "filter": {"event_name": ["download"], "event_meta": {"plan": ["pro"]}}},
        {"name": "Exit", "filter": {"exit_path": ["/docs", "/blog"]}},
    ]},
    {"name": "Mixed", "steps": [
        {"name": "Desktop", "filter": {"platform": ["desktop"]}},
        {"name": "Tagged", "filter": {"tag": "ab", "language": ["en", "de"]}},
        {"name": "Docs", "filter": {"path_regex": ["^/docs", "post$"]}},
        {"name": "No signup", "filter": {"event_name": ["!signup"]}},
    ]},
]  # fmt: skip

Query = tuple[str, str, dict[str, list[str]]]  # site id, report, parameters


def _queries(site: str, p: dict[str, list[str]], at: int, funnels: list[str]) -> list[Query]:
    """Every report of reports_events with `p`, and those that need a parameter with one."""
    out: list[Query] = [(site, name, p) for name in reports_events.SQL_REPORTS]
    event = p.get("event") or [EVENT_NAMES[at % len(EVENT_NAMES)]]
    tag = p.get("tag") or [sorted(TAGS)[at % len(TAGS)]]
    out.append((site, "event/page", {**p, "event": event}))
    out.append((site, "tag/details", {**p, "tag": tag}))
    out.append((site, "options/tag/value", {**p, "tag": tag}))
    out += [(site, "funnel", {**p, "funnel_id": [f]}) for f in funnels]
    return out


def _define(s: TrailServer, site: str) -> list[str]:
    """The goals and funnels of `site`, created through the API; the funnels' ids."""
    for goal in GOALS:
        r = s.call("POST", "/api/v1/goal", {**goal, "domain_id": site}, key=s.admin_key)
        assert r.status == 200, r.body
    ids = []
    for funnel in FUNNELS:
        r = s.call("POST", "/api/v1/funnel", {**funnel, "domain_id": site}, key=s.admin_key)
        assert r.status == 200, r.body
        ids.append(r.json()["id"])
    return ids


def _answers(s: TrailServer, queries: list[Query]) -> list[tuple[int, Any]]:
    return [_ask(s, name, {"id": [site], **p}) for site, name, p in queries]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Random traffic and definitions on an embedded server, its queries and their answers."""
    data = tmp_path_factory.mktemp("differential-events") / "data"
    s = TrailServer(data, workers=2, env=FAST_SEAL).start()
    queries: list[Query] = []
    try:
        for i in range(TRAFFICS):
            t = with_amounts(renamed(busy_traffic(2500 + i), f"ev{i}"), 2500 + i)
            ids, keys, funnels = {}, {}, {}
            for site in t.sites:
                ids[site.key], keys[site.key] = s.create_site(site.hostname, site.timezone)
                funnels[site.key] = _define(s, ids[site.key])
            for kind, site_key, bodies in batches(t.hits):
                r = s.call("POST", BATCH[kind], bodies, key=keys[site_key])
                assert r.status == 200, r.body
            for j, site in enumerate(t.sites):
                for k, p in enumerate(drawn(query_params(t, site), 20_000 + 100 * i + j, QUERIES)):
                    queries += _queries(ids[site.key], p, k, funnels[site.key])
        _sealed(data)
        time.sleep(1)  # a last sealing round after the WAL files went
        answers = _answers(s, queries)
    finally:
        s.stop()
    return {"data": data, "queries": queries, "answers": answers, "key": s.admin_key}


@pytest.mark.timeout(3600)
def test_event_tag_goal_funnel_and_option_reports_answer_like_the_embedded_engine(
    loaded: dict[str, Any], tmp_path: Path
) -> None:
    data, url = loaded["data"], f"chdb://{tmp_path / 'ch'}"
    ship_all(data, url)
    # the embedded engine now has no rows: only ClickHouse can answer as it did
    (data / "segments").rename(data / "segments.shipped")
    env = {**FAST_SEAL, "TRAIL_STORAGE": "clickhouse", "TRAIL_CLICKHOUSE_URL": url}
    s = TrailServer(data, workers=1, env=env).start(timeout=120)
    s.admin_key = loaded["key"]
    try:
        got = _answers(s, loaded["queries"])
    finally:
        s.stop()
    queries, want = loaded["queries"], loaded["answers"]
    wrong = [
        (name, p, want[i], got[i]) for i, (_, name, p) in enumerate(queries) if got[i] != want[i]
    ]
    assert not wrong, _describe(wrong)
    # the queries do reach rows: goals, funnels, event pages, tags and options with answers
    found = {name for (_, name, _), (status, a) in zip(queries, got, strict=True)
             if status == 200 and _non_empty(name, a)}  # fmt: skip
    assert {"goals", "funnel", "event/page", "tags", "tag/details", "options/page",
            "options/referrer/name", "options/tag/value", "options/event"} <= found  # fmt: skip


def _non_empty(name: str, answer: Any) -> bool:
    if name == "goals":
        return any(g["stats"]["visitors"] for g in answer) and any(
            g["stats"]["custom_metric_total"] for g in answer
        )
    if name == "funnel":
        return len(answer["data"]) >= 2 and answer["data"][1]["visitors"] > 0
    return bool(answer)

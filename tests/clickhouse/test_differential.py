"""Both backends answer the same: random traffic through a real server, random filters (time on
page and custom metrics included), every report with a ClickHouse implementation, JSON answers
compared exactly.

One server (storage = "embedded") ingests the oracle's random traffic (tests/oracle/traffic.py)
and answers every query; the sealed rows are shipped to chDB; a second server on the same data
directory with storage = "clickhouse" answers the same queries from ClickHouse. Both answer
through the same API code; only the report functions behind it differ.
"""

from __future__ import annotations

import os
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.clickhouse.drawing import busy_traffic, drawn, query_params, with_amounts
from tests.clickhouse.traffic import FAST_SEAL, ship_all
from tests.oracle.harness import BATCH, batches, renamed
from tests.oracle.traffic import EVENT_NAMES, Traffic
from tests.server import TrailServer
from trail.clickhouse.backend import SQL_REPORTS
from trail.storage import layout

TRAFFICS = int(os.environ.get("TRAIL_CH_DIFF_TRAFFICS", "3"))
QUERIES = int(os.environ.get("TRAIL_CH_DIFF_QUERIES", "5"))  # per site
# Reports of the last minutes, which change between the two servers' answers (minutes apart):
# tests/clickhouse/test_differential_sessions.py compares them for one `now`.
CLOCK = ("active",)


def _sealed(data: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while any(layout.wal_file(n) for n in os.listdir(layout.wal_dir(data))):
        assert time.monotonic() < deadline, "rows not sealed"
        time.sleep(0.05)


def _ask(s: TrailServer, name: str, params: dict[str, list[str]]) -> tuple[int, Any]:
    query = urllib.parse.urlencode(params, doseq=True)
    r = s.call("GET", f"/api/v1/statistics/{name}?{query}", key=s.admin_key)
    return r.status, orjson.loads(r.body) if r.body else None


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Random traffic ingested by an embedded server, its queries and their answers."""
    data = tmp_path_factory.mktemp("differential") / "data"
    s = TrailServer(data, workers=2, env=FAST_SEAL).start()
    asked: list[tuple[str, dict[str, list[str]]]] = []
    try:
        for i in range(TRAFFICS):
            t = with_amounts(renamed(busy_traffic(1500 + i), f"ch{i}"), 1500 + i)
            ids, keys = {}, {}
            for site in t.sites:
                ids[site.key], keys[site.key] = s.create_site(site.hostname, site.timezone)
            for kind, site_key, bodies in batches(t.hits):
                r = s.call("POST", BATCH[kind], bodies, key=keys[site_key])
                assert r.status == 200, r.body
            for j, site in enumerate(t.sites):
                for p in drawn(query_params(t, site), 10_000 * i + 100 * j, QUERIES):
                    asked.append((ids[site.key], p))
                asked += [(ids[site.key], p) for p in _custom_metric_weeks(t, i + j)]
        _sealed(data)
        time.sleep(1)  # a last sealing round after the WAL files went
        answers = _answers(s, asked)
        health, metrics = s.call("GET", "/health"), s.call("GET", "/metrics")
    finally:
        s.stop()
    # storage = "embedded": /health as it always was, /metrics only says the worker is up
    assert health.status == 200 and "clickhouse" not in health.json()
    assert metrics.status == 200 and metrics.body.decode().splitlines()[-1] == "trail_up 1"
    return {"data": data, "queries": asked, "answers": answers, "key": s.admin_key}


def _custom_metric_weeks(t: Traffic, at: int) -> list[dict[str, list[str]]]:
    """Two events' custom metrics over the traffic's week (the random queries' conditions and
    days often leave no event with a value), one read as integers, one as floats."""
    today = datetime.fromtimestamp(t.now / 1000, UTC).date()
    week = {"from": [(today - timedelta(days=8)).isoformat()], "to": [today.isoformat()],
            "custom_metric_key": ["amount"], "include_avg_time_on_page": ["true"]}  # fmt: skip
    return [
        {**week, "event": [EVENT_NAMES[(at + k) % len(EVENT_NAMES)]], "custom_metric_type": [kind]}
        for k, kind in enumerate(("integer", "float"))
    ]


def _answers(
    s: TrailServer, queries: list[tuple[str, dict[str, list[str]]]]
) -> dict[tuple[int, str], tuple[int, Any]]:
    return {
        (i, name): _ask(s, name, {"id": [site], **p})
        for i, (site, p) in enumerate(queries)
        for name in SQL_REPORTS
        if name not in CLOCK
    }


@pytest.mark.timeout(3600)
def test_every_sql_report_answers_like_the_embedded_engine(
    loaded: dict[str, Any], tmp_path: Path
) -> None:
    data, url = loaded["data"], f"chdb://{tmp_path / 'ch'}"
    ship_all(data, url)
    env = {**FAST_SEAL, "TRAIL_STORAGE": "clickhouse", "TRAIL_CLICKHOUSE_URL": url}
    s = TrailServer(data, workers=1, env=env).start(timeout=120)
    s.admin_key = loaded["key"]
    try:
        got = _answers(s, loaded["queries"])
        health = s.call("GET", "/health").json()
    finally:
        s.stop()
    assert health["clickhouse"]["rows_shipped"] > 0
    log = (data.parent / f"server-{s.port}.log").read_text()
    assert "clickhouse reports read chdb://" in log  # ClickHouse answered, not the fallback
    assert "from the embedded engine" not in log
    wrong = [
        (name, loaded["queries"][i][1], loaded["answers"][(i, name)], answer)
        for (i, name), answer in got.items()
        if answer != loaded["answers"][(i, name)]
    ]
    assert not wrong, _describe(wrong)
    statuses = {status for status, _ in got.values()}
    assert 200 in statuses
    non_empty = [a for (_, name), (status, a) in got.items() if name == "total" and a["visitors"]]
    assert len(non_empty) >= len(loaded["queries"]) // 4  # the filters do select rows
    # and the custom metrics and times on page are not all zeros
    assert any(a["custom_metric_total"] and a["custom_metric_avg"] for a in non_empty)
    pages = [row for (_, name), (_, a) in got.items() if name == "page" for row in a]
    assert any(row["average_time_spent_seconds"] for row in pages)


def _describe(wrong: list[tuple[str, Any, Any, Any]], limit: int = 5) -> str:
    show: Callable[[Any], str] = lambda v: orjson.dumps(v).decode()[:600]
    lines = [f"{len(wrong)} answers differ"]
    for name, params, want, got in wrong[:limit]:
        lines += [
            f"{name} {show(params)}",
            f"  embedded:   {show(want)}",
            f"  clickhouse: {show(got)}",
        ]
    return "\n".join(lines)

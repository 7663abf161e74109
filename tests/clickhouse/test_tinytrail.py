"""TinyTrail's reports and the CSV export answer the same from ClickHouse as from the data directory.

One server (storage = "embedded") ingests the oracle's random traffic (tests/oracle/traffic.py)
plus bot hits (logged in `requests`), on sites with content groups, and answers random TinyTrail
report queries (every report, period, comparison, bots, content group, paging, grouping, metric,
path, funnel steps) and statistics exports (`GET /api/v1/statistics`, every section). The sealed
rows are shipped to chDB; a second server on the same data directory with storage = "clickhouse"
answers the same requests. JSON answers must be equal, and every CSV file of each export equal
byte for byte (the zips themselves carry the time they were written). After a deletion the
summary is empty (from the embedded engine until the shipper applies the deletion to ClickHouse).
"""

from __future__ import annotations

import io
import random
import time
import urllib.parse
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.clickhouse.drawing import busy_traffic
from tests.clickhouse.test_differential import TRAFFICS, _describe, _sealed
from tests.clickhouse.traffic import FAST_SEAL, ship_all
from tests.oracle.harness import BATCH, batches, renamed
from tests.oracle.traffic import EVENT_NAMES, PATHS, Site
from tests.server import TrailServer, request
from tests.test_ingest_e2e import GOOGLEBOT
from trail.api.tinytrail.reports import GROUPINGS
from trail.stats.export import SECTIONS
from trail.stats.tinytrail_reports import METRICS

QUERIES = 3  # per report and site
REPORTS = ("summary", "pages", "sources", "devices", "flow", "funnel", "realtime",
           "custom-events", "timeseries")  # fmt: skip
GROUPS = [{"name": "Blog", "pattern": "/blog*"}, {"name": "Docs", "pattern": "/docs/*"},
          {"name": "Docs", "pattern": "/about"}]  # fmt: skip
ENV = {**FAST_SEAL, "TRAIL_RATE_LIMIT_API": "0"}
Request = tuple[str, dict[str, list[str]]]  # (path, query)


def bot_hits(site: Site, now_ms: int, rnd: random.Random) -> list[dict[str, Any]]:
    """Page views and events of two crawlers over the last days, in time order."""
    hits = []
    for i in range(rnd.randrange(4, 12)):
        at = now_ms - rnd.randrange(4 * 3600, 6 * 86_400) * 1000 - i
        iso = datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="milliseconds")
        body = {"url": f"https://{site.hostname}{rnd.choice(PATHS)}", "ip": f"66.249.66.{i % 2}",
                "user_agent": GOOGLEBOT, "time": iso.replace("+00:00", "Z")}  # fmt: skip
        kind = "page_view"
        if rnd.random() < 0.3:
            kind, body["event_name"] = "event", rnd.choice(EVENT_NAMES)
        hits.append((at, kind, body))
    return [{"kind": k, "request": b} for _, k, b in sorted(hits, key=lambda h: h[0])]


def report_queries(rnd: random.Random, site_id: str, tz: str, now_ms: int) -> list[Request]:
    today = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(ZoneInfo(tz)).date()
    out = []
    for name in REPORTS:
        for _ in range(QUERIES):
            p: dict[str, list[str]] = {"website_id": [site_id]}
            period = rnd.choice(["today", "yesterday", "7d", "30d", "12m", "all", "", ""])
            if period:
                p["period"] = [period]
            else:
                first = today - timedelta(days=rnd.randrange(0, 9))
                last = first + timedelta(days=rnd.randrange(0, (today - first).days + 1))
                p.update(start_date=[first.isoformat()], end_date=[last.isoformat()])
            if rnd.random() < 0.4:
                p["compare"] = [rnd.choice(["previous_period", "yoy"])]
            if rnd.random() < 0.5:
                p["include_bots"] = ["true"]
            if rnd.random() < 0.3:
                p["content_group"] = [rnd.choice(["Blog", "Docs"])]
            if rnd.random() < 0.5:
                p.update(page=[str(rnd.randrange(1, 3))], per_page=[str(rnd.choice([2, 3, 50]))])
            p.update(_extra(rnd, name))
            out.append((f"/api/v1/reports/{name}", p))
    return out


def _extra(rnd: random.Random, name: str) -> dict[str, list[str]]:
    if name == "sources":
        return {"group_by": [rnd.choice(GROUPINGS)]}
    if name == "custom-events" and rnd.random() < 0.5:
        return {"event_name": [rnd.choice(EVENT_NAMES)]}
    if name == "timeseries":
        p = {"metric": [rnd.choice(METRICS)]}
        if rnd.random() < 0.5:
            p["path"] = [rnd.choice(PATHS)]
        return p
    if name == "funnel":
        choices = [*PATHS, *EVENT_NAMES, "page_view"]
        return {"steps[]": [rnd.choice(choices) for _ in range(rnd.randrange(2, 5))]}
    return {}


def export_query(rnd: random.Random, site_id: str, tz: str, now_ms: int) -> Request:
    """Every section; a random range and sometimes a filter."""
    today = datetime.fromtimestamp(now_ms / 1000, UTC).astimezone(ZoneInfo(tz)).date()
    first = today - timedelta(days=rnd.randrange(0, 9))
    p = {"id": [site_id], "from": [first.isoformat()], "to": [today.isoformat()]}
    p.update({section: ["true"] for section in SECTIONS})
    if rnd.random() < 0.5:
        p[rnd.choice(["path", "browser", "event"])] = [rnd.choice([*PATHS, "Chrome", "signup"])]
    return "/api/v1/statistics", p


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Random traffic and bots ingested by an embedded server, its requests and their answers."""
    data = tmp_path_factory.mktemp("tinytrail") / "data"
    s = TrailServer(data, workers=2, env=ENV).start()
    requests: list[Request] = []
    rnd = random.Random(15)
    try:
        for i in range(TRAFFICS):
            t = renamed(busy_traffic(2600 + i), f"tt{i}")
            ids, keys = {}, {}
            for site in t.sites:
                ids[site.key], keys[site.key] = s.create_site(site.hostname, site.timezone)
                r = _call(s, "PATCH", f"/api/v1/websites/{ids[site.key]}",
                          {"content_groups": GROUPS})  # fmt: skip
                assert r.status == 200, r.body
            for kind, site_key, bodies in batches(t.hits):
                r = s.call("POST", BATCH[kind], bodies, key=keys[site_key])
                assert r.status == 200, r.body
            for site in t.sites:
                for hit in bot_hits(site, t.now, rnd):
                    r = s.call("POST", BATCH[hit["kind"]], [hit["request"]], key=keys[site.key])
                    assert r.status == 200, r.body
                requests += report_queries(rnd, ids[site.key], site.timezone, t.now)
                requests.append(export_query(rnd, ids[site.key], site.timezone, t.now))
        _sealed(data)
        time.sleep(1)  # a last sealing round after the WAL files went
        answers = [_ask(s, path, p) for path, p in requests]
    finally:
        s.stop()
    return {"data": data, "requests": requests, "answers": answers, "key": s.admin_key}


def _call(s: TrailServer, method: str, path: str, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json", "X-API-KEY": s.admin_key or ""}
    return request(method, s.url + path, body, headers)


def _ask(s: TrailServer, path: str, params: dict[str, list[str]]) -> tuple[int, Any]:
    """The status and the JSON answer, or the CSV files of an export."""
    query = f"{path}?{urllib.parse.urlencode(params, doseq=True)}"
    if path == "/api/v1/statistics":
        r = s.call("GET", query, key=s.admin_key)
        if r.status != 200:
            return r.status, r.body
        with zipfile.ZipFile(io.BytesIO(r.body)) as z:
            return r.status, {name: z.read(name) for name in z.namelist()}
    r = _call(s, "GET", query)
    return r.status, orjson.loads(r.body) if r.body else None


def _text(answer: tuple[int, Any]) -> Any:
    """An export's CSV files (or error body) as text, for the failure message."""
    status, body = answer
    if isinstance(body, bytes):
        return status, body.decode()
    if isinstance(body, dict) and all(isinstance(v, bytes) for v in body.values()):
        return status, {name: csv.decode() for name, csv in body.items()}
    return answer


@pytest.mark.timeout(3600)
def test_tinytrail_reports_and_the_export_answer_like_the_embedded_engine(
    loaded: dict[str, Any], tmp_path: Path
) -> None:
    data, url = loaded["data"], f"chdb://{tmp_path / 'ch'}"
    ship_all(data, url)
    env = {**ENV, "TRAIL_STORAGE": "clickhouse", "TRAIL_CLICKHOUSE_URL": url}
    s = TrailServer(data, workers=1, env=env).start(timeout=120)
    s.admin_key = loaded["key"]
    try:
        got = [_ask(s, path, p) for path, p in loaded["requests"]]
        # the log before the deletion, after which the embedded engine answers
        log = (data.parent / f"server-{s.port}.log").read_text()
        after_deletion = _deleted_summary(s, loaded["requests"][0][1]["website_id"][0])
    finally:
        s.stop()
    assert "clickhouse reports read chdb://" in log  # ClickHouse answered, not the fallback
    assert "from the embedded engine" not in log
    wrong = [
        (path, p, want, answer)
        for (path, p), want, answer in zip(loaded["requests"], loaded["answers"], got, strict=True)
        if answer != want
    ]
    assert not wrong, _describe([(path, p, _text(want), _text(a)) for path, p, want, a in wrong])
    # the requests do select rows: every report answered, with visits, bots, funnels, exports
    assert {status for status, _ in got} == {200}
    answered = dict(zip((path for path, _ in loaded["requests"]), (a for _, a in got)))
    assert len(answered) == len(REPORTS) + 1
    summaries = [a["data"]["metrics"]["visits"]["value"] for (path, _), (_, a)
                 in zip(loaded["requests"], got) if path.endswith("/summary")]  # fmt: skip
    assert sum(1 for v in summaries if v) >= len(summaries) // 3
    exports = [a for (path, _), (_, a) in zip(loaded["requests"], got) if "reports" not in path]
    assert any(len(files["visitors.csv"]) > 200 for files in exports)
    # after a deletion: from the embedded engine until the shipper applies it to ClickHouse
    before, after = after_deletion
    assert before["visits"]["value"] > 0
    assert all(after[k]["value"] == 0 for k in ("visits", "unique_visitors", "pageviews"))


def _deleted_summary(s: TrailServer, site: str) -> tuple[Any, Any]:
    """A site's summary of 30 days before and after deleting all its collected statistics."""
    query: dict[str, list[str]] = {"website_id": [site], "period": ["30d"]}
    status, before = _ask(s, "/api/v1/reports/summary", query)
    assert status == 200, before
    r = s.call("DELETE", "/api/v1/statistics", {"id": site, "kind": "all"}, key=s.admin_key)
    assert r.status == 200, r.body
    status, after = _ask(s, "/api/v1/reports/summary", query)
    assert status == 200, after
    return before["data"]["metrics"], after["data"]["metrics"]

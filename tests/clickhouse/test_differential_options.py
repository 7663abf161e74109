"""Options reports beyond 200 values: random traffic with more than 200 values of session
columns (UTM source, referrer) and of paths, whose sessions have one to six page views and some
visitors two sessions. The 200 values listed are the same from the embedded engine before and
after compaction, from ClickHouse with the fresh segments shipped by the shipper and with the
compacted history shipped by `trail migrate clickhouse`, and what a count of the generated
sessions (page views, for paths) in each window says they are.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import strategies as st

from tests.clickhouse.drawing import drawn
from tests.clickhouse.test_differential import _sealed
from tests.clickhouse.test_schema import ROOT
from tests.clickhouse.traffic import DAY, FAST_SEAL, ship_all
from tests.server import TrailServer
from tests.test_ingest_e2e import CHROME_WIN
from trail.stats import options
from trail.stats.filters import parse_filter
from trail.tasks import compaction

TRAFFICS = int(os.environ.get("TRAIL_CH_DIFF_TRAFFICS", "2"))
NAMES = ("utm/source", "referrer", "referrer/name", "page")
SOURCES, PATHS = 260, 240  # values of utm_source / referrer, and of paths
DAY_MS = 86_400_000
START_MS = int(datetime.fromisoformat(f"{DAY}T00:00:00+00:00").timestamp() * 1000)


def visitors(rnd: random.Random) -> list[list[dict[str, Any]]]:
    """Per visitor, their visits: each a source and page views (ms in DAY, path). Every source
    has a visit, so there are more than 200 values; sources and paths are skewed so that
    counts tie and differ around the 200th."""

    def skewed(n: int, every: int, few: int) -> int:
        i = rnd.randrange(n)
        return i % few if i % every == 0 else i

    extra = [skewed(SOURCES, 3, 37) for _ in range(rnd.randint(150, 300))]
    out = []
    for s in [*range(SOURCES), *extra]:
        visits = []
        at = rnd.randrange(DAY_MS - 4 * 3_600_000)
        for v in range(rnd.randint(1, 2)):
            views = []
            for _ in range(rnd.randint(1, 6)):
                views.append({"time": START_MS + at, "path": f"/p{skewed(PATHS, 2, 29)}"})
                at += rnd.randint(1, 900) * 1000  # < 30 minutes: the same session
            # a second visit has another source: a new session of the same visitor
            visits.append({"source": s if v == 0 else (s + 1) % SOURCES, "views": views})
        out.append(visits)
    return out


def _hits(traffic: list[list[dict[str, Any]]], host: str) -> list[dict[str, Any]]:
    hits = []
    for n, visits in enumerate(traffic):
        for visit in visits:
            for i, view in enumerate(visit["views"]):
                hit = {"url": f"https://{host}{view['path']}",
                       "ip": f"10.3.{n // 250}.{n % 250 + 1}", "user_agent": CHROME_WIN,
                       "time": datetime.fromtimestamp(view["time"] / 1000, UTC).isoformat()}  # fmt: skip
                if i == 0:
                    s = visit["source"]
                    hit["url"] += f"?utm_source=s{s:03d}"
                    hit["referrer"] = f"https://r{s:03d}.example.org/"
                hits.append(hit)
    return sorted(hits, key=lambda h: h["time"])


def _params(site: str, at: int) -> list[dict[str, list[str]]]:
    """The whole day, two parts of it, the day in a zone west of UTC, and a search."""
    day = {"id": [site], "from": [DAY], "to": [DAY]}
    hours = drawn(st.tuples(st.integers(0, 22), st.integers(0, 59)), at, 3)[1:]
    parts = [{**day, "from_time": [f"{h:02d}:{m:02d}"], "to_time": [f"{h + 1 + m % 5:02d}:59"]}
             for h, m in hours if h + 1 + m % 5 < 24]  # fmt: skip
    return [day, *parts, {**day, "tz": ["America/New_York"]}, {**day, "search": ["s1"]},
            {**day, "search": ["/P1"]}]  # fmt: skip


def _expected(traffic: list[list[dict[str, Any]]], p: dict[str, list[str]], name: str) -> list[str]:
    """The 200 values of the most sessions with a page view in the window (for paths, of the
    most page views), ties by value."""
    start, end = (int(t.timestamp() * 1000) for t in parse_filter(p).window())
    counts: Counter[str] = Counter()
    for visits in traffic:
        for visit in visits:
            inside = [v for v in visit["views"] if start <= v["time"] < end]
            if name == "page":
                counts.update(v["path"] for v in inside)
            elif inside:
                counts[f"s{visit['source']:03d}"] += 1
    needle = p.get("search", [""])[0].lower()
    kept = [v for v in counts if needle in v.lower()]
    return sorted(sorted(kept, key=lambda v: (-counts[v], v))[: options.MAX_OPTIONS])


def _embedded(data: Path, asked: list[dict[str, list[str]]]) -> list[list[str]]:
    return [options.options(data, parse_filter(p), name) for p in asked for name in NAMES]


ASK = """
import sys, orjson
from trail.clickhouse.client import connect
from trail.clickhouse.reports_events import options
from trail.stats.filters import parse_filter
client = connect(sys.argv[1])
names = sys.argv[2].split(",")
asked = orjson.loads(sys.stdin.read())
print(orjson.dumps([options(client, "trail", parse_filter(p), n) for p in asked
                    for n in names]).decode())
"""


def _clickhouse(url: str, asked: list[dict[str, list[str]]]) -> list[list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", ASK, url, ",".join(NAMES)], input=orjson.dumps(asked).decode(),
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout.splitlines()[-1])


def _migrate(data: Path, url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trail", "migrate", "clickhouse", "--data-dir", str(data),
         "--url", url],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The traffics ingested by an embedded server, each on a site of its own, sealed."""
    data = tmp_path_factory.mktemp("options") / "data"
    # the traffic is drawn from a seed Hypothesis draws: hundreds of sessions are too many draws
    seeds = [drawn(st.integers(0, 2**32), 3100 + i, 2)[-1] for i in range(TRAFFICS)]
    traffics = [visitors(random.Random(seed)) for seed in seeds]
    s = TrailServer(data, workers=1, env=FAST_SEAL).start()
    sites = []
    try:
        for i, traffic in enumerate(traffics):
            host = f"options{i}.example"
            site, key = s.create_site(host)
            hits = _hits(traffic, host)
            for j in range(0, len(hits), 500):
                r = s.call("POST", "/api/v1/hit/batch", hits[j : j + 500], key=key)
                assert r.status == 200, r.body
            sites.append(site)
        _sealed(data)
        time.sleep(1)  # a last sealing round after the WAL files went
    finally:
        s.stop()
    asked = [p for i, site in enumerate(sites) for p in _params(site, 3200 + i)]
    return {"data": data, "traffics": traffics, "sites": sites, "asked": asked}


@pytest.fixture(scope="module")
def compacted(loaded: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sealed rows with the day compacted."""
    data = tmp_path_factory.mktemp("options-compacted") / "data"
    for part in ("segments", "wal"):
        shutil.copytree(loaded["data"] / part, data / part)
    compaction.compact_day(data, date.fromisoformat(DAY), force=True, grace=0)
    return data


def test_options_beyond_200_values_count_sessions_fresh_and_compacted(
    loaded: dict[str, Any], compacted: Path
) -> None:
    asked = loaded["asked"]
    fresh = _embedded(loaded["data"], asked)
    assert max(len(a) for a in fresh) == options.MAX_OPTIONS  # beyond 200 values
    # the generated sessions (page views, for paths) say which 200 values are listed
    traffic_of = dict(zip(loaded["sites"], loaded["traffics"], strict=True))
    i = 0
    for p in asked:
        for name in NAMES:
            if name in ("utm/source", "page"):
                assert fresh[i] == _expected(traffic_of[p["id"][0]], p, name), (p, name)
            i += 1
    sessions = pl.concat(
        [pl.read_parquet(f) for f in (compacted / "segments" / "sessions").rglob("part-*.parquet")]
    )
    assert sessions.filter(pl.col("sign") == 0).height > 0  # cancelled states collapsed
    assert sessions.filter(pl.col("sign") == -1).is_empty()
    assert _embedded(compacted, asked) == fresh


@pytest.mark.timeout(1800)
def test_options_beyond_200_values_from_clickhouse_shipped_and_migrated(
    loaded: dict[str, Any], compacted: Path, tmp_path: Path
) -> None:
    asked = loaded["asked"]
    fresh = _embedded(loaded["data"], asked)
    shipped = f"chdb://{tmp_path / 'ch-shipped'}"
    ship_all(loaded["data"], shipped)
    assert _clickhouse(shipped, asked) == fresh
    migrated = f"chdb://{tmp_path / 'ch-migrated'}"
    _migrate(compacted, migrated)
    assert _clickhouse(migrated, asked) == fresh

"""Export and import round trip (docs/export.md): generated traffic into site A of one real
server, `trail export` (or GET /api/v1/export) of A, `trail import trail` of that export into
site B of a second server with a fresh data directory, then every statistics endpoint of the
oracle (tests/oracle/model.py REPORTS) must answer the same for A and B, unfiltered over the
export's range and with a generated filter: first with A's rows as sealed (segments) and B's as
imported (compacted parts), then after importing the same export again (nothing may double) and
compacting both.

- TRAIL_EXPORT_EXAMPLES: Hypothesis examples of generated traffic (default 3, derandomized).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.oracle.harness import (
    CLOCK,
    ENDPOINTS,
    Loaded,
    Oracle,
    differences,
    server_params,
)
from tests.oracle.traffic import (
    DIRECT,
    SOURCES,
    Site,
    Traffic,
    Visitor,
    filter_params,
    make_hit,
    traffic,
    unique_times,
    utc_midnight,
)
from tests.server import request

EXAMPLES = int(os.environ.get("TRAIL_EXPORT_EXAMPLES", "3"))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trail", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )


@dataclass
class Pair:
    one: Oracle  # the source server
    two: Oracle  # a fresh data directory: the target


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("export")
    one = Oracle.start(base)
    try:
        two = Oracle.start(base)
    except BaseException:
        one.stop()
        raise
    try:
        yield Pair(one, two)
    finally:
        one.stop()
        two.stop()


def full_range(loaded: Loaded, site: Site) -> dict[str, list[str]]:
    """From the local day before the first hit to today, in the site's time zone."""
    tz = ZoneInfo(site.timezone)
    first = min((h["time"] for h in loaded.traffic.hits), default=loaded.traffic.now)
    start = datetime.fromtimestamp(first / 1000, UTC).astimezone(tz).date()
    today = datetime.now(UTC).astimezone(tz).date()
    return {"from": [(start - timedelta(days=1)).isoformat()], "to": [today.isoformat()]}


def export_site(
    pair: Pair, site_id: str, span: dict[str, list[str]], fmt: str, via: str, out: Path
) -> Path:
    """A's export as a directory (`trail export`) or a zip (GET /api/v1/export)."""
    server = pair.one.server
    if via == "cli":
        done = run_cli(
            "export", "--data-dir", str(server.data_dir), "--site", site_id,
            "--from", span["from"][0], "--to", span["to"][0], "--format", fmt, "--out", str(out),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "exported " in done.stdout and "rows/s" in done.stdout, done.stdout
        return out
    query = urllib.parse.urlencode(
        {"id": site_id, "from": span["from"][0], "to": span["to"][0], "format": fmt}
    )
    r = request("GET", f"{server.url}/api/v1/export?{query}",
                headers={"Authorization": f"Bearer {server.admin_key}"}, timeout=60)  # fmt: skip
    assert r.status == 200, r.body[:300]
    headers = {k.lower(): v for k, v in r.headers.items()}
    assert headers["content-type"] == "application/zip"
    assert headers["content-disposition"].startswith("attachment; filename=")
    out.mkdir(parents=True)
    path = out / "export.zip"
    path.write_bytes(r.body)
    return path


def import_into(pair: Pair, site_id: str, source: Path) -> dict[str, Any]:
    done = run_cli(
        "import", "trail", "--data-dir", str(pair.two.server.data_dir), "--site", site_id,
        "--json", str(source),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def manifest_of(source: Path) -> dict[str, Any]:
    if source.is_dir():
        return json.loads((source / "manifest.json").read_text())
    with zipfile.ZipFile(source) as z:
        return json.loads(z.read("manifest.json"))


def compare(
    pair: Pair, loaded: Loaded, key: str, site_b: str, params: dict[str, list[str]], phase: str
) -> list[str]:
    """Every endpoint with `params` on A (server one) and B (server two): the differences."""
    problems = []
    for endpoint in ENDPOINTS:
        q = server_params(Oracle.required(endpoint, loaded, key, params), loaded, key)
        for attempt in range(3):
            a = pair.one.get(endpoint, loaded.site_ids[key], q)
            b = pair.two.get(endpoint, site_b, q)
            found = [
                p.replace(": model ", ": A ").replace(" / trail ", " / B ")
                for p in differences(a, b, "")
            ]
            # Reports that read the clock may see the two servers a second apart.
            if not found or endpoint not in CLOCK:
                break
            time.sleep(0.2 * (attempt + 1))
        if isinstance(a, dict) and set(a) == {"status", "body"}:
            found.append(f"A answered {a['status']}: {str(a['body'])[:200]}")
        if found:
            query = urllib.parse.urlencode([(k, v) for k, vs in q.items() for v in vs])
            problems.append(f"[{phase}] {endpoint}?{query}")
            problems += [f"    {p}" for p in found[:8]]
    return problems


def round_trip(pair: Pair, generated: Traffic, tmp: Path, fmt: str, via: str,
               filters: dict[str, dict[str, list[str]]]) -> None:  # fmt: skip
    loaded = pair.one.load(generated)
    targets: dict[str, str] = {}
    try:
        problems: list[str] = []
        sources = {}
        for site in loaded.traffic.sites:
            site_a = loaded.site_ids[site.key]
            span = full_range(loaded, site)
            source = export_site(pair, site_a, span, fmt, via, tmp / f"export-{site.key}")
            manifest = manifest_of(source)
            assert manifest["schema_version"] == 1 and manifest["site"]["id"] == site_a
            assert manifest["range"] == {**manifest["range"], "from": span["from"][0],
                                         "to": span["to"][0], "timezone": site.timezone}  # fmt: skip
            model = loaded.tables.for_site(site.key)  # the oracle's rows of the traffic
            assert manifest["tables"]["page_views"]["rows"] == len(model.page_views)
            assert manifest["tables"]["events"]["rows"] == len(model.events)
            site_b, _ = pair.two.server.create_site(site.hostname, site.timezone)
            targets[site.key] = site_b
            summary = import_into(pair, site_b, source)
            assert summary["rows"] == {k: v["rows"] for k, v in manifest["tables"].items()}
            assert summary["replaced_rows"] == 0
            sources[site.key] = (source, span)
        for key, (_, span) in sources.items():
            for params in (span, filters[key]):
                problems += compare(pair, loaded, key, targets[key], params, "fresh/imported")
        for key, (source, _) in sources.items():
            again = import_into(pair, targets[key], source)  # replaces, never doubles
            assert again["replaced_rows"] > 0 or sum(again["rows"].values()) == 0, again
        b_loaded = Loaded(loaded.traffic, dict(targets), loaded.tables)
        compaction = pair.one.compact([loaded]) + pair.two.compact([b_loaded])
        assert not compaction, [d.problems for d in compaction]
        for key, (_, span) in sources.items():
            for params in (span, filters[key]):
                problems += compare(pair, loaded, key, targets[key], params, "compacted")
        assert not problems, "\n".join(problems)
    finally:
        pair.one.unload([loaded])
        pair.two.unload([Loaded(loaded.traffic, targets, loaded.tables)])


@pytest.mark.timeout(max(600, EXAMPLES * 240))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
    phases=[Phase.explicit, Phase.generate],
)
@given(data=st.data())
def test_generated_traffic_round_trips(
    pair: Pair, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    generated = data.draw(traffic(), label="traffic")
    fmt = data.draw(st.sampled_from(["parquet", "csv"]), label="format")
    via = data.draw(st.sampled_from(["cli", "api"]), label="via")
    filters = {s.key: data.draw(filter_params(generated, s), label=f"filter {s.key}")
               for s in generated.sites}  # fmt: skip
    round_trip(pair, generated, tmp_path_factory.mktemp("rt"), fmt, via, filters)


def midnight_traffic(now_ms: int) -> Traffic:
    """Hand-built: two sites (UTC and Auckland), visits across UTC and local midnights,
    reloads, events with metadata, tags, keep-alives, a campaign, a visit of the last minutes."""
    sites = [Site("site0", "rt0.oracle.test", "UTC"),
             Site("site1", "rt1.oracle.test", "Pacific/Auckland")]  # fmt: skip
    people = [Visitor(0, 0, 10, 0, 5), Visitor(6, 1, 11, 1, 1), Visitor(3, 4, 12, 2, 3)]
    today = datetime.fromtimestamp(now_ms / 1000, UTC).date()
    hits = []
    for site in sites:
        for n, person in enumerate(people):
            day = today - timedelta(days=2 + n)
            t = utc_midnight(day) - (300 - 60 * n) * 1000  # minutes before UTC midnight
            src = SOURCES[(n + 3) % len(SOURCES)]
            hits.append(make_hit("page_view", t, site, person, "/", source=src,
                                 tags={"author": "ann"}))  # fmt: skip
            hits.append(make_hit("page_view", t + 90_000, site, person, "/blog", follow_up=True))
            hits.append(make_hit("event", t + 150_000, site, person, "/blog", follow_up=True,
                                 event_name="signup", event_meta={"plan": "pro"},
                                 event_duration=5))  # fmt: skip
            hits.append(make_hit("page_view", t + 400_000, site, person, "/blog", follow_up=True))
            hits.append(make_hit("keep_alive", t + 500_000, site, person, "/blog",
                                 follow_up=True, with_url=n % 2 == 0))  # fmt: skip
            hits.append(make_hit("page_view", t + 3_000_000, site, person, "/docs",
                                 source=DIRECT))  # fmt: skip
        hits.append(make_hit("page_view", now_ms - 120_000, site, people[0], "/pricing"))
    return Traffic(sites, unique_times(hits, now_ms), now_ms)


@pytest.mark.timeout(600)
def test_sessions_across_midnight_round_trip(
    pair: Pair, tmp_path_factory: pytest.TempPathFactory
) -> None:
    now = int(datetime.now(UTC).timestamp() * 1000)
    generated = midnight_traffic(now)
    filters = {
        "site0": {"from": [(datetime.now(UTC) - timedelta(days=6)).date().isoformat()],
                  "to": [datetime.now(UTC).date().isoformat()], "scale": ["week"],
                  "path": ["/blog"]},
        "site1": {"from": [(datetime.now(UTC) - timedelta(days=3)).date().isoformat()],
                  "to": [(datetime.now(UTC) - timedelta(days=3)).date().isoformat()],
                  "event": ["signup"], "tz": ["Europe/Berlin"]},
    }  # fmt: skip
    round_trip(pair, generated, tmp_path_factory.mktemp("midnight"), "parquet", "cli", filters)


def test_export_files_hold_final_states(pair: Pair, tmp_path: Path) -> None:
    """`sessions` holds one row per session (its final state), `session_presence` only sign 0
    rows; the CSV and Parquet files of one export hold the same rows."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    loaded = pair.one.load(midnight_traffic(now))
    try:
        site = loaded.traffic.sites[0]
        site_a = loaded.site_ids[site.key]
        span = full_range(loaded, site)
        frames = {}
        for fmt in ("parquet", "csv"):
            out = export_site(pair, site_a, span, fmt, "cli", tmp_path / fmt)
            frames[fmt] = {stem: read(out / f"{stem}.{fmt}", stem)
                           for stem in ("page_views", "sessions", "session_presence", "events")}  # fmt: skip
        sessions = frames["parquet"]["sessions"]
        assert sessions["sign"].to_list() == [1] * sessions.height
        assert sessions.select("visitor_id", "session_id").is_unique().all()
        assert set(frames["parquet"]["session_presence"]["sign"].to_list()) <= {0}
        listed = pair.one.get("session/list", site_a, {**span, "limit": ["1000"]})
        assert sessions.height == len(listed)
        for stem, df in frames["parquet"].items():
            assert df.equals(frames["csv"][stem]), stem
    finally:
        pair.one.unload([loaded])


def read(path: Path, stem: str) -> pl.DataFrame:
    from trail.export import csv_schema, from_csv_frame

    if path.suffix == ".csv":
        return from_csv_frame(pl.scan_csv(path, schema=csv_schema(stem)), stem).collect()
    return pl.read_parquet(path)


# -- the API route --------------------------------------------------------------------------------


def test_api_export_auth_and_errors(pair: Pair, tmp_path: Path) -> None:
    s = pair.one.server
    site, access_key = s.create_site("api-export.example")
    url = f"{s.url}/api/v1/export"
    good = f"id={site}&from=2024-01-01&to=2024-01-31"
    admin = {"Authorization": f"Bearer {s.admin_key}"}

    def get(query: str, headers: dict[str, str] | None = None) -> Any:
        return request("GET", f"{url}?{query}", headers=headers or {})

    assert get(good).status == 401  # no credentials
    assert get(good, {"Authorization": f"Bearer {access_key}"}).status == 403  # write-only key
    other = create_user(s.data_dir, "user")  # another account: the site is out of reach
    r = get(good, {"X-API-KEY": other["api_key"]})
    assert r.status == 404, r.body
    assert get("id=nope&from=2024-01-01&to=2024-01-31", admin).status == 404
    for query, field in (
        ("from=2024-01-01&to=2024-01-31", "id"),
        (f"id={site}&from=2024-13-01&to=2024-01-31", "from"),
        (f"id={site}&from=2024-01-01", "to"),
        (f"id={site}&from=2024-02-01&to=2024-01-31", "from"),
        (f"{good}&format=xlsx", "format"),
    ):
        r = get(query, admin)
        assert r.status == 400 and field in r.json()["validation"], (query, r.status, r.body)
    r = get(f"{good}&format=csv", admin)
    headers = {k.lower(): v for k, v in r.headers.items()}
    assert r.status == 200 and headers["content-type"] == "application/zip"
    name = "trail-export-api-export.example-2024-01-01-2024-01-31.zip"
    assert headers["content-disposition"] == f'attachment; filename="{name}"'
    with zipfile.ZipFile(io.BytesIO(r.body)) as z:
        names = sorted(z.namelist())
        manifest = json.loads(z.read("manifest.json"))
    assert names == ["events.csv", "manifest.json", "page_views.csv", "session_presence.csv",
                     "sessions.csv"]  # fmt: skip
    assert {t["rows"] for t in manifest["tables"].values()} == {0}
    assert get(f"{good}&format=csv", admin).body == r.body  # deterministic: same rows, same bytes


def test_api_export_counts_match_the_files(pair: Pair) -> None:
    now = int(datetime.now(UTC).timestamp() * 1000)
    loaded = pair.one.load(midnight_traffic(now))
    try:
        site = loaded.traffic.sites[1]
        span = full_range(loaded, site)
        query = urllib.parse.urlencode(
            {"id": loaded.site_ids[site.key], "from": span["from"][0], "to": span["to"][0]}
        )
        r = request("GET", f"{pair.one.server.url}/api/v1/export?{query}",
                    headers={"X-API-KEY": str(pair.one.server.admin_key)})  # fmt: skip
        assert r.status == 200, r.body[:300]
        with zipfile.ZipFile(io.BytesIO(r.body)) as z:
            manifest = json.loads(z.read("manifest.json"))
            for stem, entry in manifest["tables"].items():
                df = pl.read_parquet(io.BytesIO(z.read(entry["file"])))
                assert df.height == entry["rows"], stem
                assert df.columns == [c["name"] for c in entry["columns"]]
        model = loaded.tables.for_site(site.key)
        assert manifest["tables"]["page_views"]["rows"] == len(model.page_views)
        assert manifest["tables"]["events"]["rows"] == len(model.events)
    finally:
        pair.one.unload([loaded])


def test_api_export_size_cap(tmp_path: Path) -> None:
    from tests.server import TrailServer

    s = TrailServer(tmp_path / "data", workers=1, env={"TRAIL_EXPORT_MAX_BYTES": "5000"}).start()
    try:
        site, _ = s.create_site("capped.example")
        key = {"Authorization": f"Bearer {s.admin_key}"}
        base = f"{s.url}/api/v1/export?id={site}&from=2024-01-01&to=2024-01-02"
        r = request("GET", base + "&format=parquet", headers=key)  # 4 Parquet footers: ~14 kB
        assert r.status == 413, r.body
        assert "5000 bytes" in r.json()["error"][0]
        assert request("GET", base + "&format=csv", headers=key).status == 200
    finally:
        s.stop()


def create_user(data_dir: Path, role: str) -> dict[str, str]:
    from tests.conftest import create_user as create

    return create(data_dir, role)

"""Reports in ClickHouse SQL against the embedded engine, on the same rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.clickhouse.test_schema import ROOT
from tests.clickhouse.traffic import DAY
from trail.clickhouse.reports import custom_metrics
from trail.clickhouse.rows import Rows
from trail.stats import reports
from trail.stats.filters import parse_filter

REPORT = """
import sys, orjson
from trail.clickhouse.client import connect
from trail.clickhouse import reports
from trail.stats.filters import parse_filter
client = connect(sys.argv[1])
out = []
for params in orjson.loads(sys.argv[2]):
    f = parse_filter(params)
    out.append([reports.total(client, "trail", f), reports.visitor(client, "trail", f)])
print(orjson.dumps(out).decode())
"""

FILTERS: list[dict[str, list[str]]] = [
    {"from": [DAY], "to": [DAY]},
    {"from": [DAY], "to": [DAY], "browser": ["Chrome"]},
    {"from": [DAY], "to": [DAY], "browser": ["!Firefox"], "platform": ["mobile"]},
    {"from": [DAY], "to": [DAY], "os": ["~mac", "Windows"], "referrer_name": ["!Google"]},
    {"from": [DAY], "to": [DAY], "platform": ["!desktop"], "screen_class": ["^x"]},
    {"from": ["2026-11-19"], "to": ["2026-11-21"], "tz": ["America/New_York"]},
    {"from": ["2026-11-01"], "to": ["2026-11-30"], "scale": ["week"], "tz": ["Asia/Tokyo"]},
    {"from": ["2026-11-01"], "to": ["2026-12-31"], "scale": ["month"], "language": ["~de,en"]},
]


def test_total_and_visitor_series_agree_with_the_embedded_engine(
    traffic: dict[str, Any], copy: Path, tmp_path: Path
) -> None:
    url = f"chdb://{tmp_path / 'ch'}"
    shipped = subprocess.run(
        [sys.executable, "-m", "trail.clickhouse.shipper", "--data-dir", str(copy), "--url", url,
         "--drain"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert shipped.returncode == 0, shipped.stderr
    params = [{"id": [traffic["site"]], **p} for p in FILTERS]
    done = subprocess.run(
        [sys.executable, "-c", REPORT, url, orjson.dumps(params).decode()],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    from_clickhouse = orjson.loads(done.stdout.splitlines()[-1])
    for p, (total, series) in zip(params, from_clickhouse, strict=True):
        f = parse_filter(p)
        assert total == reports.total(copy, f), p
        assert series == reports.visitor(copy, f), p
    assert from_clickhouse[0][0] == {
        **traffic["total"],
        "bounce_rate": pytest.approx(traffic["total"]["bounces"] / traffic["total"]["sessions"]),
        "cr": 1.0,
        "custom_metric_avg": 0.0,
        "custom_metric_total": 0.0,
    }


def test_values_are_bound_never_pasted() -> None:
    sneaky = "x' OR 1=1 --"
    f = parse_filter(
        {"id": ["s"], "from": [DAY], "to": [DAY], "browser": [sneaky, "~" + sneaky],
         "path": [sneaky], "pattern": [sneaky], "tag_" + sneaky: [sneaky], "event": ["!" + sneaky],
         "meta_k": [sneaky]}
    )  # fmt: skip
    rows = Rows(f, "trail")
    sql = rows.sessions() + rows.page_views() + rows.events()
    assert "OR 1=1" not in sql
    values = set(map(str, rows.p.values.values()))
    assert {sneaky, sneaky.lower()} <= values
    assert "browser = {p4:String}" in sql  # tz, site, start, end, then the browser values


def test_custom_metric_keys_are_bound_never_pasted() -> None:
    sneaky = "x' OR 1=1 --"
    for kind in ("integer", "float"):
        f = parse_filter({"id": ["s"], "from": [DAY], "to": [DAY], "event": ["buy"],
                          "custom_metric_key": [sneaky], "custom_metric_type": [kind]})  # fmt: skip
        rows = Rows(f, "trail")  # compiled, no longer Unsupported
        sql = custom_metrics(rows, ["toHour(time, {tz:String}) AS hour"])
        assert sql is not None and "OR 1=1" not in sql and "[0-9]" not in sql
        assert sneaky in rows.p.values.values()
    without_event = parse_filter(
        {"id": ["s"], "from": [DAY], "to": [DAY], "custom_metric_key": ["k"],
         "custom_metric_type": ["float"]}
    )  # fmt: skip
    assert custom_metrics(Rows(without_event, "trail"), []) is None  # as the embedded engine: 0

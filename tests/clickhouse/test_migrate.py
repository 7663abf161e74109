"""`trail migrate clickhouse`: compacted history into ClickHouse, once."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from tests.clickhouse.test_reports import REPORT
from tests.clickhouse.test_schema import ROOT, chq
from tests.clickhouse.traffic import DAY
from trail.stats import reports
from trail.stats.filters import parse_filter
from trail.tasks import compaction


def _migrate(data: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trail", "migrate", "clickhouse", "--data-dir", str(data),
         "--url", url],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_compacted_history_is_shipped_once(
    traffic: dict[str, Any], copy: Path, tmp_path: Path
) -> None:
    compaction.compact_day(copy, date.fromisoformat(DAY), force=True, grace=0)
    parts = list((copy / "segments" / "sessions").rglob("part-*.parquet"))
    assert parts and not list((copy / "segments").rglob("*.arrow"))
    sessions = pl.concat([pl.read_parquet(p) for p in parts])
    presence = sessions.filter(pl.col("sign") == 0).height
    assert presence > 0  # compaction kept cancelled states as sign-0 rows

    url = f"chdb://{tmp_path / 'ch'}"
    first = _migrate(copy, url)
    assert first.returncode == 0, first.stderr
    shipped = orjson.loads(first.stdout.splitlines()[-1])["shipped"]
    assert shipped["sessions"] == sessions.height
    assert shipped["page_views"] == traffic["rows"]["page_views"]
    again = _migrate(copy, url)
    assert again.returncode == 0, again.stderr
    assert orjson.loads(again.stdout.splitlines()[-1])["shipped"] == {}

    counts = chq(
        url,
        "SELECT count() FROM trail.page_views",
        "SELECT count() FROM trail.session_states",
        "SELECT sum(sign) FROM trail.sessions",
    )["results"]
    assert counts[0] == [[traffic["rows"]["page_views"]]]
    assert counts[1] == [[sessions.filter(pl.col("sign") >= 0).height]]
    assert counts[2] == [[traffic["rows"]["sessions"]]]

    params = [
        {"id": [traffic["site"]], "from": [DAY], "to": [DAY]},
        {"id": [traffic["site"]], "from": [DAY], "to": [DAY], "tz": ["America/New_York"]},
        {"id": [traffic["site"]], "from": [DAY], "to": [DAY], "path": ["/p3"]},
    ]
    done = subprocess.run(
        [sys.executable, "-c", REPORT, url, orjson.dumps(params).decode()],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for p, (total, series) in zip(params, orjson.loads(done.stdout.splitlines()[-1]), strict=True):
        f = parse_filter(p)
        assert total == reports.total(copy, f), p
        assert series == reports.visitor(copy, f), p
    assert not list((copy / "clickhouse" / "history").iterdir())

"""The data directory the ClickHouse tests ship: one server run for the whole package."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clickhouse.traffic import (
    DAY,
    FAST_SEAL,
    segment_rows,
    send_traffic,
    shipped_rows,
    trail_totals,
    wait_until,
)
from tests.server import TrailServer


@pytest.fixture(scope="package")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A data directory with a day of traffic, sealed by a real server that then stopped."""
    data = tmp_path_factory.mktemp("traffic") / "data"
    s = TrailServer(data, workers=2, env=FAST_SEAL).start()
    try:
        site, key = s.create_site()
        send_traffic(s, key)
        total = wait_until(
            lambda: (t := s.stats("total", site, **{"from": DAY, "to": DAY}))["views"] >= 2407 and t
        )
    finally:
        s.stop()
    rows = segment_rows(data)
    assert rows["page_views"] == total["views"] and rows["events"] == 1
    return {
        "data": data,
        "site": site,
        "total": trail_totals(total),
        "rows": rows,
        "shipped": shipped_rows(data),
    }


@pytest.fixture
def copy(traffic: dict[str, Any], tmp_path: Path) -> Iterator[Path]:
    """The sealed rows of `traffic` (segments and WAL directory: the LMDB envs are sparse
    gigabytes a copy would fill, and the shipper never reads them)."""
    data = tmp_path / "data"
    for part in ("segments", "wal"):
        shutil.copytree(traffic["data"] / part, data / part)
    yield data

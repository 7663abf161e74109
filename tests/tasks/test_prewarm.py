"""The maintenance process makes the default dashboard window's indexes (trail.tasks.prewarm).

After a round, a worker's reports over the site's last 30 days find every index on disk and
build none; the round does nothing while the window's closed days stay the same, and runs again
once compaction rolls up another day.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.stats_gen import FIRST_DAY, SITE, Generator, write_day
from trail.services import statistics
from trail.stats import cache, index_files
from trail.storage import rollups
from trail.tasks import compaction, prewarm

DAYS = 4
TODAY = FIRST_DAY + timedelta(days=DAYS)  # the generated days closed, today empty
SITE_RECORD = SimpleNamespace(id=SITE, timezone="UTC", group_by_title=False)


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(rollups, "ENABLED", True)  # whatever TRAIL_ROLLUPS says
    monkeypatch.setattr(cache, "CLOSED_AFTER", float("inf"))  # the reports compute
    prewarm._seen.clear()
    yield
    prewarm._seen.clear()


def closed_after(day_index: int) -> float:
    return datetime.combine(
        FIRST_DAY + timedelta(days=day_index + 2), datetime.min.time(), UTC
    ).timestamp()


def site_with(tmp: Path, days: int) -> tuple[Path, Generator]:
    g = Generator(page_views=4_000, days=days + 1, seed=11, paths=30)
    for i in range(days):
        write_day(tmp, i, g.day(i))
    compaction.run_round(tmp, now=closed_after(days - 1), grace=0)
    return tmp, g


def indexes(data_dir: Path) -> set[str]:
    root = data_dir / "segments" / index_files.DIRECTORY / f"site={SITE}"
    return set(os.listdir(root)) if root.is_dir() else set()


def worker_load(data_dir: Path) -> None:
    first = TODAY - timedelta(days=prewarm.WINDOW_DAYS - 1)
    base = {"id": [SITE], "from": [first.isoformat()], "to": [TODAY.isoformat()]}
    ctx = SimpleNamespace(data_dir=data_dir)
    for name, extra in prewarm.REPORTS:
        statistics.run(ctx, name, {**base, **extra}, SITE_RECORD)


def test_a_round_leaves_nothing_for_the_first_load_to_build(tmp_path: Path) -> None:
    data_dir, _ = site_with(tmp_path, DAYS)
    assert prewarm.warm_site(data_dir, SITE_RECORD, TODAY, min_views=0)
    made = indexes(data_dir)
    assert made  # the union and the breakdowns' indexes
    worker_load(data_dir)
    assert indexes(data_dir) == made  # found on disk, none built again
    assert not prewarm.warm_site(data_dir, SITE_RECORD, TODAY, min_views=0)  # unchanged


def test_another_closed_day_warms_again(tmp_path: Path) -> None:
    data_dir, g = site_with(tmp_path, DAYS)
    assert prewarm.warm_site(data_dir, SITE_RECORD, TODAY, min_views=0)
    before = indexes(data_dir)
    write_day(data_dir, DAYS, g.day(DAYS))  # "today" closes and is compacted
    compaction.run_round(data_dir, now=closed_after(DAYS), grace=0)
    tomorrow = TODAY + timedelta(days=1)
    assert prewarm.warm_site(data_dir, SITE_RECORD, tomorrow, min_views=0)
    assert indexes(data_dir) - before  # the new window's own


def test_small_sites_and_empty_windows_are_left_alone(tmp_path: Path) -> None:
    data_dir, _ = site_with(tmp_path, DAYS)
    assert not prewarm.warm_site(data_dir, SITE_RECORD, TODAY, min_views=10**9)
    assert indexes(data_dir) == set()
    later = TODAY + timedelta(days=100)  # no compacted day in that window
    assert not prewarm.warm_site(data_dir, SITE_RECORD, later, min_views=0)
    assert indexes(data_dir) == set()


def test_the_task_warms_every_site_of_the_meta_store(tmp_path: Path) -> None:
    meta = SimpleNamespace(all_sites=lambda: [SITE_RECORD])
    noon = datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(hours=12)
    for storage in ("clickhouse", "embedded"):
        data_dir, _ = site_with(tmp_path / storage, DAYS)
        config = SimpleNamespace(data_dir=str(data_dir), storage=storage)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(prewarm, "MIN_VIEWS", 0)
            prewarm.task(SimpleNamespace(config=config, meta=meta), now=noon)
        # ClickHouse answers the reports there: nothing is made
        assert bool(indexes(data_dir)) == (storage == "embedded")

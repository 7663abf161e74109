"""The statistics' memory budget (trail.storage.memory): what is kept stays within its bytes,
least recently used first out, and answers do not depend on what is kept."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import polars as pl
import pytest

from bench import stats_gen
from bench.stats_gen import FIRST_DAY, SITE
from trail.services import statistics as pirsch_stats
from trail.stats import cache as result_cache
from trail.storage import memory
from trail.tasks import compaction


def test_kept_values_stay_within_the_budget_least_recently_used_first_out() -> None:
    """Against a model: LRU within the budget, except that entries used within hold_s are
    not given up for a new one (then the new one is not kept) unless it is `dear`."""
    rng = random.Random(5)
    now = [0.0]
    kept = memory.Kept(1000, hold_s=10, clock=lambda: now[0])
    model: dict[int, tuple[int, float]] = {}  # key -> (size, last use), in use order
    refused = 0
    for _ in range(4000):
        now[0] += rng.choice([0, 0.5, 3, 12])
        key = rng.randrange(40)
        if rng.random() < 0.4:
            got = kept.get(key)
            if key in model:
                assert got == ("value", key)
                model[key] = (model.pop(key)[0], now[0])
            else:
                assert got is memory.MISSING
            continue
        size = rng.choice([0, 1, 50, 200, 400, 999, 1000, 1001, 5000])
        dear = rng.random() < 0.2
        model.pop(key, None)
        want = size <= 1000
        if want:
            total, evict = sum(n for n, _ in model.values()), []
            for k, (n, used_at) in model.items():
                if total + size <= 1000:
                    break
                if now[0] - used_at < 10 and not dear:
                    want = False
                    break
                evict.append(k)
                total -= n
            if want:
                for k in evict:
                    del model[k]
                model[key] = (size, now[0])
        refused += not want
        assert kept.put(key, ("value", key), size, dear=dear) is want
        assert list(kept.entries) == list(model)
        assert kept.used == sum(n for n, _ in model.values()) <= 1000
    assert refused > 100  # both ways were taken


def test_a_load_larger_than_the_budget_finds_what_fitted() -> None:
    """The same 20 parts asked in the same order again and again (a dashboard load), 10 fit:
    plain LRU would find none of them."""
    kept = memory.Kept(1000)
    found = []
    for _ in range(3):
        hits = 0
        for part in range(20):
            if kept.get(part) is memory.MISSING:
                kept.put(part, part, 100)
            else:
                hits += 1
        found.append(hits)
    assert found == [0, 10, 10]


def test_none_is_a_value_and_kinds_are_dropped_alone() -> None:
    kept = memory.Kept(10_000)
    kept.put(("time answer", 1), None, 10)
    kept.put(("union", 1), np.arange(3), 24)
    assert kept.get(("time answer", 1)) is None
    kept.drop("time answer")
    assert kept.get(("time answer", 1)) is memory.MISSING
    assert kept.get(("union", 1)) is not memory.MISSING and kept.used == 24


def test_a_burst_lets_go_of_what_only_built_the_indexes(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = memory.Kept(10_000)
    monkeypatch.setattr(memory, "KEPT", kept)
    for kind in (*memory.BUILD_ONLY, "union", "dims", "set index"):
        kept.put((kind, "window"), np.arange(10), 100)
    memory.burst_over()
    left = {key[0] for key in kept.entries}
    assert left == {"union", "dims", "set index"} and kept.used == 300


@dataclass
class _Held:
    ids: np.ndarray
    table: pl.DataFrame
    kinds: dict[int, pl.DataFrame]


def test_sizes_count_the_buffers_held(tmp_path: Path) -> None:
    ids = np.arange(100_000, dtype=np.uint64)
    table = pl.DataFrame({"a": np.arange(50_000, dtype=np.int64)})
    assert memory.size_of(ids) >= 800_000
    assert memory.size_of(table) >= 400_000
    held = _Held(ids, table, {1: table.head(10_000)})
    assert memory.size_of(held) >= 800_000 + 400_000 + 80_000
    assert memory.size_of((ids, [table])) >= 1_200_000
    np.save(tmp_path / "ids.npy", ids)  # a mapped index counts too: its pages are in the RSS
    assert memory.size_of(np.load(tmp_path / "ids.npy", mmap_mode="r")) >= 800_000


def test_string_columns_count_their_views() -> None:
    """A String column holds a 16-byte view per row, null or not, which Polars' estimated_size
    leaves out; the sizes must count it, or a budget of 64 MB holds several times that."""
    n = 100_000
    short = pl.DataFrame({"code": pl.Series(["de", "fr", None] * (n // 3 + 1))[:n]})
    empty = pl.DataFrame({"city": pl.Series([None] * n, dtype=pl.String)})
    for frame in (short, empty):
        assert frame.estimated_size() < 16 * n  # what the sizes must not rely on
        assert memory.size_of(frame) >= 16 * n
        assert memory.size_of(frame.to_series()) >= 16 * n
    # and what a frame of them keeps resident is near that, not several times it
    before = _rss_anon()
    kept = [pl.DataFrame({"code": pl.Series([f"v{i % 50}" for i in range(n)])}) for _ in range(20)]
    grown = _rss_anon() - before
    counted = sum(memory.size_of(k) for k in kept)
    assert grown <= 2 * counted, (grown, counted)


def _rss_anon() -> int:
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) * 1024 for line in status if line.startswith("RssAnon"))


REPORTS = ["total", "visitor", "page", "page/entry", "referrer", "country", "browser",
           "platform", "language", "utm/source", "events", "hours", "weekdays",
           "duration/session"]  # fmt: skip
FILTERS: list[dict[str, str]] = [
    {},
    {"tz": "Europe/Berlin"},
    {"path": "/pricing", "include_avg_time_on_page": "true"},
    {"country": "de"},
]


def _reports(data: Path, last: str) -> dict[tuple[str, int], Any]:
    result_cache.clear()  # every report computed, from what the budget kept
    ctx = SimpleNamespace(data_dir=data)
    site = SimpleNamespace(id=SITE, timezone="UTC", group_by_title=False)
    out = {}
    for i, extra in enumerate(FILTERS):
        params = {"id": SITE, "from": FIRST_DAY.isoformat(), "to": last, **extra}
        for name in REPORTS:
            out[(name, i)] = pirsch_stats.run(ctx, name, {k: [v] for k, v in params.items()}, site)
    return out


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six compacted days of stats_gen data, rolled up."""
    data = tmp_path_factory.mktemp("memory") / "data"
    stats_gen.generate(data, 30_000, 6, seed=3)
    after = datetime.combine(FIRST_DAY + timedelta(days=9), datetime.min.time(), UTC)
    compaction.run_round(data, now=after.timestamp(), grace=0)
    return data


def test_answers_are_the_same_whatever_the_budget_keeps(
    month: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    last = (FIRST_DAY + timedelta(days=5)).isoformat()
    answers = {}
    for budget in (512 * memory.MB, 0, 300_000):
        kept = memory.Kept(budget)
        monkeypatch.setattr(memory, "KEPT", kept)
        answers[budget] = [_reports(month, last), _reports(month, last)]  # then from what is kept
        assert kept.used <= budget
        if budget:
            assert kept.entries, "nothing was kept"
        else:
            assert not kept.entries
    first = answers[512 * memory.MB][0]
    assert first[("total", 0)]["visitors"] > 1000  # the data is there, read from rollups
    for budget, runs in answers.items():
        for run in runs:
            diff = [k for k in first if run[k] != first[k]]
            assert not diff, (budget, diff[:3])

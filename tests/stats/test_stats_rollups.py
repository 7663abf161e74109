"""Per-day rollups and counting kernels give exactly the numbers the rows give.

Rollups (trail.storage.rollups) answer unfiltered totals over whole UTC days; the kernels
(trail.stats.kernels) count distinct visitors per group. Each is checked against the plain
Polars answer over the same rows.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from bench.stats_gen import FIRST_DAY, SITE, Generator, write_day
from trail import core
from trail.config import Config
from trail.services import statistics as pirsch_stats
from trail.stats import cache, kernels, rollup_totals
from trail.storage import rollups, tombstones
from trail.storage.daydir import Manifest
from trail.tasks import compaction

DAYS = 3
AFTER = datetime.combine(FIRST_DAY + timedelta(days=DAYS + 2), datetime.min.time(), UTC).timestamp()
REPORTS = ["total", "visitor", "page", "page/entry", "country", "city", "platform", "events",
           "growth", "hours", "hostname", "duration/session"]  # fmt: skip
FILTERS = [
    {},
    {"scale": "week"},
    {"from": "2024-03-02", "to": "2024-03-02"},
    {"tz": "Europe/Berlin"},  # not whole UTC days: the slices at the ends from rows
    {"country": "de"},  # filtered: rows answer, the denominator may come from rollups
    {"search": "blog"},
]


pytestmark = pytest.mark.usefixtures("rollups_on")  # (tests/stats/conftest.py)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rollups")
    g = Generator(page_views=6_000, days=DAYS, seed=11, paths=60)
    for i in range(DAYS):
        write_day(root, i, g.day(i))
    compaction.run_round(root, now=AFTER, grace=0)
    return root


def reports(data_dir: Path) -> dict:
    ctx = SimpleNamespace(data_dir=data_dir, config=Config())
    site = SimpleNamespace(id=SITE, timezone="UTC", group_by_title=False)
    base = {
        "id": SITE,
        "from": FIRST_DAY.isoformat(),
        "to": (FIRST_DAY + timedelta(days=DAYS)).isoformat(),
    }
    out = {}
    for i, extra in enumerate(FILTERS):
        params = {k: [v] for k, v in {**base, **extra}.items()}
        for name in REPORTS:
            out[(name, i)] = pirsch_stats.run(ctx, name, params, site)
    return out


def test_rollups_are_written_and_used(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "CLOSED_AFTER", float("inf"))
    day_dir = data_dir / "segments/sessions" / f"site={SITE}" / f"day={FIRST_DAY.isoformat()}"
    r = Manifest.read(day_dir).rollup
    assert r["version"] == rollups.VERSION and (day_dir / r["file"]).exists()
    # duration/session's denominator: the sessions with a duration, some of them
    assert 0 < r["duration_sessions"] <= r["sessions"]
    ids = np.fromfile(day_dir / r["file"], dtype="<u8")
    assert len(ids) == r["visitors"] > 0 and bool(np.all(ids[1:] > ids[:-1]))
    start = datetime.combine(FIRST_DAY, datetime.min.time(), UTC)
    got = rollups.days_for(data_dir, "sessions", SITE, start, start + timedelta(days=DAYS + 1))
    assert got is not None and len(got) >= DAYS
    # Not whole UTC days: no rollups.
    assert (
        rollups.days_for(
            data_dir, "sessions", SITE, start + timedelta(hours=1), start + timedelta(days=1)
        )
        is None
    )


def test_reports_match_rows(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "CLOSED_AFTER", float("inf"))
    with_rollups = reports(data_dir)
    monkeypatch.setattr(rollups, "ENABLED", False)  # TRAIL_ROLLUPS=off: every report reads rows
    assert reports(data_dir) == with_rollups


def test_new_tombstone_disables_rollups_until_compacted(tmp_path: Path) -> None:
    g = Generator(page_views=1_500, days=1, seed=3, paths=20)
    write_day(tmp_path, 0, g.day(0))
    compaction.run_round(tmp_path, now=AFTER, grace=0)
    start = datetime.combine(FIRST_DAY, datetime.min.time(), UTC)
    window = (start, start + timedelta(days=1))
    assert rollups.days_for(tmp_path, "sessions", SITE, *window) is not None
    ms = int(start.timestamp() * 1000)
    tombstones.add(tmp_path, SITE, tombstones.ALL_TABLES, ms, ms + 3_600_000)
    assert rollups.days_for(tmp_path, "sessions", SITE, *window) is None
    compaction.run_round(tmp_path, now=time.time() + 10, grace=0)
    assert rollups.days_for(tmp_path, "sessions", SITE, *window) is not None


def test_rollup_is_added_to_files_compacted_before_rollups(tmp_path: Path) -> None:
    g = Generator(page_views=1_000, days=1, seed=5, paths=20)
    write_day(tmp_path, 0, g.day(0))
    compaction.run_round(tmp_path, now=AFTER, grace=0)
    day_dir = tmp_path / "segments/sessions" / f"site={SITE}" / f"day={FIRST_DAY.isoformat()}"
    m = Manifest.read(day_dir)
    (day_dir / m.rollup["file"]).unlink()
    m.rollup = {}
    m.write(day_dir)
    summary = compaction.run_round(tmp_path, now=AFTER, grace=0)
    assert [d.action for d in summary.dirs if d.table == "sessions"] == ["rolled_up"]
    assert (day_dir / Manifest.read(day_dir).rollup["file"]).exists()


# -- kernels ----------------------------------------------------------------------------------


def _rows(seed: int, n: int, days: int) -> pl.DataFrame:
    """Rows sorted by (visitor, session) within each "day", visitors shared across days."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(days):
        df = pl.DataFrame(
            {
                "visitor_id": rng.integers(0, 40, n).astype(np.uint64) * np.uint64(2**58 + 7),
                "session_id": rng.integers(0, 3, n).astype(np.uint32),
                "path": rng.choice(["/", "/a", "/b", "/c/d"], n),
                "title": rng.choice(["x", "y"], n),
                # distinct times (no ties), in no particular order
                "time": pl.Series(rng.permutation(10**6)[:n] + 10**12 * (len(parts) + 1)).cast(
                    pl.Datetime("ms", "UTC")
                ),
            }
        )
        parts.append(df.sort("visitor_id", "session_id"))
    parts.append(parts[0].sample(fraction=1.0, shuffle=True, seed=seed))  # an unsorted "segment"
    return pl.concat(parts)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_page_stats_matches_polars(seed: int) -> None:
    df = _rows(seed, 300, 3)
    want = (
        df.group_by("path")
        .agg(
            pl.col("visitor_id").n_unique().cast(pl.Int64).alias("visitors"),
            pl.struct("visitor_id", "session_id").n_unique().cast(pl.Int64).alias("sessions"),
            pl.len().cast(pl.Int64).alias("views"),
            pl.col("title").max_by("time"),  # the latest view's title
        )
        .sort("path")
    )
    got = kernels.page_stats(df.lazy()).sort("path").select(want.columns)
    assert got.equals(want)


def _latest_titles(df: pl.DataFrame) -> dict[str, str]:
    """Per path, the title of the greatest (time, title): the rule the kernel keeps."""
    latest = df.sort("path", "time", "title").group_by("path").agg(pl.col("title").last())
    return dict(latest.iter_rows())


def test_page_stats_title_tie_does_not_depend_on_row_order() -> None:
    # Two views of "/" in the same millisecond with different titles, stored in either order.
    t = datetime(2024, 3, 1, 12, tzinfo=UTC)
    rows = pl.DataFrame(
        {
            "visitor_id": pl.Series([1, 2, 3], dtype=pl.UInt64),
            "session_id": pl.Series([1, 1, 1], dtype=pl.UInt32),
            "path": ["/", "/", "/"],
            "title": ["Older", "Beta", "Alpha"],
            "time": [t - timedelta(seconds=1), t, t],
        }
    )
    for order in ([0, 1, 2], [0, 2, 1], [2, 1, 0], [1, 2, 0]):
        got = kernels.page_stats(rows[order].lazy())
        assert got["title"].to_list() == ["Beta"], order
        assert got["views"].to_list() == [3]


@pytest.mark.parametrize("n", [500, 70_000])  # 70,000: over PARALLEL_MIN, two threads
def test_page_stats_title_ties_match_the_rule(n: int) -> None:
    # Few distinct times, so each path ends on a tie between several titles; any row order.
    rng = np.random.default_rng(n)
    df = pl.DataFrame(
        {
            "visitor_id": np.sort(rng.integers(0, n // 3, n)).astype(np.uint64),
            "session_id": np.ones(n, dtype=np.uint32),
            "path": rng.choice(["/", "/a", "/b"], n),
            "title": rng.choice(["a", "b", "Z", "é", "ab", ""], n),
            "time": pl.Series(rng.integers(0, 20, n) * 1000).cast(pl.Datetime("ms", "UTC")),
        }
    )
    want = _latest_titles(df)
    at_latest = df.filter(pl.col("time") == pl.col("time").max().over("path"))
    assert at_latest.group_by("path").agg(pl.col("title").n_unique())["title"].min() > 1
    for shuffled in (df, df.reverse(), df.sample(fraction=1.0, shuffle=True, seed=1)):
        got = kernels.page_stats(shuffled.lazy())
        assert dict(got.select("path", "title").iter_rows()) == want


@pytest.mark.parametrize("columns", [["path"], ["path", "title"]])
def test_visitors_by_matches_polars(columns: list[str]) -> None:
    df = _rows(9, 200, 4)
    want = df.group_by(columns).agg(
        pl.col("visitor_id").n_unique().cast(pl.Int64).alias("visitors")
    )
    got = kernels.visitors_by(df.lazy(), columns)
    assert got.sort(columns).equals(want.sort(columns).select(got.columns))


@pytest.mark.parametrize(
    ("arrays", "want"),
    [
        ([], 0),
        ([np.array([], dtype=np.uint64)], 0),
        ([np.array([3, 1, 3], dtype=np.uint64)], 2),
        ([np.array([1, 5, 9], dtype=np.uint64), np.array([2, 5, 2**64 - 1], dtype=np.uint64)], 5),
    ],
)
def test_distinct_count(arrays: list[np.ndarray], want: int) -> None:
    assert kernels.distinct_count(arrays) == want


def test_kernels_are_built() -> None:
    """The extension in this venv has the kernels (`make install` after rust_core changes)."""
    assert core.distinct_u64 is not None and core.group_stats is not None


def test_distinct_visitors_follow_replaced_id_files(tmp_path: Path) -> None:
    """The union count of a set of days is remembered only while their id files stay the same."""
    g = Generator(page_views=1_500, days=2, seed=7, paths=20)
    for i in range(2):
        write_day(tmp_path, i, g.day(i))
    compaction.run_round(tmp_path, now=AFTER, grace=0)
    start = datetime.combine(FIRST_DAY, datetime.min.time(), UTC)
    days = rollups.days_for(tmp_path, "sessions", SITE, start, start + timedelta(days=2))
    assert days is not None and len(days) == 2
    union = kernels.distinct_count([d.visitor_ids() for d in days])
    assert rollup_totals.distinct_visitors(days) == union
    assert rollup_totals.distinct_visitors(days) == union
    # One day's file replaced by rename (as compaction writes it), with 3 visitors more.
    path = Path(days[0].file)
    more = np.union1d(np.fromfile(path, dtype="<u8"), np.array([1, 2, 3], dtype="<u8"))
    more.astype("<u8").tofile(path.with_suffix(".new"))
    path.with_suffix(".new").replace(path)
    assert rollup_totals.distinct_visitors(days) == union + 3

"""Breakdowns from the dimension rollups give exactly the rows' answers.

trail.storage.dim_rollups writes, per compacted sessions day, the combinations of dimension
values with their sums and visitor positions; trail.stats.rollup_dims answers breakdowns over
whole UTC days from them, and reads the days without a usable rollup (the live day, a deletion
not compacted yet, a day not compacted yet) from rows. Each case compares every report with the
answer of the rows (TRAIL_ROLLUPS off: rollups.ENABLED).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from segment_rows import rounded

from bench.stats_gen import FIRST_DAY, SITE, Generator, write_day
from trail import core
from trail.config import Config
from trail.services import statistics as pirsch_stats
from trail.stats import cache, kernels, rollup_dims, rollup_totals, rollup_visitors
from trail.stats.filters import parse_filter
from trail.stats.sources import Rows, rows_for
from trail.storage import dim_rollups, rollups, tombstones
from trail.storage.daydir import Manifest
from trail.tasks import compaction

DIMENSIONS = ["country", "region", "city", "language", "browser", "browser/version", "os",
              "os/version", "screen", "channel", "utm/source", "utm/medium", "utm/campaign",
              "utm/content", "utm/term", "referrer", "platform"]  # fmt: skip
OTHERS = ["total", "visitor", "page", "page/entry", "page/exit", "growth"]
FILTERS = [
    {},
    {"search": "e"},
    {"sort": "visitors", "direction": "asc", "limit": "3", "offset": "1"},
    {"tz": "Europe/Berlin"},  # not whole UTC days: the slices at the ends from rows
    {"country": "de"},  # filtered: rows answer
    {"scale": "week"},
]


pytestmark = pytest.mark.usefixtures("rollups_on")  # (tests/stats/conftest.py)


def day_iso(i: int) -> str:
    return (FIRST_DAY + timedelta(days=i)).isoformat()


def closed_after(days: int) -> float:
    """A time at which the first `days` days count as closed for compaction."""
    return datetime.combine(
        FIRST_DAY + timedelta(days=days + 2), datetime.min.time(), UTC
    ).timestamp()


def site_with(tmp: Path, days: int, compacted: int, seed: int = 7) -> Path:
    """`days` generated days, the first `compacted` of them compacted (with rollups)."""
    g = Generator(page_views=3_000, days=days, seed=seed, paths=40)
    frames = [g.day(i) for i in range(days)]
    for i in range(compacted):
        write_day(tmp, i, frames[i])
    if compacted:
        compaction.run_round(tmp, now=closed_after(compacted - 1), grace=0)
    for i in range(compacted, days):
        write_day(tmp, i, frames[i])
    return tmp


def answers(data_dir: Path, first: int, last: int) -> dict:
    ctx = SimpleNamespace(data_dir=data_dir, config=Config())
    site = SimpleNamespace(id=SITE, timezone="UTC", group_by_title=False)
    base = {"id": SITE, "from": day_iso(first), "to": day_iso(last)}
    out = {}
    for i, extra in enumerate(FILTERS):
        params = {k: [v] for k, v in {**base, **extra}.items()}
        for name in [*DIMENSIONS, *OTHERS]:
            out[(name, i)] = pirsch_stats.run(ctx, name, params, site)
    return out


def assert_same_as_rows(data_dir: Path, first: int, last: int, mp: pytest.MonkeyPatch) -> None:
    mp.setattr(cache, "CLOSED_AFTER", float("inf"))
    got = answers(data_dir, first, last)
    with mp.context() as off:
        off.setattr(rollups, "ENABLED", False)
        want = answers(data_dir, first, last)
    for key, value in want.items():
        assert rounded(got[key]) == rounded(value), key
    assert any(v for (name, _), v in want.items() if name == "country")  # not all empty


def rows_of(data_dir: Path, first: int, last: int, **extra: str) -> Rows:
    params = {"id": [SITE], "from": [day_iso(first)], "to": [day_iso(last)]}
    params.update({k: [v] for k, v in extra.items()})
    return rows_for(data_dir, parse_filter(params))


def test_compacted_days_and_a_live_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = site_with(tmp_path, days=4, compacted=3)
    # the rollups answer: 3 closed days, and the 4th (not compacted) from its rows
    for first, last in ((0, 2), (0, 3), (3, 3), (1, 1)):
        assert rollup_dims.grouped(rows_of(data_dir, first, last), ["country_code"]) is not None
        assert rollup_totals.session_totals(rows_of(data_dir, first, last)) is not None
    assert rollup_dims.platform_visitors(rows_of(data_dir, 0, 3)) is not None
    assert rollup_dims.entries(rows_of(data_dir, 0, 3), "exit") is not None
    assert rollup_dims.grouped(rows_of(data_dir, 0, 3, tz="Europe/Berlin"), ["os"]) is not None
    assert rollup_dims.grouped(rows_of(data_dir, 0, 3, country="de"), ["os"]) is None
    for first, last in ((0, 2), (0, 3), (2, 3), (1, 1)):
        assert_same_as_rows(data_dir, first, last, monkeypatch)


def test_fresh_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = site_with(tmp_path, days=3, compacted=0)
    # two days without rollups are read from rows; three are more than MAX_OPEN_DAYS
    assert rollups.MAX_OPEN_DAYS == 2
    assert rollup_dims.grouped(rows_of(data_dir, 0, 1), ["browser"]) is not None
    assert rollup_dims.grouped(rows_of(data_dir, 0, 2), ["browser"]) is None
    assert_same_as_rows(data_dir, 0, 1, monkeypatch)
    assert_same_as_rows(data_dir, 0, 2, monkeypatch)


def test_deletion_before_and_after_compaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = site_with(tmp_path, days=3, compacted=3)
    start = datetime.combine(FIRST_DAY + timedelta(days=1), datetime.min.time(), UTC)
    ms = int(start.timestamp() * 1000)
    tombstones.add(data_dir, SITE, tombstones.ALL_TABLES, ms + 3_600_000, ms + 9 * 3_600_000)
    days = rollups.days_or_gaps(data_dir, "sessions", SITE, start - timedelta(days=1),
                                start + timedelta(days=2))  # fmt: skip
    assert days is not None and [r is None for _, r in days] == [False, True, False]
    assert_same_as_rows(data_dir, 0, 2, monkeypatch)
    compaction.run_round(data_dir, now=closed_after(2) + 10, grace=0)
    assert rollups.days_for(data_dir, "sessions", SITE, start, start + timedelta(days=1))
    assert_same_as_rows(data_dir, 0, 2, monkeypatch)


def test_a_day_missing_its_rollup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = site_with(tmp_path, days=3, compacted=3)
    day_dir = data_dir / "segments/sessions" / f"site={SITE}" / f"day={day_iso(1)}"
    m = Manifest.read(day_dir)
    m.rollup = {}
    m.write(day_dir)
    assert rollups.days_for(data_dir, "sessions", SITE, *rows_of(data_dir, 0, 2).f.window()) is None
    assert rollup_dims.grouped(rows_of(data_dir, 0, 2), ["referrer_name"], sums=True) is not None
    assert_same_as_rows(data_dir, 0, 2, monkeypatch)


def test_rollup_files_are_written_and_named(tmp_path: Path) -> None:
    data_dir = site_with(tmp_path, days=1, compacted=1)
    day_dir = data_dir / "segments/sessions" / f"site={SITE}" / f"day={day_iso(0)}"
    r = Manifest.read(day_dir).rollup
    assert r["version"] == rollups.VERSION
    assert set(rollups.files_of(r)) == {r["file"], r["dims_file"], r["dims_visitors_file"],
                                        r["time_file"], r["time_visitors_file"]}  # fmt: skip
    assert all((day_dir / n).exists() for n in rollups.files_of(r))
    table = pl.read_parquet(day_dir / r["dims_file"])
    deltas = pl.read_parquet(day_dir / r["dims_visitors_file"])["deltas"]
    assert table["visitors"].sum() == len(deltas)
    for set_name, (row, n, first, count) in r["dims_spans"].items():
        rows = table.slice(row, n)
        assert (rows["set"] == dim_rollups.SET_IDS[set_name]).all()
        assert rows["visitors"].sum() == count
    # every set of dimensions covers every visitor of the day; entry and exit hold none
    for set_name, (*_, count) in r["dims_spans"].items():
        assert count == 0 if set_name in dim_rollups.PATH_SETS else count >= r["visitors"]
    # a second round leaves the current rollup alone (and its files in place)
    compaction.run_round(data_dir, now=closed_after(0) + 10, grace=0)
    assert Manifest.read(day_dir).rollup == r and all(
        (day_dir / n).exists() for n in rollups.files_of(r)
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_build_table_matches_polars(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2_000
    visitors = rng.integers(1, 2**63, 300, dtype=np.uint64)
    rows = pl.DataFrame({
        "visitor_id": pl.Series(visitors[rng.integers(0, 300, n)], dtype=pl.UInt64),
        "sign": pl.Series(rng.choice([1, 1, 1, 0, -1], n), dtype=pl.Int8),
        "page_views": pl.Series(rng.integers(1, 5, n), dtype=pl.UInt32),
        "is_bounce": rng.random(n) < 0.3,
        "referrer": rng.choice(["https://a/x", "https://a/y", "https://b/"], n),
        "session_id": pl.Series(rng.integers(0, 2**32, n), dtype=pl.UInt32),
        "version": pl.Series(rng.integers(0, 3, n), dtype=pl.UInt32),
        "time": pl.Series(rng.integers(0, 86_400_000, n)).cast(pl.Datetime("ms", "UTC")),
        **{c: rng.choice(["/", "/a", "/b"], n) for c in ("entry_path", "exit_path")},
        **{c: rng.choice(["A", "B"], n) for c in dim_rollups.PATH_SETS.values()},
    }).with_columns(
        pl.Series(c, rng.choice(["a", "b", "c", None], n).tolist(), dtype=pl.String)
        if dim_rollups.SCHEMA[c] == pl.String()
        else pl.Series(c, rng.random(n) < 0.5)
        for c in dim_rollups.DIM_COLUMNS
    )  # fmt: skip
    ids = np.sort(rows.filter(pl.col("sign") >= 0)["visitor_id"].unique().to_numpy())
    table, deltas = dim_rollups.build_table(rows, ids)
    lens = table["visitors"].to_numpy().astype(np.int64)
    starts = np.cumsum(lens) - lens
    # the columns a reader keeps of a set's rows (set_columns) are all it fills: the rest null
    for set_name, set_id in dim_rollups.SET_IDS.items():
        own = table.filter(pl.col("set") == set_id)
        assert own.height > 0
        others = [c for c in table.columns if c not in dim_rollups.set_columns(set_name)]
        assert [c for c in others if own[c].null_count() < own.height] == [], set_name
    for i in rng.integers(0, table.height, 40):
        r = table.row(int(i), named=True)
        set_name = list(dim_rollups.SETS)[r["set"]]
        cols = dim_rollups.SETS[set_name]
        if set_name in dim_rollups.PATH_SETS:  # live states only, no visitors
            assert lens[i] == 0
            assert r["sessions"] == rows.filter(pl.col(cols[0]) == r[cols[0]])["sign"].sum()
            continue
        positions = np.cumsum(deltas[starts[i] : starts[i] + lens[i]])
        match = pl.all_horizontal(
            pl.col(c).is_null() if r[c] is None else pl.col(c) == r[c] for c in cols
        )
        sel = rows.filter(match)
        want = np.sort(sel.filter(pl.col("sign") >= 0)["visitor_id"].unique().to_numpy())
        assert np.array_equal(ids[positions], want)
        sign = sel["sign"].cast(pl.Int64)
        assert r["sessions"] == sign.sum()
        assert r["views"] == (sel["page_views"].cast(pl.Int64) * sign).sum()
        assert r["bounces"] == (sel["is_bounce"].cast(pl.Int64) * sign).sum()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_visitor_index_counts_like_sets(seed: int) -> None:
    """rollup_visitors: closed days through the index, open days added, against Python sets;
    visitors come back on other days with the same or other combinations."""
    rng = np.random.default_rng(seed)
    pool = rng.integers(1, 2**64, 200, dtype=np.uint64)
    days = []  # (ids, table, deltas, closed)
    for _ in range(5):
        ids = np.unique(rng.choice(pool, 60))
        rows = []
        for combo in range(6):
            members = np.sort(rng.choice(len(ids), int(rng.integers(0, 30)), replace=False))
            rows.append(("abc"[combo % 3], "xy"[combo % 2], members))
        table = pl.DataFrame({"a": [r[0] for r in rows], "b": [r[1] for r in rows],
                              "visitors": [len(r[2]) for r in rows]})  # fmt: skip
        flat = np.concatenate([r[2] for r in rows]).astype(np.int64)
        deltas = dim_rollups._deltas(flat, table["visitors"].to_numpy())
        assert np.array_equal(rollup_visitors.positions(deltas, table["visitors"].to_numpy()), flat)
        days.append((ids, table, deltas, bool(rng.random() < 0.6), rows))
    for columns in (["a"], ["b"], ["a", "b"]):
        table = pl.concat([d[1].with_columns(day=pl.lit(i)) for i, d in enumerate(days)])
        groups = table.select(pl.struct(columns).rank("dense") - 1).to_series().to_numpy()
        groups = groups.astype(np.int64)
        n = int(groups.max()) + 1
        want = [set() for _ in range(n)]
        for g, (day, r) in zip(groups, [(i, r) for i, d in enumerate(days) for r in d[4]]):
            want[g] |= set(days[day][0][r[2]].tolist())
        closed = [d for d in days if d[3]]
        index = None
        if closed:
            union = np.unique(np.concatenate([d[0] for d in closed]))
            g = rollup_visitors.global_ids([d[0] for d in closed], union)
            index = rollup_visitors._build(
                [d[1] for d in closed], [d[2] for d in closed], g, ["a", "b"]
            )
        is_closed = table["day"].is_in([i for i, d in enumerate(days) if d[3]]).to_numpy()
        opened = [(i, d) for i, d in enumerate(days) if not d[3]]
        # as built (int32 combinations) and as kept in the index files (int16)
        small = index and replace(index, combo_of=index.combo_of.astype(np.int16),
                                  multi_combos=index.multi_combos.astype(np.int16))  # fmt: skip
        for each in (index, small):
            got = rollup_visitors.count(
                each, groups[is_closed], n,
                [d[0] for _, d in opened],
                [rollup_visitors.positions(d[2], d[1]["visitors"].to_numpy()) for _, d in opened],
                [np.repeat(groups[(table["day"] == i).to_numpy()], d[1]["visitors"].to_numpy())
                 for i, d in opened],
            )  # fmt: skip
            assert got.tolist() == [len(w) for w in want]


def test_run_group_counts_rejects_arrays_that_do_not_fit() -> None:
    visitors, combos = np.array([1, 1, 2], np.int32), np.array([0, 1, 1], np.int16)
    combo_group = np.array([0, 1], np.int64)
    assert core.run_group_counts(visitors, combos, combo_group, 2) == [1, 2]
    assert np.frombuffer(
        core.runs_have(
            visitors, combos, combo_group, np.array([1, 2, 2, 3]), np.array([0, 0, 1, 1])
        ),
        dtype=bool,
    ).tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match="sorted"):
        core.run_group_counts(visitors[::-1].copy(), combos, combo_group, 2)
    with pytest.raises(ValueError, match="no group"):
        core.run_group_counts(visitors, np.array([0, 1, 2], np.int32), combo_group, 2)
    with pytest.raises(ValueError, match="not below"):
        core.run_group_counts(visitors, combos, combo_group, 1)
    with pytest.raises(ValueError, match="length"):
        core.run_group_counts(visitors[:2], combos, combo_group, 2)


@pytest.mark.parametrize(("value", "enabled"), [("off", False), ("0", False), ("on", True)])
def test_rollups_switch(value: str, enabled: bool) -> None:
    """TRAIL_ROLLUPS=off: no report reads a rollup (the differential tests run both ways)."""
    code = "from trail.storage import rollups; print(rollups.ENABLED)"
    env = {**os.environ, "TRAIL_ROLLUPS": value}
    run = [sys.executable, "-c", code]
    out = subprocess.run(run, env=env, capture_output=True, text=True, check=False)
    assert out.stdout.strip() == str(enabled), out.stderr


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_search_sorted_like_numpy(seed: int) -> None:
    """kernels.search_sorted answers as numpy.searchsorted for ids in ascending runs, sorted,
    in any order, absent or present, past both ends."""
    rng = np.random.default_rng(seed)
    haystack = np.unique(rng.integers(10, 2**64 - 10, 5000, dtype=np.uint64))
    present = rng.choice(haystack, 3000)
    absent = rng.integers(0, 2**64, 3000, dtype=np.uint64)
    ends = np.array([0, 1, 2**64 - 1, haystack[0], haystack[-1]], dtype=np.uint64)
    runs = np.concatenate([np.sort(present[:1500]), np.sort(absent[:1500]), present[1500:]])
    for ids in (runs, np.sort(np.concatenate([present, absent])), absent, ends):
        want = np.searchsorted(haystack, ids)
        assert kernels.search_sorted(haystack, ids).tolist() == want.tolist()
    assert kernels.search_sorted(haystack[:0], ends).tolist() == [0] * len(ends)

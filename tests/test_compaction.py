"""Compaction: every report identical before and after, late rows merged, grace-period deletion,
pending WAL generations left alone, tombstones applied, result cache invalidated by new files."""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

from bench import stats_gen
from bench.stats_gen import FIRST_DAY, SITE, Generator, write_day
from trail.services import statistics as pirsch_stats
from trail.stats.filters import FilterError
from trail.storage import tombstones
from trail.storage.daydir import MANIFEST, Manifest, list_day
from trail.storage.schema import TABLES
from trail.tasks import compaction

DAYS = 3
LAST = FIRST_DAY + timedelta(days=DAYS)  # sessions of the last day spill into this one
AFTER = datetime.combine(LAST + timedelta(days=2), datetime.min.time(), UTC).timestamp()

# Reports that read "now" or need a context (goals, funnels) are not compared here.
SKIP = {"active", "growth"}
FILTERS: list[dict[str, str]] = [
    {},
    {"tz": "America/New_York"},
    {"tz": "Asia/Kathmandu", "scale": "week"},
    {"path": "~blog", "include_avg_time_on_page": "true"},
    {"country": "de"},
    {"referrer_name": "Google", "platform": "mobile"},
    {
        "event": "signup",
        "event_meta_key": "plan",
        "custom_metric_key": "amount",
        "custom_metric_type": "integer",
    },
    {"exit_path": "/docs"},
    {"tag": "author"},
    {"from": "2024-03-02", "to": "2024-03-02", "from_time": "10:15", "to_time": "13:44"},
]


def base_params() -> dict[str, str]:
    return {"id": SITE, "from": FIRST_DAY.isoformat(), "to": LAST.isoformat()}


def all_reports(
    data_dir: Path, filters: list[dict[str, str]] = FILTERS
) -> dict[tuple[str, int], Any]:
    ctx = SimpleNamespace(data_dir=data_dir)
    site = SimpleNamespace(id=SITE, timezone="UTC", group_by_title=False)
    out: dict[tuple[str, int], Any] = {}
    for i, extra in enumerate(filters):
        params = {k: [v] for k, v in {**base_params(), **extra}.items()}
        for name in pirsch_stats.REPORTS:
            if name in SKIP:
                continue
            try:
                out[(name, i)] = pirsch_stats.run(ctx, name, params, site)
            except FilterError as e:
                out[(name, i)] = ("FilterError", str(e))
    return out


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, (int, float))
            and isinstance(b, (int, float))
            and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _comparable(key: tuple[str, int], value: Any) -> Any:
    # event/list orders ties by row order (no tie-break field), so which of several equal rows
    # survives the limit depends on the file layout; its ranking numbers are still exact.
    if key[0] == "event/list" and isinstance(value, list):
        return [(r["visitors"], r["count"]) for r in value]
    return value


def assert_same_reports(before: dict, after: dict) -> None:
    diffs = [k for k in before if not same(_comparable(k, before[k]), _comparable(k, after[k]))]
    assert not diffs, (
        f"{len(diffs)} reports differ, e.g. {diffs[0]}: {before[diffs[0]]!r:.600} != {after[diffs[0]]!r:.600}"
    )


def files(data_dir: Path, table: str, day: date) -> list[str]:
    d = data_dir / "segments" / table / f"site={SITE}" / f"day={day.isoformat()}"
    return sorted(os.listdir(d)) if d.is_dir() else []


def generated(factory: pytest.TempPathFactory, name: str, seed: int) -> Path:
    """~20k page views over DAYS days, as the WAL sealer would leave them (uncompacted)."""
    root = factory.mktemp(name) / "pristine"
    g = Generator(page_views=20_000, days=DAYS, seed=seed, paths=150)
    for i in range(DAYS):
        write_day(root, i, g.day(i))
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated(tmp_path_factory, "compaction", 7)


def copied(dataset: Path, tmp_path: Path) -> Path:
    """A copy of the data set for one test."""
    shutil.copytree(dataset, tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def data_dir(dataset: Path, tmp_path: Path) -> Path:
    return copied(dataset, tmp_path)


def test_every_report_is_identical_after_compaction(data_dir: Path) -> None:
    before = all_reports(data_dir)
    assert before[("total", 0)]["views"] > 15_000  # the data is really there
    summary = compaction.run_round(data_dir, now=AFTER, grace=3600)
    assert summary.as_dict()["compacted_dirs"] >= 3 * DAYS
    # Sessions shrink: cancelled states are dropped except one per (session, minute).
    sess = [d for d in summary.dirs if d.table == "sessions"]
    assert sum(d.rows_out for d in sess) < sum(d.rows_in for d in sess)
    for d in sess:
        names = files(data_dir, "sessions", date.fromisoformat(d.day))
        arrow, parquet = list_day(data_dir / "segments/sessions" / f"site={SITE}" / f"day={d.day}")
        assert not arrow and len(parquet) == 1, names
    after = all_reports(data_dir)
    assert_same_reports(before, after)


def test_compacted_columns_use_the_chosen_encodings(data_dir: Path) -> None:
    """Identifiers PLAIN, times and counters split into byte planes, strings in dictionaries;
    the file reads back with the table's schema (Polars and DuckDB both read these encodings)."""
    import pyarrow.parquet as pq

    compaction.run_round(data_dir, now=AFTER, grace=3600)
    day_dir = data_dir / "segments/sessions" / f"site={SITE}" / f"day={FIRST_DAY.isoformat()}"
    _, parquet = list_day(day_dir)
    meta = pq.ParquetFile(day_dir / parquet[0]).metadata
    chunks = {
        meta.schema.column(i).name: meta.row_group(0).column(i) for i in range(meta.num_columns)
    }
    assert "PLAIN" in chunks["visitor_id"].encodings
    assert not chunks["visitor_id"].has_dictionary_page
    assert not chunks["start"].has_dictionary_page
    assert "BYTE_STREAM_SPLIT" in chunks["time"].encodings
    assert "BYTE_STREAM_SPLIT" in chunks["duration_seconds"].encodings
    assert chunks["entry_path"].has_dictionary_page
    assert chunks["time"].statistics.has_min_max  # row-group pruning still works
    df = pl.read_parquet(day_dir / parquet[0])
    assert df.schema == pl.Schema(TABLES["sessions"])
    assert df.height > 0


def test_collapse_keeps_net_signs_and_presence() -> None:
    t = lambda s: datetime(2024, 3, 1, 10, 0, 0, tzinfo=UTC) + timedelta(seconds=s)
    rows = [
        # session 1: states at 0 s, 20 s (same minute), 70 s (final); cancels for 1 and 2.
        (1, 1, 1, t(0), 1), (1, 1, 1, t(0), -1), (1, 1, 2, t(20), 1), (1, 1, 2, t(20), -1),
        (1, 1, 3, t(70), 1),
        # session 2: an orphan cancel whose +1 is in another file not merged yet.
        (2, 5, 4, t(5), -1),
    ]  # fmt: skip
    df = pl.DataFrame(
        rows, schema=["visitor_id", "session_id", "version", "time", "sign"], orient="row"
    ).with_columns(pl.col("sign").cast(pl.Int8))
    out = compaction.collapse_sessions(df).sort(["visitor_id", "version", "sign"])
    got = [(r["visitor_id"], r["version"], r["sign"]) for r in out.iter_rows(named=True)]
    # state 1 is the earliest of minute 10:00 -> kept as one presence row (sign 0); state 2
    # dropped; state 3 live.
    assert got == [(1, 1, 0), (1, 3, 1), (2, 4, -1)]
    # A second round reads the presence row back (a state with net 0) and keeps it as it is;
    # the orphan cancel meets its +1 and both go.
    late = pl.DataFrame(
        [(2, 5, 4, t(5), 1), (2, 5, 5, t(9), 1)],
        schema=["visitor_id", "session_id", "version", "time", "sign"],
        orient="row",
    ).with_columns(pl.col("sign").cast(pl.Int8))
    again = compaction.collapse_sessions(pl.concat([out, late])).sort(["visitor_id", "version"])
    got = [(r["visitor_id"], r["version"], r["sign"]) for r in again.iter_rows(named=True)]
    assert got == [(1, 1, 0), (1, 3, 1), (2, 4, 0), (2, 5, 1)]


def test_late_rows_are_merged_by_the_next_round(data_dir: Path) -> None:
    compaction.run_round(data_dir, now=AFTER, grace=3600)
    day = FIRST_DAY + timedelta(days=1)
    mid = compaction.compact_day  # the TinyTrail admin entry point, same machinery
    before = all_reports_small(data_dir)
    # A late batch: one new session with two page views on a compacted day.
    d = data_dir / "segments"
    t0 = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=5)
    late = _late_session(t0)
    for table, df in late.items():
        df.write_ipc(d / table / f"site={SITE}" / f"day={day.isoformat()}" / "w3-g999-0.arrow")
    with_late = all_reports_small(data_dir)
    tot0, tot1 = before[("total", 0)], with_late[("total", 0)]
    assert (tot1["views"], tot1["sessions"]) == (tot0["views"] + 2, tot0["sessions"] + 1)
    summary = mid(data_dir, day, now=AFTER, grace=3600)
    assert summary["compacted_dirs"] == 2  # sessions and page_views of that day
    names = files(data_dir, "sessions", day)
    assert "w3-g999-0.arrow" in names and "part-2.parquet" in names  # replaced, still in grace
    m = Manifest.read(d / "sessions" / f"site={SITE}" / f"day={day.isoformat()}")
    assert m.live == ["part-2.parquet"] and m.replaced["part-1.parquet"]["by"] == "part-2.parquet"
    assert_same_reports(with_late, all_reports_small(data_dir))


def _late_session(t0: datetime) -> dict[str, pl.DataFrame]:
    base = {c: None for c in TABLES["sessions"]}
    s1 = {**base, "sign": 1, "version": 1, "visitor_id": 77, "session_id": 9, "time": t0,
          "start": t0, "duration_seconds": 0, "is_bounce": True, "page_views": 1,
          "entry_path": "/late", "exit_path": "/late", "country_code": "de",
          "desktop": True, "mobile": False}  # fmt: skip
    t1 = t0 + timedelta(seconds=90)
    s2 = {
        **s1,
        "version": 2,
        "time": t1,
        "duration_seconds": 90,
        "is_bounce": False,
        "page_views": 2,
    }
    sessions = [s1, {**s1, "sign": -1}, s2]
    pvb = {c: None for c in TABLES["page_views"]}
    pv = [
        {**pvb, "visitor_id": 77, "session_id": 9, "time": t0, "duration_seconds": 0, "path": "/late",
         "tag_keys": [], "tag_values": [], "country_code": "de", "desktop": True, "mobile": False},
        {**pvb, "visitor_id": 77, "session_id": 9, "time": t1, "duration_seconds": 90, "path": "/late",
         "tag_keys": [], "tag_values": [], "country_code": "de", "desktop": True, "mobile": False},
    ]  # fmt: skip
    fill = lambda t: {c: ("" if dt == pl.String() else None) for c, dt in TABLES[t].items()}
    out = {}
    for table, rows in (("sessions", sessions), ("page_views", pv)):
        rows = [{k: (fill(table)[k] if v is None else v) for k, v in r.items()} for r in rows]
        out[table] = pl.DataFrame(rows, schema=TABLES[table])
    return out


def test_replaced_files_are_deleted_after_the_grace_period(data_dir: Path) -> None:
    day = FIRST_DAY
    compaction.compact_day(data_dir, day, now=AFTER, grace=60)
    names = files(data_dir, "page_views", day)
    arrows = [n for n in names if n.endswith(".arrow")]
    assert arrows and "part-1.parquet" in names  # still there: a running query may read them
    # Readers already skip them.
    arrow, parquet = list_day(data_dir / "segments/page_views" / f"site={SITE}" / f"day={day}")
    assert arrow == [] and [Path(p).name for p in parquet] == ["part-1.parquet"]
    compaction.run_round(data_dir, now=AFTER + 30, grace=60)
    assert [n for n in files(data_dir, "page_views", day) if n.endswith(".arrow")] == arrows
    compaction.run_round(data_dir, now=AFTER + 61, grace=60)
    left = files(data_dir, "page_views", day)
    assert not [n for n in left if n.endswith(".arrow")]
    assert (
        Manifest.read(data_dir / "segments/page_views" / f"site={SITE}" / f"day={day}").replaced
        == {}
    )
    assert MANIFEST in left


def test_open_days_and_pending_wal_generations_are_left_alone(data_dir: Path) -> None:
    day = FIRST_DAY
    day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    assert compaction.compact_day(data_dir, day, now=day_end + 60)["compacted_dirs"] == 0
    # A WAL file still exists for one generation: its segments wait for the next round.
    name = next(n for n in files(data_dir, "sessions", day) if n.endswith(".arrow"))
    worker, gen = name.split("-")[0][1:], name.split("-")[1][1:]
    (data_dir / "wal").mkdir()
    (data_dir / "wal" / f"worker-{worker}-{gen}.wal").write_bytes(b"")
    s = compaction.compact_day(data_dir, day, now=AFTER, grace=3600)
    assert s["deferred_files"] >= 1
    arrow, _ = list_day(data_dir / "segments/sessions" / f"site={SITE}" / f"day={day}")
    assert [Path(a).name for a in arrow] == [name]
    before = all_reports_small(data_dir)
    (data_dir / "wal" / f"worker-{worker}-{gen}.wal").unlink()
    compaction.run_round(data_dir, now=AFTER, grace=3600)
    arrow, parquet = list_day(data_dir / "segments/sessions" / f"site={SITE}" / f"day={day}")
    assert arrow == [] and [Path(p).name for p in parquet] == ["part-2.parquet"]
    assert_same_reports(before, all_reports_small(data_dir))


def all_reports_small(data_dir: Path) -> dict:
    ctx = SimpleNamespace(data_dir=data_dir)
    site = SimpleNamespace(id=SITE, timezone="UTC", group_by_title=False)
    params = {k: [v] for k, v in base_params().items()}
    return {
        (n, 0): pirsch_stats.run(ctx, n, params, site)
        for n in ("total", "visitor", "page", "page/exit", "hours", "country")
    }


def test_tombstones_hide_rows_and_compaction_removes_them(data_dir: Path) -> None:
    day = FIRST_DAY + timedelta(days=1)
    start = int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)
    before = all_reports_small(data_dir)
    tombstones.add(data_dir, SITE, tombstones.ALL_TABLES, start, start + 86_400_000)
    hidden = all_reports_small(data_dir)
    assert hidden[("total", 0)]["views"] < before[("total", 0)]["views"]
    day_rows = [r for r in hidden[("visitor", 0)] if r["day"].startswith(day.isoformat())]
    assert day_rows[0]["views"] == 0 and day_rows[0]["visitors"] == 0
    compaction.run_round(data_dir, now=time.time() + 10, grace=0)
    assert_same_reports(hidden, all_reports_small(data_dir))
    # Physically gone: the day's parquet has no rows of the deleted range.
    _, parquet = list_day(data_dir / "segments/page_views" / f"site={SITE}" / f"day={day}")
    assert pl.read_parquet(parquet[0]).height == 0
    # A late WAL replay of rows from the deleted range (time before the deletion) stays deleted.
    late = _late_session(datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=3))
    for table, df in late.items():
        df.write_ipc(
            data_dir / "segments" / table / f"site={SITE}" / f"day={day}" / "w5-g1-0.arrow"
        )
    assert_same_reports(hidden, all_reports_small(data_dir))
    compaction.run_round(data_dir, now=time.time() + 10, grace=0)
    assert_same_reports(hidden, all_reports_small(data_dir))


def test_result_cache_serves_closed_days_and_sees_new_files(data_dir: Path) -> None:
    from trail.stats import cache

    cache.clear()
    # The cache trusts only directories that have been quiet for a moment: the data set may
    # have been written a second ago, so it is aged first.
    old = time.time() - 60
    for d in [data_dir, *(p for p in data_dir.rglob("*") if p.is_dir())]:
        os.utime(d, (old, old))
    ctx = SimpleNamespace(data_dir=data_dir)
    site = SimpleNamespace(id=SITE, timezone="UTC", group_by_title=False)
    params = {k: [v] for k, v in base_params().items()}
    hits0 = cache.stats["hits"]
    first = pirsch_stats.run(ctx, "total", params, site)
    assert pirsch_stats.run(ctx, "total", params, site) == first
    assert cache.stats["hits"] == hits0 + 1
    # A late segment lands in a closed day: the directory's mtime changes, the entry is not used.
    day = FIRST_DAY + timedelta(days=1)
    t0 = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=5)
    old = time.time() - 60
    for table, df in _late_session(t0).items():
        d = data_dir / "segments" / table / f"site={SITE}" / f"day={day.isoformat()}"
        df.write_ipc(d / "w3-g999-0.arrow")
        os.utime(d, (old, old))  # quiet for a while, so the new state is cacheable again
    second = pirsch_stats.run(ctx, "total", params, site)
    assert second["views"] == first["views"] + 2
    assert pirsch_stats.run(ctx, "total", params, site) == second
    assert cache.stats["hits"] == hits0 + 2
    # Today is never cached.
    today = datetime.now(UTC).date().isoformat()
    misses = cache.stats["uncacheable"]
    pirsch_stats.run(ctx, "total", {"id": [SITE], "from": [today], "to": [today]}, site)
    assert cache.stats["uncacheable"] == misses + 1


# -- damaged data -------------------------------------------------------------------------------

BAD = "bad-site"
YEAR_0_MS = -62_167_219_200_000  # 0000-01-01T00:00:00Z
YEAR_9999_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z


def _stamped(ms: int) -> dict[str, pl.DataFrame]:
    """The first session and page view row of _late_session with the time `ms`."""
    rows = _late_session(datetime.combine(FIRST_DAY, datetime.min.time(), UTC))
    t = pl.lit(ms, pl.Int64).cast(pl.Datetime("ms", "UTC"))
    return {table: df.head(1).with_columns(time=t) for table, df in rows.items()}


def _segment(data_dir: Path, site: str, day: str, name: str, frames: dict[str, Any]) -> None:
    for table, df in frames.items():
        d = data_dir / "segments" / table / f"site={site}" / f"day={day}"
        d.mkdir(parents=True, exist_ok=True)
        df.write_ipc(d / name)


def _bad_site_reports(data_dir: Path) -> dict[str, Any]:
    ctx = SimpleNamespace(data_dir=data_dir)
    site = SimpleNamespace(id=BAD, timezone="UTC", group_by_title=False)
    out = {}
    for frm, to in ((FIRST_DAY.isoformat(),) * 2, ("0001-01-01", FIRST_DAY.isoformat())):
        params = {"id": [BAD], "from": [frm], "to": [to]}
        for name in ("total", "page", "session/list", "hours", "growth"):
            out[f"{name} {frm}"] = pirsch_stats.run(ctx, name, params, site)
    return out


def test_damaged_rows_and_files_do_not_stop_the_round(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    g = Generator(page_views=600, days=2, seed=11, paths=20)
    for i in range(2):
        write_day(tmp_path, i, g.day(i))  # the good site, SITE
    day, next_day = FIRST_DAY.isoformat(), (FIRST_DAY + timedelta(days=1)).isoformat()
    t0 = datetime.combine(FIRST_DAY, datetime.min.time(), UTC) + timedelta(hours=5)
    # The bad site: one real session, rows in year 0 and 9999 filed under that day, directories
    # named after those years, and a segment nothing can read on the next day.
    _segment(tmp_path, BAD, day, "w0-g1-0.arrow", _late_session(t0))
    _segment(tmp_path, BAD, day, "w0-g1-1.arrow", _stamped(YEAR_0_MS))
    _segment(tmp_path, BAD, day, "w0-g1-2.arrow", _stamped(YEAR_9999_MS))
    _segment(tmp_path, BAD, "9999-12-31", "w0-g1-0.arrow", _stamped(YEAR_9999_MS))
    _segment(tmp_path, BAD, "0000-01-01", "w0-g1-0.arrow", _stamped(YEAR_0_MS))
    broken = tmp_path / "segments/page_views" / f"site={BAD}" / f"day={next_day}"
    broken.mkdir(parents=True)
    (broken / "w0-g1-0.arrow").write_bytes(b"ARROW1\x00\x00 cut short")

    before = _bad_site_reports(tmp_path)  # rows outside their day are never read
    assert before[f"total {day}"]["views"] == 2 and before["total 0001-01-01"]["sessions"] == 1
    assert [s["visitor_id"] for s in before[f"session/list {day}"]] == ["77"]

    with caplog.at_level(logging.WARNING, logger="trail.compaction"):
        summary = compaction.run_round(tmp_path, now=AFTER, grace=0)
    by = {(d.site, d.table, d.day): d for d in summary.dirs}
    good = [d for d in summary.dirs if d.site == SITE]
    assert len(good) >= 4 and all(d.action == "compacted" for d in good)
    # Rows outside the directory's day are dropped (and counted); year 9999 is never closed and
    # year 0 has no date: both left alone.
    assert by[(BAD, "sessions", day)].action == "compacted"
    assert by[(BAD, "sessions", day)].out_of_day == 2
    assert not [k for k in by if k[2] not in (day, next_day) and k[0] == BAD]
    # The unreadable segment: its directory failed, with the error, logged with its path.
    failed = by[(BAD, "page_views", next_day)]
    assert failed.action == "failed" and failed.error
    assert summary.as_dict()["failed_dirs"] == 1
    assert summary.as_dict()["failures"][0]["day"] == next_day
    assert str(broken) in caplog.text
    assert _bad_site_reports(tmp_path) == before

    # Not tried again every round...
    assert compaction.run_round(tmp_path, now=AFTER, grace=0).dirs == []
    # ...until its files change.
    (broken / "w0-g1-0.arrow").unlink()
    late = _late_session(t0 + timedelta(days=1))
    late["page_views"].write_ipc(broken / "w0-g2-0.arrow")
    again = {
        (d.site, d.table, d.day): d.action for d in compaction.run_round(tmp_path, now=AFTER).dirs
    }
    assert again == {(BAD, "page_views", next_day): "compacted"}


def test_far_days_are_answered(tmp_path: Path) -> None:
    """The admin aggregation of any date: a day that cannot close, one long gone."""
    assert compaction.compact_day(tmp_path, date.max)["skipped"] == "day not closed yet"
    assert compaction.compact_day(tmp_path, date.min)["compacted_dirs"] == 0


def test_parts_from_before_day_checks_are_checked_once(tmp_path: Path) -> None:
    """A part compacted before `day_only` existed: its times are read once; a part with rows
    outside its day is rewritten without them."""
    day = FIRST_DAY.isoformat()
    t0 = datetime.combine(FIRST_DAY, datetime.min.time(), UTC) + timedelta(hours=5)
    for site, extra in ((SITE, {}), (BAD, _stamped(YEAR_9999_MS))):
        for table, df in _late_session(t0).items():
            d = tmp_path / "segments" / table / f"site={site}" / f"day={day}"
            d.mkdir(parents=True)
            rows = pl.concat([df, extra[table]]) if extra else df
            rows.write_parquet(d / "part-1.parquet")
            Manifest(live=["part-1.parquet"]).write(d)
    params = {"id": [BAD], "from": [day], "to": [day]}
    ctx, bad = SimpleNamespace(data_dir=tmp_path), SimpleNamespace(id=BAD, timezone="UTC")
    assert pirsch_stats.run(ctx, "total", params, bad)["views"] == 2  # the row is not read
    round_ = compaction.run_round(tmp_path, now=AFTER, grace=0)
    actions = {(d.site, d.table): d.action for d in round_.dirs}
    assert actions[(BAD, "page_views")] == "compacted"  # rewritten
    assert actions[(SITE, "page_views")] == "rolled_up"  # checked, then given its rollup
    for site, part in ((SITE, "part-1.parquet"), (BAD, "part-2.parquet")):
        d = tmp_path / "segments/page_views" / f"site={site}" / f"day={day}"
        m = Manifest.read(d)
        assert m.day_only and m.live == [part] and pl.read_parquet(d / part).height == 2
    assert pirsch_stats.run(ctx, "total", params, bad)["views"] == 2
    assert compaction.run_round(tmp_path, now=AFTER + 3600).dirs == []


def test_part_checks_are_spread_over_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compaction, "CHECKS_PER_ROUND", 1)
    t0 = datetime.combine(FIRST_DAY, datetime.min.time(), UTC) + timedelta(hours=5)
    for site in (SITE, BAD):
        d = tmp_path / "segments/requests" / f"site={site}" / f"day={FIRST_DAY.isoformat()}"
        d.mkdir(parents=True)
        rows = {c: [None] for c in TABLES["requests"]} | {"time": [t0], "path": ["/"]}
        pl.DataFrame(rows, schema=TABLES["requests"]).write_parquet(d / "part-1.parquet")
        Manifest(live=["part-1.parquet"]).write(d)
    rounds = [compaction.run_round(tmp_path, now=AFTER).dirs for _ in range(3)]
    assert [[(d.site, d.action) for d in r] for r in rounds] == [
        [(BAD, "checked")],
        [(SITE, "checked")],
        [],
    ]


def test_a_report_planned_before_compaction_deleted_its_files_is_planned_again(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query lists a day's segment files; compaction (no grace period) replaces and deletes
    them before they are read; the report plans again over the new parquet file and answers the
    same numbers instead of failing."""
    from trail.stats import cache, open_days, scan

    monkeypatch.setattr(cache, "CLOSED_AFTER", 1e12)  # no answer from the result cache
    params = {"id": [SITE], "from": [FIRST_DAY.isoformat()], "to": [FIRST_DAY.isoformat()]}
    ctx = SimpleNamespace(data_dir=data_dir)
    site = SimpleNamespace(id=SITE, timezone="UTC", group_by_title=False)
    expected = pirsch_stats.run(ctx, "total", params, site)
    open_days.clear()  # nor from the live day's remembered sums: the report lists files again
    listed = scan.read_day
    compacted: list[dict[str, Any]] = []

    def list_then_compact(day_dir: Path) -> Any:
        listing = listed(day_dir)
        if not compacted and listing.arrow:
            compacted.append(compaction.compact_day(data_dir, FIRST_DAY, now=AFTER, grace=0))
        return listing

    monkeypatch.setattr(scan, "read_day", list_then_compact)
    assert pirsch_stats.run(ctx, "total", params, site) == expected
    assert compacted and compacted[0]["files_replaced"] > 0 and compacted[0]["purged_files"] > 0


def test_generating_with_compaction_day_by_day_leaves_what_compacting_afterwards_does(
    tmp_path: Path,
) -> None:
    """bench.stats_gen --compact (how the 100M set fits on disk) compacts each day once the next
    is written: the reports are those of the rows as written, and no day is left to compact."""
    stats_gen.generate(tmp_path / "rows", 20_000, DAYS, seed=11)
    stats_gen.generate(tmp_path / "compacted", 20_000, DAYS, seed=11, compact=True)
    for table in ("sessions", "page_views", "events"):
        for i in range(DAYS + 1):
            names = files(tmp_path / "compacted", table, FIRST_DAY + timedelta(days=i))
            assert names or i == DAYS, (table, i)  # the day after: only what runs into it
            assert not [n for n in names if n.endswith(".arrow")], (table, i, names)
    left = compaction.run_round(tmp_path / "compacted", now=AFTER, grace=0).as_dict()
    assert left["compacted_dirs"] == 0 and left["failed_dirs"] == 0, left
    some = FILTERS[:4]
    assert_same_reports(
        all_reports(tmp_path / "rows", some), all_reports(tmp_path / "compacted", some)
    )

"""Page rollups (trail.storage.page_rollups) give exactly the /statistics/page the rows give.

Sessions cross midnight and view the same page on both days (what `carried` corrects) or pass
midnight between two views (whose time on page counts only when both days are in the window),
titles change, windows start on either day; a day with late rows, a replaced sessions rollup or an
inconsistent rollup is read from its rows (and the day after it takes its `carried` columns from
the rows: they came from the replaced part) until the maintenance round has rebuilt what changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segment_rows import SITE, SiteData, compacted, hit_times

from trail.stats import pages, rollup_pages
from trail.stats.filters import parse_filter
from trail.stats.sources import rows_for
from trail.storage import rollups, tombstones
from trail.storage.daydir import Manifest
from trail.tasks import compaction

NOW = datetime(2024, 3, 20, tzinfo=UTC)
AFTER = datetime(2024, 3, 15, tzinfo=UTC).timestamp()
BASE = datetime(2024, 3, 10, 23, 0, tzinfo=UTC)  # sessions cross into 2024-03-11
PATHS = ["/", "/a", "/b"]
WINDOWS = [("2024-03-10", "2024-03-12"), ("2024-03-11", "2024-03-12"), ("2024-03-10", "2024-03-10")]

visit = st.tuples(
    st.integers(1, 4),  # visitor
    st.lists(st.tuples(st.integers(0, 1700), st.sampled_from(PATHS)), min_size=1, max_size=5),
    st.integers(0, 30),  # start, in 5-minute steps from 23:00
)


pytestmark = pytest.mark.usefixtures("rollups_on")  # (tests/stats/conftest.py)


@contextmanager
def site(visits: list) -> Iterator[Path]:
    """The visits as compacted segments in a temporary data dir, removed afterwards."""

    def fill(data: SiteData) -> None:
        for session_id, (visitor_id, hits, start) in enumerate(visits, start=1):
            data.visit(visitor_id, session_id, hit_times(BASE + timedelta(minutes=5 * start), hits))
        # Titles change over time: the report shows the latest view's.
        for i, row in enumerate(data.rows["page_views"]):
            row["title"] = f"{row['path']} v{i % 3}"

    with compacted("trail-pages-", AFTER, fill) as data:
        yield data.data_dir


def page_report(
    data_dir: Path, frm: str, to: str, *, use_rollups: bool, report: str = "page"
) -> list[dict]:
    """/statistics/page (or page/entry) with the average time on page."""
    params = {"id": [SITE], "from": [frm], "to": [to], "limit": ["100"],
              "include_avg_time_on_page": ["true"]}  # fmt: skip
    f = parse_filter(params, now=NOW)
    run = pages.page if report == "page" else pages.entry_pages
    if use_rollups:
        assert rollup_pages.page_stats(rows_for(data_dir, f)) is not None, "rollups not used"
        return run(data_dir, f)
    original = rollup_pages.page_stats
    rollup_pages.page_stats = lambda rows: None  # type: ignore[assignment]
    try:
        return run(data_dir, f)
    finally:
        rollup_pages.page_stats = original  # type: ignore[assignment]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(visit, min_size=1, max_size=7))
def test_page_from_rollups_equals_rows(visits: list) -> None:
    with site(visits) as data_dir:
        for frm, to in WINDOWS:
            for report in ("page", "page/entry"):
                assert_same(
                    page_report(data_dir, frm, to, use_rollups=True, report=report),
                    page_report(data_dir, frm, to, use_rollups=False, report=report),
                )


def assert_same(got: list[dict], want: list[dict]) -> None:
    """Equal, except that ratios may differ in the last bit: Polars divides a column by a
    scalar through a reciprocal on some frame layouts (3 / 10 -> 0.30000000000000004)."""
    assert [{k: v for k, v in r.items() if not isinstance(v, float)} for r in got] == [
        {k: v for k, v in r.items() if not isinstance(v, float)} for r in want
    ]
    for g, w in zip(got, want, strict=True):
        for k, v in w.items():
            if isinstance(v, float):
                assert g[k] == pytest.approx(v, rel=1e-12, abs=1e-15), k


def test_a_session_across_midnight_is_one_session_of_its_page() -> None:
    # One session: "/" at 23:50 and 00:10, then "/a"; a second visitor views "/" after midnight.
    visits = [(1, [(600 + 2400, "/"), (1200, "/"), (60, "/a")], 0), (2, [(4000, "/")], 0)]
    with site(visits) as data_dir:
        both = {p["path"]: p for p in page_report(data_dir, *WINDOWS[0], use_rollups=True)}
        assert (both["/"]["sessions"], both["/"]["views"], both["/"]["visitors"]) == (2, 3, 2)
        # From the second day only, the session counts there once.
        second = {p["path"]: p for p in page_report(data_dir, *WINDOWS[1], use_rollups=True)}
        assert (second["/"]["sessions"], second["/"]["views"]) == (2, 2)
        manifest = Manifest.read(_day_dir(data_dir, "2024-03-11"))
        assert manifest.rollup["prev_part"] == "part-1.parquet"
        assert manifest.rollup["ids_file"].endswith(".u64")


def test_time_on_page_across_midnight_counts_with_both_days() -> None:
    # "/" at 23:50, 00:10 (1200 s later) and "/a" at 00:11 (60 s later); another visitor's one
    # view of "/" has no time on page. The 23:50 view's time is the 00:10 view's duration: it
    # counts only when the window holds both days.
    visits = [(1, [(600 + 2400, "/"), (1200, "/"), (60, "/a")], 0), (2, [(4000, "/")], 0)]
    want = {WINDOWS[0]: 630, WINDOWS[1]: 60, WINDOWS[2]: 0}  # (1200 + 60) / 2, 60, none
    with site(visits) as data_dir:
        for window, seconds in want.items():
            for use_rollups in (True, False):
                report = page_report(data_dir, *window, use_rollups=use_rollups)
                got = {p["path"]: p for p in report}
                assert got["/"]["average_time_spent_seconds"] == seconds, (window, use_rollups)
        # The second day's rollup holds the pair across midnight under the first view's path.
        r = Manifest.read(_day_dir(data_dir, "2024-03-11")).rollup
        per_path = pl.read_parquet(_day_dir(data_dir, "2024-03-11") / r["file"])
        row = per_path.filter(pl.col("path") == "/").row(0, named=True)
        assert (row["seconds"], row["timed"]) == (60, 1)
        assert (row["seconds_carried"], row["timed_carried"]) == (1200, 1)


def test_average_time_on_page_rounds_half_to_even() -> None:
    # "/" is followed by views 1 s and 2 s later (1.5 -> 2) and "/a" by 2 s and 3 s (2.5 -> 2),
    # on both sides of midnight.
    visits = [
        (1, [(3599, "/"), (1, "/a"), (2, "/")], 0),  # 23:59:59 "/", 00:00:00 "/a", then "/"
        (2, [(100, "/"), (2, "/a"), (3, "/")], 0),
    ]
    with site(visits) as data_dir:
        for use_rollups in (True, False):
            got = page_report(data_dir, *WINDOWS[0], use_rollups=use_rollups)
            assert {p["path"]: p["average_time_spent_seconds"] for p in got} == {"/": 2, "/a": 2}


def test_deleted_rows_leave_the_time_on_page_of_the_rest() -> None:
    # A tombstone deletes 00:00-01:00 of the second day, views in the middle of sessions that
    # started the day before: their neighbours pair with each other instead.
    visits = [
        (1, [(3000, "/"), (900, "/a"), (600, "/b"), (3000, "/"), (30, "/a")], 0),
        (2, [(3300, "/b"), (400, "/"), (4000, "/a")], 0),
        (3, [(10, "/a"), (20, "/b")], 20),
    ]
    with site(visits) as data_dir:
        before = page_report(data_dir, *WINDOWS[0], use_rollups=True)
        ms = int(datetime(2024, 3, 11, tzinfo=UTC).timestamp() * 1000)
        tombstones.add(data_dir, SITE, tombstones.ALL_TABLES, ms, ms + 3_600_000)
        rollups._cache.clear()
        deleted = page_report(data_dir, *WINDOWS[0], use_rollups=False)
        assert deleted != before
        # the day with the tombstone read from its rows, then from its rebuilt rollup
        for window in WINDOWS:
            assert_same(
                page_report(data_dir, *window, use_rollups=True),
                page_report(data_dir, *window, use_rollups=False),
            )
        compaction.run_round(data_dir, now=datetime.now(UTC).timestamp() + 10, grace=0)
        rollups._cache.clear()
        assert_same(page_report(data_dir, *WINDOWS[0], use_rollups=True), deleted)
        for window in WINDOWS:
            for report in ("page", "page/entry"):
                assert_same(
                    page_report(data_dir, *window, use_rollups=True, report=report),
                    page_report(data_dir, *window, use_rollups=False, report=report),
                )


def _day_dir(data_dir: Path, day: str, table: str = "page_views") -> Path:
    return data_dir / "segments" / table / f"site={SITE}" / f"day={day}"


def test_late_rows_are_read_from_rows_until_rebuilt() -> None:
    visits = [(1, [(3000, "/"), (1500, "/a")], 0), (2, [(100, "/b")], 1)]
    with site(visits) as data_dir:
        before = page_report(data_dir, *WINDOWS[0], use_rollups=True)
        # A late page view (and its session) on the first day: an unsealed segment appears.
        late = SiteData(data_dir)
        late.visit(3, 99, [("2024-03-10 12:00:00", "/late")])
        late.write()
        with_late = page_report(data_dir, *WINDOWS[0], use_rollups=False)
        assert {p["path"] for p in with_late} == {p["path"] for p in before} | {"/late"}
        # That day is read from rows, the next from its rollup but for its `carried` columns
        # (they came from the replaced part), which come from rows: the same answer.
        assert_same(page_report(data_dir, *WINDOWS[0], use_rollups=True), with_late)
        summary = compaction.run_round(data_dir, now=AFTER, grace=0)
        actions = {(d.table, d.day): d.action for d in summary.dirs}
        assert actions[("page_views", "2024-03-10")] == "compacted"
        # The next day's `carried` was computed from the replaced part: rebuilt in that round.
        assert actions[("page_views", "2024-03-11")] == "rolled_up"
        assert_same(page_report(data_dir, *WINDOWS[0], use_rollups=True), with_late)


def test_stale_inputs_are_refused_and_rebuilt() -> None:
    visits = [(1, [(3000, "/"), (1500, "/a")], 0)]
    with site(visits) as data_dir:
        f = parse_filter({"id": [SITE], "from": ["2024-03-10"], "to": ["2024-03-12"]}, now=NOW)
        day = _day_dir(data_dir, "2024-03-11")
        m = Manifest.read(day)
        m.rollup = {**m.rollup, "ids_file": "rollup-0.u64"}  # as if the sessions day changed
        m.write(day)
        rollups._cache.clear()
        # that day is read from rows meanwhile
        assert rollup_pages.page_stats(rows_for(data_dir, f)) is not None
        assert_same(
            page_report(data_dir, *WINDOWS[0], use_rollups=True),
            page_report(data_dir, *WINDOWS[0], use_rollups=False),
        )
        assert [d.action for d in compaction.run_round(data_dir, now=AFTER, grace=0).dirs] == [
            "rolled_up"
        ]
        rollups._cache.clear()
        assert rollup_pages.page_stats(rows_for(data_dir, f)) is not None


def test_a_visitor_missing_from_the_sessions_rollup_leaves_no_page_rollup(
    tmp_path: Path,
) -> None:
    data = SiteData(tmp_path)
    data.visit(1, 1, [("2024-03-10 10:00:00", "/")])
    data.rows["page_views"].append({**data.rows["page_views"][0], "visitor_id": 777})
    data.write()
    compaction.run_round(tmp_path, now=AFTER, grace=0)
    r = Manifest.read(_day_dir(tmp_path, "2024-03-10")).rollup
    assert r["file"] is None and "not in the sessions rollup" in r["unusable"]
    f = parse_filter({"id": [SITE], "from": ["2024-03-10"], "to": ["2024-03-10"]}, now=NOW)
    # the day is read from rows, as a day without a rollup
    assert rollup_pages.page_stats(rows_for(tmp_path, f)) is not None
    assert [p["visitors"] for p in pages.page(tmp_path, f)] == [2]
    assert_same(
        page_report(tmp_path, "2024-03-10", "2024-03-10", use_rollups=True),
        page_report(tmp_path, "2024-03-10", "2024-03-10", use_rollups=False),
    )
    # Nothing to redo in the next round: the inputs have not changed.
    assert compaction.run_round(tmp_path, now=AFTER, grace=0).dirs == []


@pytest.mark.parametrize("titles", [("Alpha", "Beta"), ("Beta", "Alpha")])
def test_latest_title_on_a_tie_is_the_greatest(tmp_path: Path, titles: tuple[str, str]) -> None:
    # Two visitors view "/x" in the same second with different titles; compaction stores them
    # by visitor, so the two cases hold the titles in opposite orders. Both give "Beta", from
    # the rollups (the day's title_ms tie) and from the rows (the kernel).
    data = SiteData(tmp_path)
    data.visit(1, 1, [("2024-03-10 09:00:00", "/x"), ("2024-03-10 10:00:00", "/x")])
    data.visit(2, 2, [("2024-03-10 10:00:00", "/x")])
    pv = data.rows["page_views"]
    pv[0]["title"], pv[1]["title"], pv[2]["title"] = "Zulu (older)", *titles
    data.write()
    compaction.run_round(tmp_path, now=AFTER, grace=0)
    r = Manifest.read(_day_dir(tmp_path, "2024-03-10")).rollup
    per_path = pl.read_parquet(_day_dir(tmp_path, "2024-03-10") / r["file"])
    assert per_path.select("path", "title").rows() == [("/x", "Beta")]
    for use_rollups in (True, False):
        got = page_report(tmp_path, "2024-03-10", "2024-03-10", use_rollups=use_rollups)
        assert [(p["path"], p["title"], p["views"]) for p in got] == [("/x", "Beta", 3)]


@pytest.mark.parametrize("frm", ["2024-03-10", "2024-03-11"])
def test_rollup_files_are_small_and_flat(frm: str) -> None:
    with site([(1, [(3000, "/"), (1500, "/a")], 0), (2, [(10, "/")], 0)]) as data_dir:
        day = _day_dir(data_dir, frm)
        r = Manifest.read(day).rollup
        per_path = pl.read_parquet(day / r["file"])
        deltas = pl.read_parquet(day / r["visitors_file"])
        assert per_path["visitors"].sum() == deltas.height  # one delta per (path, visitor)
        assert set(rollups.files_of(r)) == {r["file"], r["visitors_file"]}

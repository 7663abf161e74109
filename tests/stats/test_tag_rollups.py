"""Tag rollups (trail.storage.tag_rollups) give exactly the tags and tag/details the rows give.

Random visits cross midnight with random tags on their views; windows start on either day;
a search and a `tag` narrow the answer; a day with late rows or a deletion is read from its
rows until compaction has rebuilt it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segment_rows import SITE, SiteData

from trail.stats import rollup_tags, tags
from trail.stats.filters import parse_filter
from trail.stats.sources import rows_for
from trail.storage import rollups, tombstones
from trail.storage.daydir import Manifest
from trail.tasks import compaction

NOW = datetime(2024, 3, 20, tzinfo=UTC)
AFTER = datetime(2024, 3, 15, tzinfo=UTC).timestamp()
BASE = datetime(2024, 3, 10, 23, 0, tzinfo=UTC)  # sessions cross into 2024-03-11
WINDOWS = [("2024-03-10", "2024-03-12"), ("2024-03-11", "2024-03-12"), ("2024-03-10", "2024-03-10")]
# (report, extra parameters): tag keys; every (key, value); one key's values; a search
QUERIES: list[tuple[str, dict[str, list[str]]]] = [
    ("tags", {}),
    ("tag/details", {}),
    ("tag/details", {"tag": ["author"]}),
    ("tags", {"search": ["TH"]}),
    ("tag/details", {"search": ["b"], "sort": ["views"], "direction": ["asc"]}),
]
REPORTS = {"tags": tags.tags, "tag/details": tags.tag_details}

tag_set = st.dictionaries(
    st.sampled_from(["author", "lang", "theme"]), st.sampled_from(["a", "b", "", "Bob"]),
    max_size=2,
)  # fmt: skip
visit = st.tuples(
    st.integers(1, 4),  # visitor
    st.lists(st.tuples(st.integers(0, 1700), tag_set), min_size=1, max_size=5),
    st.integers(0, 30),  # start, in 5-minute steps from 23:00
)


pytestmark = pytest.mark.usefixtures("rollups_on")  # (tests/stats/conftest.py)


@contextmanager
def site(visits: list) -> Iterator[Path]:
    """The visits as compacted segments in a temporary data dir, removed afterwards."""
    data = SiteData(Path(tempfile.mkdtemp(prefix="trail-tags-")))
    try:
        add_visits(data, visits)
        compaction.run_round(data.data_dir, now=AFTER, grace=0)
        yield data.data_dir
    finally:
        shutil.rmtree(data.data_dir, ignore_errors=True)


def add_visits(data: SiteData, visits: list, first_session: int = 1) -> None:
    for session_id, (visitor_id, hits, start) in enumerate(visits, start=first_session):
        t = BASE + timedelta(minutes=5 * start)
        times, tag_of = [], {}
        for i, (gap, tag) in enumerate(hits):
            t += timedelta(seconds=gap)
            times.append((t.strftime("%Y-%m-%d %H:%M:%S"), f"/{i % 2}"))
            tag_of[i] = tag
        data.visit(visitor_id, session_id, times, tags=tag_of)
    data.write()


def report(
    data_dir: Path, name: str, extra: dict[str, list[str]], frm: str, to: str, *, use_rollups: bool
) -> list[dict[str, Any]]:
    params = {"id": [SITE], "from": [frm], "to": [to], "limit": ["100"], **extra}
    f = parse_filter(params, now=NOW)
    if use_rollups:
        keys = ["key"] if name == "tags" else ["key", "value"]
        assert rollup_tags.tag_stats(rows_for(data_dir, f), keys) is not None, "rollups not used"
        return REPORTS[name](data_dir, f)
    original = rollup_tags.tag_stats
    rollup_tags.tag_stats = lambda rows, keys: None  # type: ignore[assignment]
    try:
        return REPORTS[name](data_dir, f)
    finally:
        rollup_tags.tag_stats = original  # type: ignore[assignment]


def assert_all_same(data_dir: Path) -> None:
    for frm, to in WINDOWS:
        for name, extra in QUERIES:
            got = report(data_dir, name, extra, frm, to, use_rollups=True)
            want = report(data_dir, name, extra, frm, to, use_rollups=False)
            assert_same(got, want)


def assert_same(got: list[dict], want: list[dict]) -> None:
    """Equal, except that ratios may differ in the last bit (see test_page_rollups)."""
    assert [{k: v for k, v in r.items() if not isinstance(v, float)} for r in got] == [
        {k: v for k, v in r.items() if not isinstance(v, float)} for r in want
    ]
    for g, w in zip(got, want, strict=True):
        for k, v in w.items():
            if isinstance(v, float):
                assert g[k] == pytest.approx(v, rel=1e-12, abs=1e-15), k


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(visit, min_size=1, max_size=7))
def test_tags_from_rollups_equal_rows(visits: list) -> None:
    with site(visits) as data_dir:
        assert_all_same(data_dir)


def _day_dir(data_dir: Path, day: str) -> Path:
    return data_dir / "segments" / "page_views" / f"site={SITE}" / f"day={day}"


def test_a_visitor_counts_once_per_key_over_days() -> None:
    # Visitor 1 views "author=a" before midnight and "author=b" after: one visitor of the key,
    # one of each value; visitor 2 views an untagged page only.
    a, b = {"author": "a"}, {"author": "b"}
    visits = [(1, [(3000, a), (1200, b), (10, b)], 0), (2, [(4000, {})], 0)]
    with site(visits) as data_dir:
        got = report(data_dir, "tags", {}, *WINDOWS[0], use_rollups=True)
        assert [(t["key"], t["visitors"], t["views"]) for t in got] == [("author", 1, 3)]
        details = report(data_dir, "tag/details", {}, *WINDOWS[0], use_rollups=True)
        # (ties in visitors by value)
        assert [(t["value"], t["visitors"], t["views"]) for t in details] == [("a", 1, 1),
                                                                              ("b", 1, 2)]  # fmt: skip
        r = Manifest.read(_day_dir(data_dir, "2024-03-11")).rollup
        table = pl.read_parquet(_day_dir(data_dir, "2024-03-11") / r["tags_file"])
        assert table.rows() == [("author", "b", 2, 1)]
        assert set(rollups.files_of(r)) >= {r["tags_file"], r["tags_visitors_file"]}


def test_a_tag_filter_on_the_keys_report_reads_rows() -> None:
    # /tags?tag=author lists every key of the views that carry "author", not only "author".
    visits = [(1, [(3000, {"author": "a", "lang": "b"}), (10, {"theme": "x"})], 0)]
    with site(visits) as data_dir:
        f = parse_filter({"id": [SITE], "from": ["2024-03-10"], "to": ["2024-03-12"],
                          "tag": ["author"]}, now=NOW)  # fmt: skip
        assert rollup_tags.tag_stats(rows_for(data_dir, f), ["key"]) is None
        assert [t["key"] for t in tags.tags(data_dir, f)] == ["author", "lang"]
        assert rollup_tags.tag_stats(rows_for(data_dir, f), ["key", "value"]) is not None
        assert [t["key"] for t in tags.tag_details(data_dir, f)] == ["author"]


def test_a_day_without_tags_writes_no_files() -> None:
    with site([(1, [(3000, {})], 0)]) as data_dir:
        r = Manifest.read(_day_dir(data_dir, "2024-03-10")).rollup
        assert r["tags_file"] == "" and r["file"]
        assert not list(_day_dir(data_dir, "2024-03-10").glob("*tags*"))
        assert report(data_dir, "tags", {}, *WINDOWS[0], use_rollups=True) == []


def test_late_rows_and_deletions_are_read_from_rows_until_rebuilt() -> None:
    visits = [(1, [(3000, {"author": "a"}), (1500, {"lang": "b"})], 0),
              (2, [(100, {"author": "b"})], 1), (3, [(4000, {"author": "a"})], 2)]  # fmt: skip
    with site(visits) as data_dir:
        before = report(data_dir, "tag/details", {}, *WINDOWS[0], use_rollups=False)
        # a late tagged view on the first day: an unsealed segment appears
        late = SiteData(data_dir)
        late.visit(9, 99, [("2024-03-10 12:00:00", "/late")], tags={0: {"theme": "x"}})
        late.write()
        with_late = report(data_dir, "tag/details", {}, *WINDOWS[0], use_rollups=False)
        assert len(with_late) == len(before) + 1
        assert_all_same(data_dir)
        # a deletion of the second day's first hour: that day is read from rows
        ms = int(datetime(2024, 3, 11, tzinfo=UTC).timestamp() * 1000)
        tombstones.add(data_dir, SITE, tombstones.ALL_TABLES, ms, ms + 3_600_000)
        deleted = report(data_dir, "tag/details", {}, *WINDOWS[0], use_rollups=False)
        assert deleted != with_late
        assert_all_same(data_dir)
        compaction.run_round(data_dir, now=AFTER, grace=0)
        rollups._cache.clear()
        assert_same(report(data_dir, "tag/details", {}, *WINDOWS[0], use_rollups=True), deleted)
        assert_all_same(data_dir)


def test_a_day_without_a_tag_rollup_is_read_from_rows() -> None:
    # As a page rollup written before tag rollups existed: no tag fields in its entry.
    visits = [(1, [(3000, {"author": "a"}), (1500, {"author": "b"})], 0)]
    with site(visits) as data_dir:
        day = _day_dir(data_dir, "2024-03-11")
        m = Manifest.read(day)
        m.rollup = {k: v for k, v in m.rollup.items() if not k.startswith("tags_")}
        m.write(day)
        rollups._cache.clear()
        assert_all_same(data_dir)

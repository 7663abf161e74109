"""The funnel's one-scan page steps (trail.stats.funnel_scan) give what joining step by step gave.

The reference below is the step-by-step algorithm the funnel used before: each step's sessions
read on their own (page views for a page step, live session states and events otherwise) and
semi-joined with the previous step's. Traffic is random: sessions that cross midnight (and view
pages on both days), events with metadata, tagged page views, two countries; step definitions
are random mixes of page steps (path, negated path, contains, glob, regex, tags, with a
dimension) and other steps (entry/exit path, event, dimension only). The days are read as
written (unsorted segments) and after compaction (sorted parts).
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segment_rows import SITE, SiteData

from trail.stats import funnel_scan
from trail.stats.filters import parse_filter
from trail.stats.goals import _step_keys, funnel, step_filter
from trail.stats.sources import KEYS, Rows
from trail.tasks import compaction

NOW = datetime(2024, 3, 20, tzinfo=UTC)
AFTER = datetime(2024, 3, 15, tzinfo=UTC).timestamp()
BASE = datetime(2024, 3, 10, 22, 0, tzinfo=UTC)  # sessions cross into 2024-03-11
PATHS = ["/", "/a", "/b", "/pricing"]
WINDOWS = [("2024-03-10", "2024-03-11"), ("2024-03-11", "2024-03-11"), ("2024-03-10", "2024-03-10")]

STEP_FILTERS: list[dict[str, Any]] = [
    {"path": ["/"]},
    {"path": ["/a"]},
    {"path": ["/b", "/pricing"]},
    {"path": ["!/"]},
    {"path": ["~pri"]},
    {"path_pattern": ["/*"]},
    {"path_regex": ["^/[ab]$"]},
    {"path": ["/a"], "country": ["de"]},
    {"tags": {"kind": "x"}},
    {"path": ["/"], "event_name": ["signup"]},
    {"event_name": ["signup"]},
    {"event_name": ["!signup"]},
    {"event_meta": {"plan": "pro"}},
    {"entry_path": ["/"]},
    {"exit_path": ["/b"]},
    {"country": ["us"]},
    {"platform": "desktop", "path": ["/pricing"]},
]

visit = st.fixed_dictionaries(
    {
        "visitor": st.integers(1, 5),
        "start": st.integers(0, 40),  # in 5-minute steps from 22:00
        "hits": st.lists(
            st.tuples(st.integers(0, 2400), st.sampled_from(PATHS)), min_size=1, max_size=6
        ),
        "country": st.sampled_from(["de", "us"]),
        "event": st.one_of(
            st.none(),
            st.tuples(st.sampled_from(["signup", "buy"]), st.sampled_from(["pro", "free"])),
        ),
        "tagged": st.booleans(),
    }
)
steps = st.lists(st.sampled_from(STEP_FILTERS), min_size=1, max_size=5)


@contextmanager
def site(visits: list[dict[str, Any]], *, compacted: bool) -> Iterator[Path]:
    """The visits as segments in a temporary data dir (compacted or as written)."""
    data = SiteData(Path(tempfile.mkdtemp(prefix="trail-funnel-")))
    try:
        for session_id, v in enumerate(visits, start=1):
            t = BASE + timedelta(minutes=5 * v["start"])
            hits = []
            for gap, path in v["hits"]:
                t += timedelta(seconds=gap)
                hits.append((t.strftime("%Y-%m-%d %H:%M:%S"), path))
            event = v["event"]
            data.visit(
                v["visitor"],
                session_id,
                hits,
                events={len(hits) - 1: (event[0], {"plan": event[1]})} if event else None,
                tags={0: {"kind": "x"}} if v["tagged"] else None,
                country_code=v["country"],
            )
        data.write()
        if compacted:
            compaction.run_round(data.data_dir, now=AFTER, grace=0)
        yield data.data_dir
    finally:
        shutil.rmtree(data.data_dir, ignore_errors=True)


def joined_funnel(data_dir: Path, params: dict[str, list[str]], definition: dict) -> list[int]:
    """The reference: each step's sessions collected, then semi-joined with the previous."""
    f = parse_filter(params, now=NOW)
    start, end = f.window()
    visitors = []
    previous: pl.DataFrame | None = None
    for step in definition["steps"]:
        keys = _step_keys(Rows(data_dir, step_filter(f, step), start, end))
        if previous is not None:
            keys = keys.join(previous.lazy(), on=KEYS, how="semi")
        previous = keys.collect()
        visitors.append(previous["visitor_id"].n_unique())
    return visitors


def funnel_visitors(data_dir: Path, params: dict[str, list[str]], definition: dict) -> list[int]:
    out = funnel(data_dir, parse_filter(params, now=NOW), definition)
    return [s["visitors"] for s in out["data"]]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(visit, min_size=1, max_size=10), steps, st.booleans())
def test_funnel_equals_step_by_step_joins(
    visits: list[dict[str, Any]], filters: list[dict[str, Any]], compacted: bool
) -> None:
    definition = {"steps": [{"name": str(i), "filter": f} for i, f in enumerate(filters)]}
    with site(visits, compacted=compacted) as data_dir:
        for frm, to in WINDOWS:
            params = {"id": [SITE], "from": [frm], "to": [to]}
            assert funnel_visitors(data_dir, params, definition) == joined_funnel(
                data_dir, params, definition
            )


def test_a_session_across_midnight_passes_page_steps_seen_on_either_day() -> None:
    # Visitor 1: "/" at 23:50, "/pricing" at 00:10 in one session. Visitor 2: "/" before
    # midnight in one session and "/pricing" after it in another, which is no conversion.
    visits = [
        {"visitor": 1, "start": 22, "hits": [(0, "/"), (1200, "/pricing")],
         "country": "de", "event": None, "tagged": False},
        {"visitor": 2, "start": 22, "hits": [(0, "/")],
         "country": "de", "event": None, "tagged": False},
        {"visitor": 2, "start": 26, "hits": [(0, "/pricing")],
         "country": "de", "event": None, "tagged": False},
    ]  # fmt: skip
    definition = {"steps": [{"name": "home", "filter": {"path": ["/"]}},
                            {"name": "pricing", "filter": {"path": ["/pricing"]}}]}  # fmt: skip
    for compacted in (False, True):
        with site(visits, compacted=compacted) as data_dir:
            both = {"id": [SITE], "from": ["2024-03-10"], "to": ["2024-03-11"]}
            assert funnel_visitors(data_dir, both, definition) == [2, 1]
            after = {"id": [SITE], "from": ["2024-03-11"], "to": ["2024-03-11"]}
            assert funnel_visitors(data_dir, after, definition) == [0, 0]


def test_views_of_one_session_in_any_order_are_one_session() -> None:
    # Views of two visitors' sessions interleaved and out of order, as unsorted segments hold them.
    visitors = funnel_scan._by_session(
        pl.Series([7, 3, 7, 3, 7, 9], dtype=pl.UInt64).to_numpy(),
        pl.Series([2, 1, 1, 1, 2, 1], dtype=pl.UInt32).to_numpy(),
        pl.Series([1, 2, 2, 1, 4, 1], dtype=pl.UInt64).to_numpy(),
    )
    assert visitors.visitors.tolist() == [3, 7, 7, 9]
    assert visitors.sessions.tolist() == [1, 1, 2, 1]
    assert visitors.masks.tolist() == [3, 2, 5, 1]
    assert visitors.visitors_holding(3) == 1 and visitors.visitors_holding(1) == 3

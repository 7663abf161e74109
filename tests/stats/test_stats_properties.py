"""Hypothesis over random visits: rates stay in [0, 1], filtered counts never exceed the total."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segment_rows import SITE, SiteData

from trail.stats import reports
from trail.stats.filters import parse_filter

NOW = datetime(2024, 3, 20, tzinfo=UTC)
BASE = datetime(2024, 3, 10, 22, 0, tzinfo=UTC)  # sessions may cross midnight
PATHS = ["/", "/a", "/b"]

visit = st.tuples(
    st.integers(1, 4),  # visitor
    st.lists(st.tuples(st.integers(0, 1500), st.sampled_from(PATHS)), min_size=1, max_size=5),
    st.sampled_from(["de", "us", ""]),
)


@contextmanager
def build(visits) -> Iterator[Path]:
    """The visits written as segments into a temporary data dir, removed afterwards."""
    site = SiteData(Path(tempfile.mkdtemp(prefix="trail-stats-")))
    try:
        _write(site, visits)
        yield site.data_dir
    finally:
        shutil.rmtree(site.data_dir, ignore_errors=True)


def _write(site: SiteData, visits) -> None:
    for session_id, (visitor_id, hits, country) in enumerate(visits, start=1):
        t = BASE + timedelta(minutes=5 * session_id)
        pages = []
        for gap, path in hits:
            t += timedelta(seconds=gap)
            pages.append((t.strftime("%Y-%m-%d %H:%M:%S"), path))
        site.visit(visitor_id, session_id, pages, country_code=country)
    site.write()


def q(**params: str):
    p = {
        "id": [SITE],
        "from": ["2024-03-10"],
        "to": ["2024-03-11"],
        **{k: [v] for k, v in params.items()},
    }
    return parse_filter(p, now=NOW)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(visit, min_size=1, max_size=6),
    st.sampled_from(PATHS),
    st.sampled_from(["2024-03-10", "2024-03-11"]),
)
def test_rates_and_filter_bounds(visits, path, day) -> None:
    with build(visits) as data:
        for frm, to in (("2024-03-10", "2024-03-11"), (day, day)):
            total = reports.total(data, q(**{"from": frm, "to": to}))
            assert 0.0 <= total["bounce_rate"] <= 1.0
            assert total["bounces"] <= total["sessions"] <= total["views"]
            for f in (path, "!" + path, "~a", "^a"):
                sub = reports.total(data, q(**{"from": frm, "to": to, "path": f}))
                assert sub["visitors"] <= total["visitors"]
                assert sub["views"] <= total["views"]
                assert 0.0 <= sub["bounce_rate"] <= 1.0 and 0.0 <= sub["cr"] <= 1.0
            for page in reports.page(data, q(**{"from": frm, "to": to})):
                assert 0.0 <= page["bounce_rate"] <= 1.0
                assert 0.0 <= page["relative_visitors"] <= 1.0
        # Over the whole range every session is counted once with all its views.
        total = reports.total(data, q())
        assert total["sessions"] == len(visits)
        assert total["views"] == sum(len(h) for _, h, _ in visits)
        assert total["visitors"] == len({v for v, _, _ in visits})


COUNTRIES = ["de", "us", ""]
EPS = 1e-9
one_country_visit = st.tuples(
    st.integers(1, 5),  # visitor; its country is fixed by the id, so breakdowns partition visitors
    st.lists(st.tuples(st.integers(0, 1500), st.sampled_from(PATHS)), min_size=1, max_size=4),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(one_country_visit, min_size=1, max_size=6), st.sampled_from(PATHS))
def test_breakdowns_partition(visits, path) -> None:
    with build([(v, hits, COUNTRIES[v % 3]) for v, hits in visits]) as data:
        for frm, to in (
            ("2024-03-10", "2024-03-11"),
            ("2024-03-10", "2024-03-10"),
            ("2024-03-11", "2024-03-11"),
        ):
            span = {"from": frm, "to": to}
            total = reports.total(data, q(**span))
            # Each visitor has one country and each view one path and hostname: relative values
            # of the full breakdown sum to at most 1.
            assert (
                sum(r["relative_visitors"] for r in reports.dimension(data, q(**span), "country"))
                <= 1 + EPS
            )
            assert sum(r["relative_views"] for r in reports.page(data, q(**span))) <= 1 + EPS
            assert sum(r["relative_views"] for r in reports.hostname(data, q(**span))) <= 1 + EPS
            assert sum(r["entry_rate"] for r in reports.entry_pages(data, q(**span))) <= 1 + EPS
            assert sum(r["exit_rate"] for r in reports.exit_pages(data, q(**span))) <= 1 + EPS
            for r in reports.hostname(data, q(**span)) + reports.minutes(data, q(**span)):
                assert 0.0 <= r["bounce_rate"] <= 1.0
            # Filtered by path and by its negation, each side stays within the total.
            for f in (path, "!" + path):
                sub = reports.total(data, q(**span, path=f))
                assert sub["visitors"] <= total["visitors"] and sub["views"] <= total["views"]
                assert 0.0 <= sub["bounce_rate"] <= 1.0
                assert len(sessions_list(data, q(**span, path=f))) <= len(
                    sessions_list(data, q(**span))
                )
            # Minutes hold every page view of the window once.
            assert sum(r["views"] for r in reports.minutes(data, q(**span))) == sum(
                p["views"] for p in reports.page(data, q(**span))
            )


def sessions_list(data, f):
    from trail.stats.sessions import session_list

    return session_list(data, f)

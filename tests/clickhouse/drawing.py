"""Random traffic and filters for the ClickHouse differential tests, the same for the same seed.

Hypothesis generates the simplest value first (traffic of one page view, an empty filter), so a
test that takes one value of a strategy tests nearly nothing: take several, and traffic with
enough rows of every kind."""

from __future__ import annotations

from typing import Any

from hypothesis import Phase, given, seed, settings
from hypothesis import strategies as st

from tests.oracle.traffic import Traffic, traffic


def drawn(strategy: st.SearchStrategy[Any], at: int, n: int) -> list[Any]:
    """`n` values of `strategy`, the same for the same `at`; the first is the simplest."""
    out: list[Any] = []

    @seed(at)
    @settings(database=None, max_examples=n, phases=[Phase.generate], deadline=None)
    @given(strategy)
    def take(value: Any) -> None:
        out.append(value)

    take()
    return out


def busy(t: Traffic) -> bool:
    """Traffic with enough page views, events and tags for every report to have rows."""
    kinds = [h["kind"] for h in t.hits]
    tagged = [h for h in t.hits if h["kind"] == "page_view" and h["tags"]]
    return kinds.count("page_view") >= 15 and kinds.count("event") >= 5 and len(tagged) >= 5


def busy_traffic(at: int, **kwargs: Any) -> Traffic:
    """The first busy traffic among 20 drawn with seed `at` (`kwargs` go to `traffic`)."""
    return next(t for t in drawn(traffic(**kwargs), at, 20) if busy(t))

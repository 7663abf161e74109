"""Random traffic and filters for the ClickHouse differential tests, the same for the same seed.

Hypothesis generates the simplest value first (traffic of one page view, an empty filter), so a
test that takes one value of a strategy tests nearly nothing: take several, and traffic with
enough rows of every kind."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import Phase, given, seed, settings
from hypothesis import strategies as st

from tests.oracle.traffic import EVENT_NAMES, Traffic, filter_params, sometimes, traffic

# Values of the `amount` metadata (the custom metric the queries ask for): integers and floats
# in spellings that parse, floats only, spellings that do not parse (some of which ClickHouse's
# own functions would read) and an integer beyond Int64 (a float). Finite floats are multiples
# of 1/4 and one huge value: their sums are the same in any order, and each engine sums in the
# order it reads rows.
AMOUNTS = ["3", "12", "12.5", "abc", "-2", "+4", "007", "-0", "1e3", "1E2", ".5", "2.25",
           "-.75", "3.", "0x1f", "1_000", "1e", "1e+", "+-1", "nan(1)", "12 ", "inf", "nan",
           "-INFINITY", "99999999999999999999999"]  # fmt: skip


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


def with_amounts(t: Traffic, at: int) -> Traffic:
    """`t` with an `amount` metadata value on most events, one of AMOUNTS (mostly one of the
    first four, so that the rarer values do not decide most sums), the same for the same `at`."""
    rnd = random.Random(at)
    hits = []
    for hit in t.hits:
        if hit["kind"] == "event" and rnd.random() < 0.8:
            amount = rnd.choice(AMOUNTS[: 4 if rnd.random() < 0.6 else None])
            meta = {**hit["event_meta"], "amount": amount}
            hit = {**hit, "event_meta": meta, "request": {**hit["request"], "event_meta": meta}}
        hits.append(hit)
    return Traffic(t.sites, hits, t.now)


_NOT_CONDITIONS = {"from", "to", "from_time", "to_time", "tz", "scale", "sort", "direction",
                   "limit", "offset", "search", "include_avg_time_on_page", "start"}  # fmt: skip


@st.composite
def query_params(draw: st.DrawFn, t: Traffic, site: Any) -> dict[str, list[str]]:
    """The oracle's filter_params, with custom metrics (of a key whose values parse now and
    then, or never) in one query out of three, half of those with no other condition."""
    p = draw(filter_params(t, site))
    if sometimes(draw, 3):
        if draw(st.booleans()):  # the metric of the event alone: more of them have values
            p = {k: v for k, v in p.items() if k in _NOT_CONDITIONS}
        p["event"] = p.get("event") or [draw(st.sampled_from(EVENT_NAMES))]
        p["custom_metric_key"] = [draw(st.sampled_from(["amount", "amount", "plan"]))]
        p["custom_metric_type"] = [draw(st.sampled_from(["integer", "float"]))]
    return p

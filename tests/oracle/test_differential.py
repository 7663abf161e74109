"""Every statistics endpoint of a real server against the reference model, on generated traffic.

    TRAIL_ORACLE_EXAMPLES=1000 .venv/bin/pytest tests/oracle/test_differential.py

Part of `make test` at the default count; raise TRAIL_ORACLE_EXAMPLES for a longer search
(`python -m tests.oracle.explore N SEED --compacted` tallies disagreements by class instead of
stopping at the first).

One server for the module, fresh sites for every example (deleted after it). Each example is
compared twice: on the rows as sealed (segments only), then after the server compacted every
closed day of its sites (parts and rollups), see tests.oracle.harness. One example in four also
asks every endpoint without a filter over whole closed days in a drawn zone, the queries that
compacted days answer from their rollups (beside the rows of the slices of UTC days at the ends
of a window in a zone that is not UTC).

- TRAIL_ORACLE_EXAMPLES: Hypothesis examples (default 50: about 1 s each on 2 cores).
- TRAIL_ORACLE_ENDPOINTS (comma separated, e.g. "total,page") restricts the comparison, to
  shrink one disagreement at a time.
- TRAIL_ORACLE_PHASES: "fresh", "compacted" or both (the default), e.g. to shrink a
  disagreement that only compaction brings.
- TRAIL_ORACLE_THREADS: queries in flight at once (default 6).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.oracle.harness import ENDPOINTS, PHASES, Oracle, closed_days, describe, report
from tests.oracle.traffic import filter_params, traffic

EXAMPLES = int(os.environ.get("TRAIL_ORACLE_EXAMPLES", "50"))
ONLY = [e for e in os.environ.get("TRAIL_ORACLE_ENDPOINTS", "").split(",") if e] or ENDPOINTS
STATES = tuple(p for p in os.environ.get("TRAIL_ORACLE_PHASES", "").split(",") if p) or PHASES
assert set(STATES) <= set(PHASES), f"TRAIL_ORACLE_PHASES: {STATES} not in {PHASES}"


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    oracle = Oracle.start(tmp_path_factory.mktemp("oracle"))
    yield oracle
    oracle.stop()


@pytest.mark.timeout(max(600, EXAMPLES * 60))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # Without Phase.explain: its reruns of a failure (~1 s each) tell nothing the diff does not.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
@given(data=st.data())
def test_every_endpoint_agrees_with_the_model(oracle: Oracle, data: st.DataObject) -> None:
    generated = data.draw(traffic(), label="traffic")
    loaded = oracle.load(generated)
    try:
        site = data.draw(st.sampled_from(loaded.traffic.sites), label="site")
        params = data.draw(filter_params(loaded.traffic, site), label="filter")
        checks = [oracle.check(loaded, site.key, params, ONLY)]
        if data.draw(st.integers(0, 3), label="also unfiltered") == 3:
            days = data.draw(closed_days(loaded.traffic, params), label="unfiltered")
            checks.append(oracle.check(loaded, site.key, days, ONLY))
        diffs = oracle.examine(checks, STATES)
    finally:
        oracle.unload([loaded])
    assert not diffs, f"{report(diffs)}\n\ntraffic:\n{describe(loaded.traffic)}"

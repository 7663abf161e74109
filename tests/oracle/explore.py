"""Run many generated examples against a fresh server and tally the disagreements by class.

    .venv/bin/python -m tests.oracle.explore [examples] [seed] [--compacted]

A class is (endpoint, the kinds of filter in the query, the answer's field that differs); for
each class the smallest example seen (fewest hits) is printed with its diff and its traffic.
Each new class is also printed to stderr when first seen, and an
interrupted run (Ctrl-C) still prints its summary. With --compacted every example is also compared after the server compacted its closed days
(tests.oracle.harness); a difference it shows there that the same query did not show on the
fresh rows is tallied under the phase "compacted" (the same difference again is not counted
twice). As in test_differential.py, one example in four also asks every endpoint without a filter
over whole closed days in a drawn zone (the rollup path once compacted). This is for finding and triaging
disagreements; test_differential.py is the test (in `make test`).

EXCLUDE=tag,pattern,...: leave these filter parameters out (prefixes), to look for
disagreements other than the ones already known.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.oracle.harness import (
    COMPACTED,
    FRESH,
    Diff,
    Oracle,
    closed_days,
    describe,
    only_after_compaction,
    render,
)
from tests.oracle.traffic import filter_params, traffic

SCALARS = ("from", "to", "id", "limit", "offset", "sort", "direction", "tz", "scale", "start",
           "include_avg_time_on_page", "visitor_id", "session_id")  # fmt: skip


def filter_kinds(params: dict[str, list[str]]) -> str:
    """The filter parameters that are not dates or paging, e.g. "path+tag_author"."""
    kinds = []
    for k in sorted(params):
        if k in SCALARS or k in ("from_time", "to_time"):
            continue
        kinds.append("tag_*" if k.startswith("tag_") else "meta_*" if k.startswith("meta_") else k)
    if "from_time" in params:
        kinds.append("time-of-day")
    return "+".join(kinds) or "-"


def field_of(problem: str) -> str:
    """`[3].visitors: model 1 / trail 2` -> `visitors`; lengths -> `#items`."""
    if "items, trail" in problem:
        return "#items"
    path = problem.split(":", 1)[0]
    return re.sub(r"\[\d+\]", "", path).strip(".") or "."


def tallied(diffs: list[Diff]) -> list[Diff]:
    """The fresh differences, and those after compaction that are not the same."""
    return [d for d in diffs if d.phase != COMPACTED] + only_after_compaction(diffs)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="tests.oracle.explore", description=__doc__.split("\n")[0]
    )
    parser.add_argument("examples", nargs="?", type=int, default=50)
    parser.add_argument("seed", nargs="?", type=int, default=0, help="0: derandomized")
    parser.add_argument("--compacted", action="store_true",
                        help="also compare after the server compacted the example's days")  # fmt: skip
    args = parser.parse_args()
    phases = (FRESH, COMPACTED) if args.compacted else (FRESH,)
    Class = tuple[str, str, str, str]  # phase, endpoint, filter kinds, fields
    classes: dict[Class, list[tuple[int, Diff, str]]] = defaultdict(list)
    oracle = Oracle.start()
    seconds: list[float] = []  # per example

    @settings(max_examples=args.examples, deadline=None, database=None,
              derandomize=args.seed == 0, suppress_health_check=list(HealthCheck),
              phases=[Phase.generate])  # fmt: skip
    @given(data=st.data())
    def run(data: Any) -> None:
        started = time.perf_counter()
        generated = data.draw(traffic())
        loaded = oracle.load(generated)
        try:
            site = data.draw(st.sampled_from(loaded.traffic.sites))
            params = data.draw(filter_params(loaded.traffic, site))
            for prefix in [p for p in os.environ.get("EXCLUDE", "").split(",") if p]:
                params = {k: v for k, v in params.items() if not k.startswith(prefix)}
            checks = [oracle.check(loaded, site.key, params)]
            if data.draw(st.integers(0, 3)) == 3:
                days = data.draw(closed_days(loaded.traffic, params))
                checks.append(oracle.check(loaded, site.key, days))
            diffs = oracle.examine(checks, phases)
        finally:
            oracle.unload([loaded])
        seconds.append(time.perf_counter() - started)
        if len(seconds) % 100 == 0:  # progress, for long runs
            print(f"{len(seconds)} examples, {len(classes)} classes so far", file=sys.stderr,
                  flush=True)  # fmt: skip
        for diff in tallied(diffs):
            fields = sorted({field_of(p) for p in diff.problems})
            cls = (diff.phase, diff.endpoint, filter_kinds(diff.params), ",".join(fields[:3]))
            if cls not in classes:  # at once: a long run may be stopped before its summary
                print(f"new class {cls}:\n{render([diff], max_lines=20)}\n"
                      f"{describe(loaded.traffic)}", file=sys.stderr, flush=True)  # fmt: skip
            classes[cls].append((len(loaded.traffic.hits), diff, describe(loaded.traffic)))

    if args.seed:
        run = seed(args.seed)(run)
    try:
        run()
    except KeyboardInterrupt:  # stopped: the summary of the examples run so far
        print("interrupted", file=sys.stderr)
    finally:
        oracle.stop()
    median = statistics.median(seconds) if seconds else 0.0
    print(f"{len(seconds)} examples ({median:.2f} s each, median), {len(classes)} classes of "
          f"disagreement ({'+'.join(phases)})\n")  # fmt: skip
    for cls, seen in sorted(classes.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"{len(seen):4d}  {cls[0]:9} {cls[1]:22} filter={cls[2]:30} fields={cls[3]}")
    print()
    for cls, seen in sorted(classes.items()):
        n, diff, traffic_text = min(seen, key=lambda s: s[0])
        print("=" * 100)
        print(f"{cls}  ({len(seen)} times; smallest: {n} hits)")
        print(render([diff], max_lines=20))
        print(traffic_text)  # whole: enough to rebuild the example as a regression test


if __name__ == "__main__":
    main()

"""Run many generated examples against a fresh server and tally the disagreements by class.

    .venv/bin/python -m tests.oracle.explore [examples] [seed]

A class is (endpoint, the kinds of filter in the query, the answer's field that differs); for
each class the smallest example seen (fewest hits) is printed with its diff and its traffic.
This is for finding and triaging disagreements; differential.py is the test (run by name: not in `make test` until trail agrees).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.oracle.harness import SERVER_ENV, Diff, Oracle, describe, render
from tests.oracle.traffic import filter_params, traffic
from tests.server import TrailServer

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


def main() -> None:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    classes: dict[tuple[str, str, str], list[tuple[int, Diff, str]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        server = TrailServer(data, workers=2, env=dict(SERVER_ENV)).start()
        oracle = Oracle(server)
        count = [0]

        @settings(max_examples=examples, deadline=None, database=None, derandomize=seed == 0,
                  suppress_health_check=list(HealthCheck), phases=["generate"])  # fmt: skip
        @given(data=st.data())
        def run(data: Any) -> None:
            generated = data.draw(traffic())
            loaded = oracle.load(generated)
            site = data.draw(st.sampled_from(loaded.traffic.sites))
            params = data.draw(filter_params(loaded.traffic, site))
            # EXCLUDE=tag,pattern,...: leave these filter parameters out (prefixes), to look
            # for disagreements other than the ones already known.
            for prefix in [p for p in os.environ.get("EXCLUDE", "").split(",") if p]:
                params = {k: v for k, v in params.items() if not k.startswith(prefix)}
            count[0] += 1
            for diff in oracle.compare(loaded, site.key, params):
                fields = sorted({field_of(p) for p in diff.problems})
                cls = (diff.endpoint, filter_kinds(diff.params), ",".join(fields[:3]))
                classes[cls].append((len(loaded.traffic.hits), diff, describe(loaded.traffic)))

        try:
            run()
        finally:
            server.stop()
    print(f"{count[0]} examples, {len(classes)} classes of disagreement\n")
    for cls, seen in sorted(classes.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        print(f"{len(seen):4d}  {cls[0]:22} filter={cls[1]:30} fields={cls[2]}")
    print()
    for cls, seen in sorted(classes.items()):
        n, diff, traffic_text = min(seen, key=lambda s: s[0])
        print("=" * 100)
        print(f"{cls}  ({len(seen)} times; smallest: {n} hits)")
        print(render([diff], max_lines=20))
        print(traffic_text if n <= 12 else "\n".join(traffic_text.splitlines()[:13]) + "\n...")


if __name__ == "__main__":
    main()

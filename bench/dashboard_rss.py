"""What each worker holds after dashboard loads, by mapping: `trail serve` (2 workers, result
cache off) on a data dir that `bench.dashboard_load --api-only --keep` left, the 23-request load
`--runs` times, then per worker VmRSS/RssAnon/RssFile/VmHWM and the biggest mappings of
/proc/<pid>/smaps, 6 s after the last answer.

    KEY=$(.venv/bin/python -m trail admin create-user --data-dir DIR/data --role admin --json \\
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
    KEY=$KEY .venv/bin/python -m bench.dashboard_rss DIR/data SITE FIRST LAST [NAME=VALUE ...]

NAME=VALUE pairs go into the server's environment (e.g. TRAIL_ROLLUP_CACHE_MB=16). Delete
DIR/data/segments/indexes first to have the first load build the window's indexes.
"""

from __future__ import annotations

import argparse
import os
import re
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path

from bench import dashboard_load as dl


def mappings(pid: int) -> dict[str, list[int]]:
    """RSS and anonymous kB per mapped path ("[anon]" for anonymous memory)."""
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split(None, 5)
            name = parts[5].strip() if len(parts) > 5 else "[anon]"
            if "/segments/" in name:
                name = "<data dir>/segments"
        elif line.startswith("Rss:"):
            groups[name][0] += int(line.split()[1])
        elif line.startswith("Anonymous:"):
            groups[name][1] += int(line.split()[1])
    return groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("site")
    ap.add_argument("first")
    ap.add_argument("last")
    ap.add_argument("env", nargs="*", help="NAME=VALUE for the server")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    env = dict(dl.NO_RESULT_CACHE, **dict(kv.split("=", 1) for kv in a.env))
    server = dl.start_server(a.data, 2, env)
    try:
        query = urllib.parse.urlencode({"id": a.site, "from": a.first, "to": a.last, "tz": "UTC"})
        urls = [f"/api/v1/statistics/{name}?{query}" for name in dl.API_REPORTS]
        for i in range(a.runs):
            r = dl.api_load(server, os.environ["KEY"], urls, 300)
            print(f"load {i}: {r['wall']:.0f} ms wall", flush=True)
        time.sleep(6)
        assert server.proc is not None
        for key in dl.tree_rss(server.proc.pid):
            pid, name = key.split(" ", 1)
            if "trail.worker" not in name:
                continue
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            fields = ("VmRSS", "RssAnon", "RssFile", "VmHWM")
            print(name, {ln.split(":")[0]: int(ln.split()[1]) // 1024 for ln in status
                         if ln.startswith(fields)})  # fmt: skip
            biggest = sorted(mappings(int(pid)).items(), key=lambda x: -x[1][0])[:8]
            for path, (rss, anon) in biggest:
                print(f"   {rss / 1024:7.1f} MB  ({anon / 1024:5.1f} anonymous)  {path[-90:]}")
    finally:
        dl.stop_server(server)


if __name__ == "__main__":
    main()

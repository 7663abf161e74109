"""Run statements against a chDB directory in a process of its own, print the results as JSON.

chDB runs one engine per process and locks its directory, so the tests (one pytest process,
many temporary databases) reach it through this:

    python -m tests.clickhouse.chq URL [--migrate] [--hold] [SQL ...]

--migrate applies trail's migrations first (printing the versions applied), each SQL prints its
rows, and --hold keeps the engine open until stdin closes (ClickHouse "down" for others).
"""

from __future__ import annotations

import sys
from typing import Any

import orjson

from trail.clickhouse.client import connect, migrate
from trail.clickhouse.url import parse


def main(argv: list[str]) -> None:
    url, *rest = argv
    target = parse(url)
    client = connect(target)
    out: dict[str, Any] = {"results": []}
    if "--migrate" in rest:
        out["applied"] = migrate(client, target.database)
    for sql in (a for a in rest if not a.startswith("--")):
        rows = client.query(sql).result_rows
        out["results"].append([list(r) for r in rows])
    print(orjson.dumps(out, default=str).decode(), flush=True)
    if "--hold" in rest:
        sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1:])

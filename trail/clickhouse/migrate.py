"""`trail migrate clickhouse`: a data directory's history into ClickHouse.

The shipper sends what is sealed after its first scan (trail.clickhouse.spool); what compaction
had merged into Parquet parts by then is history. That first scan links those parts into
`<data_dir>/clickhouse/history/`, and this command ships them: in slices of `SLICE_ROWS` rows,
each insert with a deduplication token made of the node id, the file and the slice, the
position (`history.json`: rows shipped per file) saved after ClickHouse acknowledged it, a file
unlinked once shipped. Run it again after a crash, or twice: a resent slice is dropped by
ClickHouse, a shipped file is gone, so nothing is counted twice.

Compacted session parts keep a cancelled state as one presence row with sign 0
(trail.tasks.compaction): it adds nothing to any sum, but shows its visitor in its window.
`sessions` (VersionedCollapsingMergeTree) accepts only +1/-1, so those rows go to
`session_states` alone, and the others to `sessions` (whose view copies the +1 rows into
`session_states`).

A data directory the shipper has not scanned yet gets its first scan here (the spool then
holds its segments for the shipper).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from trail.clickhouse.client import connect, migrate
from trail.clickhouse.shipper import _node_id as node_id
from trail.clickhouse.spool import Discovery, history_dir, root
from trail.clickhouse.url import Target
from trail.storage.daydir import write_atomic
from trail.storage.schema import TABLES

SLICE_ROWS = 100_000

# (file, rows of the slice, rows shipped of the file, its rows) after every acknowledged slice.
Report = Callable[[str, int, int, int], None]


def history(data_dir: Path) -> list[Path]:
    """The history files still to ship, in name order (table, site, day)."""
    folder = history_dir(data_dir)
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(".parquet"))


def first_scan(data_dir: Path) -> None:
    """The shipper's first scan, if it has not run: it records the history."""
    if not (root(data_dir) / "watermarks.json").exists():
        Discovery.open(data_dir).scan()


def ship_history(data_dir: Path, target: Target, report: Report | None = None) -> dict[str, int]:
    """Ship every history file; returns rows shipped now per table (sessions: rows sent to
    `sessions` and `session_states` together)."""
    data_dir = Path(data_dir)
    first_scan(data_dir)
    files = history(data_dir)
    shipped: dict[str, int] = {}
    if not files:
        return shipped
    client = connect(target)
    migrate(client, target.database)
    node = node_id(data_dir)  # several nodes' history files have the same names
    position = _read(data_dir)
    for path in files:
        table = path.name.split("~", 1)[0]
        frame = _read_part(path, table)
        done = position.get(path.name, 0)
        while done < frame.height:
            start, end = done, min(frame.height, done + SLICE_ROWS)
            _insert(client, target.database, table, frame.slice(done, end - done),
                    f"{node}|history|{path.name}|{done}:{end}")  # fmt: skip
            shipped[table] = shipped.get(table, 0) + end - done
            done = position[path.name] = end
            _write(data_dir, position)
            if report is not None:
                report(path.name, end - start, done, frame.height)
        path.unlink()
        position.pop(path.name, None)
        _write(data_dir, position)
    return shipped


def _read_part(path: Path, table: str) -> Any:
    """The part's rows in the segment schema (a column added since it was written reads as its
    zero value)."""
    import polars as pl

    schema = TABLES[table]
    lf = pl.scan_parquet(path)
    have = set(lf.collect_schema().names())
    zero = {pl.Boolean: False, pl.String: ""}
    columns = [
        pl.col(c).cast(t) if c in have else pl.lit(zero.get(type(t), 0)).cast(t).alias(c)
        for c, t in schema.items()
    ]
    return lf.select(columns).collect()


def _insert(client: Any, database: str, table: str, rows: Any, position: str) -> None:
    import polars as pl

    site = position.split("|")[2].split("~")[1]
    rows = rows.with_columns(site_id=pl.lit(site)).select("site_id", *TABLES[table])
    parts = [(table, rows)]
    if table == "sessions":  # presence rows (sign 0) to the states alone
        parts = [
            ("sessions", rows.filter(pl.col("sign") != 0)),
            ("session_states", rows.filter(pl.col("sign") == 0)),
        ]
    for target, part in parts:
        if part.is_empty():
            continue
        token = hashlib.sha256(f"{position}|{target}".encode()).hexdigest()
        settings = {
            "insert_deduplicate": 1,
            "insert_deduplication_token": token,
            "deduplicate_blocks_in_dependent_materialized_views": 1,
            "async_insert": 0,
        }
        arrow = part.to_arrow(compat_level=pl.CompatLevel.oldest())
        client.insert_arrow(f"{database}.{target}", arrow, settings=settings)


def _read(data_dir: Path) -> dict[str, int]:
    try:
        raw = orjson.loads((root(data_dir) / "history.json").read_bytes())
    except FileNotFoundError:
        return {}
    return {str(k): int(v) for k, v in raw.items()}


def _write(data_dir: Path, position: dict[str, int]) -> None:
    write_atomic(root(data_dir) / "history.json", orjson.dumps(position))


def cmd_migrate(args: Any) -> int:
    """`trail migrate clickhouse --data-dir D [--url URL]`: the exit code."""
    import sys

    from trail.clickhouse.url import UrlError, parse
    from trail.config import ConfigError, load
    from trail.importers.progress import ImportProgress

    try:
        config = load(args.config, flags={"data_dir": args.data_dir}, create_data_dir=False)
    except ConfigError as e:
        print(f"trail migrate: {e}", file=sys.stderr)
        return 2
    url = args.url or config.clickhouse_url
    if not url:
        print("trail migrate: --url or clickhouse_url is required", file=sys.stderr)
        return 2
    try:
        target = parse(url)
    except UrlError as e:
        print(f"trail migrate: clickhouse_url: {e}", file=sys.stderr)
        return 2
    data_dir = Path(config.data_dir)
    if not (data_dir / "segments").is_dir():
        print(f"trail migrate: {data_dir} holds no segments", file=sys.stderr)
        return 2
    first_scan(data_dir)
    files = history(data_dir)
    sizes = {f.name: f.stat().st_size for f in files}
    bar = ImportProgress("migrating")
    bar.begin("history", sum(sizes.values()))
    progress = {"bytes": 0, "rows": 0}

    def report(name: str, rows: int, done: int, total: int) -> None:
        progress["rows"] += rows
        if done >= total:
            progress["bytes"] += sizes.get(name, 0)
        bar.advance(progress["bytes"], progress["rows"], progress["bytes"])

    shipped = ship_history(data_dir, target, report)
    bar.close()
    print(orjson.dumps({"shipped": shipped, "target": target.describe()}).decode())
    return 0

"""`trail migrate clickhouse`: a data directory's history into ClickHouse.

The shipper sends what is sealed after its first scan (trail.clickhouse.spool); what compaction
had merged into Parquet parts by then is history. That first scan links those parts into
`<data_dir>/clickhouse/history/`, and this command ships them in batches of up to
`BATCH_ROWS` rows of one table (several files' slices in one insert, trail.clickhouse.batches).
The batch is written to the position (`history.json`: rows shipped per file, and the batch in
flight) before it is sent, each insert carries a deduplication token made of the node id and
the batch's (file, first row, end row) slices, and the position advances after ClickHouse
acknowledged it; a file is unlinked once shipped. Run it again after a crash, or twice: the
batch in flight is sent again with the same tokens and dropped by ClickHouse, a shipped file is
gone, so nothing is counted twice.

Rows of a deletion (a tombstone, a deleted site) are left out, as the shipper leaves them out;
a deletion recorded while a batch was on its way (on any node: the meta store's deletions are
read before and after each batch) is applied to ClickHouse after it (trail.clickhouse.deletions).

Compacted session parts keep a cancelled state as one presence row with sign 0
(trail.tasks.compaction): it adds nothing to any sum, but shows its visitor in its window.
`sessions` (VersionedCollapsingMergeTree) accepts only +1/-1, so those rows go to
`session_states` alone, and the others to `sessions` (whose view copies the +1 rows into
`session_states`).

A data directory the shipper has not scanned yet gets its first scan here (the spool then
holds its segments for the shipper).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from trail.clickhouse import batches, deletions
from trail.clickhouse.client import connect, migrate
from trail.clickhouse.position import Slice, node_id
from trail.clickhouse.spool import Discovery, history_dir, root
from trail.clickhouse.url import Target
from trail.storage.daydir import write_atomic
from trail.storage.schema import TABLES

# Rows per insert: one round trip and one ClickHouse part per table and batch.
BATCH_ROWS = 500_000

# (file, rows of the slice, rows shipped of the file, its rows) after every acknowledged batch.
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


def ship_history(
    data_dir: Path, target: Target, report: Report | None = None, meta: Any = None
) -> dict[str, int]:
    """Ship every history file; returns rows shipped now per table (sessions: rows sent to
    `sessions` and `session_states` together). `meta`: the meta store, whose deletions
    (every node's) are applied too."""
    data_dir = Path(data_dir)
    first_scan(data_dir)
    files = {p.name: p for p in history(data_dir)}
    shipped: dict[str, int] = {}
    if not files:
        return shipped
    client = connect(target)
    migrate(client, target.database)
    node = node_id(data_dir)  # several nodes' history files have the same names
    offsets, pending = _read(data_dir)
    sizes = {name: _row_count(path) for name, path in files.items()}
    while True:
        plan = pending or _plan(sizes, offsets)
        if not plan:
            break
        if pending is None:
            _write(data_dir, offsets, plan)  # a restart sends this batch again, same tokens
        table = _table(plan[0][0])
        known = _deletions(data_dir, meta)
        _insert(client, target.database, table, _read_slices(data_dir, files, table, plan),
                batches.token(node, "history", table, *(f"{n}:{a}:{b}" for n, a, b in plan)))  # fmt: skip
        _late_deletions(client, target.database, data_dir, meta, known)
        for name, start, end in plan:
            offsets[name] = end
            shipped[table] = shipped.get(table, 0) + end - start
        pending = None
        _write(data_dir, offsets, None)
        for name, start, end in plan:
            if report is not None:
                report(name, end - start, end, sizes[name])
            if end >= sizes[name]:
                files[name].unlink(missing_ok=True)
                offsets.pop(name, None)
                del sizes[name]
    _write(data_dir, offsets, None)
    return shipped


def _table(name: str) -> str:
    return name.split("~", 1)[0]


def _plan(sizes: dict[str, int], offsets: dict[str, int]) -> list[Slice]:
    """The next batch: slices of the first unshipped files of one table, up to BATCH_ROWS rows."""
    plan: list[Slice] = []
    rows = 0
    for name in sorted(sizes):
        done = offsets.get(name, 0)
        if done >= sizes[name]:
            continue
        if plan and _table(name) != _table(plan[0][0]):
            break
        end = min(sizes[name], done + BATCH_ROWS - rows)
        plan.append((name, done, end))
        rows += end - done
        if rows >= BATCH_ROWS:
            break
    return plan


def _row_count(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def _arrow_schema(table: str) -> Any:
    import polars as pl

    return pl.DataFrame(schema=TABLES[table]).to_arrow(compat_level=pl.CompatLevel.oldest()).schema


def _read_slices(data_dir: Path, files: dict[str, Path], table: str, plan: list[Slice]) -> Any:
    """The slices' rows in the segment schema with `site_id` first, deleted rows left out."""
    import pyarrow as pa

    schema = _arrow_schema(table)
    parts = []
    for name, start, end in plan:
        site = name.split("~")[1]
        rows = _conform(_read_part(files[name]), schema).slice(start, end - start)
        parts.append(batches.with_site(batches.keep(data_dir, site, table, rows), site))
    return pa.concat_tables(parts).combine_chunks()


def _read_part(path: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _conform(rows: Any, schema: Any) -> Any:
    """`rows` with the schema's columns and types (a column added since the part was written
    reads as its zero value)."""
    import pyarrow as pa

    columns = []
    for f in schema:
        if f.name in rows.column_names:
            columns.append(rows.column(f.name).cast(f.type))
        else:
            zero = False if pa.types.is_boolean(f.type) else "" if pa.types.is_string(f.type) else 0
            columns.append(pa.repeat(pa.scalar(zero, f.type), rows.num_rows))
    return pa.Table.from_arrays(columns, schema=schema)


def _insert(client: Any, database: str, table: str, rows: Any, token: str) -> None:
    import pyarrow.compute as pc

    parts = [(table, rows)]
    if table == "sessions":  # presence rows (sign 0) to the states alone
        zero = pc.equal(rows.column("sign"), 0)
        parts = [("sessions", rows.filter(pc.invert(zero))), ("session_states", rows.filter(zero))]
    for target, part in parts:
        if part.num_rows:
            batches.insert(client, database, target, part, batches.token(token, target))


def _deletions(data_dir: Path, meta: Any) -> set[str]:
    """The ids of every deletion known now (the meta store's brought into the data directory)."""
    if meta is not None:
        deletions.sync(meta, data_dir)
    return {deletions.stone_id(site, s) for site, s in deletions.all_deletions(data_dir)}


def _late_deletions(client: Any, database: str, data_dir: Path, meta: Any, known: set[str]) -> None:
    """Apply the deletions recorded while a batch was read and sent: the shipper may have
    applied them before the batch arrived (it records them; a second DELETE is harmless)."""
    _deletions(data_dir, meta)
    for site, stone in deletions.all_deletions(data_dir):
        if deletions.stone_id(site, stone) not in known:
            deletions.apply(client, database, site, stone)


def _read(data_dir: Path) -> tuple[dict[str, int], list[Slice] | None]:
    """The position: rows shipped per file, and the batch in flight."""
    try:
        raw = orjson.loads((root(data_dir) / "history.json").read_bytes())
    except FileNotFoundError:
        return {}, None
    if "offsets" not in raw:  # the first format: offsets alone
        return {str(k): int(v) for k, v in raw.items()}, None
    pending = raw.get("pending")
    offsets = {str(k): int(v) for k, v in raw["offsets"].items()}
    return offsets, [(str(n), int(a), int(b)) for n, a, b in pending] if pending else None


def _write(data_dir: Path, offsets: dict[str, int], pending: list[Slice] | None) -> None:
    body = {"offsets": offsets, "pending": pending}
    write_atomic(root(data_dir) / "history.json", orjson.dumps(body))


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

    meta = deletions.open_meta(data_dir)
    try:
        shipped = ship_history(data_dir, target, report, meta)
    finally:
        if meta is not None:
            meta.close()
    bar.close()
    print(orjson.dumps({"shipped": shipped, "target": target.describe()}).decode())
    return 0

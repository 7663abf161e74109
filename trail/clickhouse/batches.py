"""One insert into ClickHouse: rows read as Arrow, deleted rows left out, a deduplication token.

Both the shipper (spooled segments, trail.clickhouse.shipper) and `trail migrate clickhouse`
(compacted history, trail.clickhouse.migrate) send their rows through `insert`: the files' Arrow
columns with the site's id as a repeated column in front, one record batch and one round trip
per table and batch, and a token derived from the batch's position so that ClickHouse drops a
resent batch.

Rows a tombstone covers (trail.storage.tombstones) are left out before sending, as every scan
of the segments leaves them out, and so are all rows of a deleted site: a deletion is applied to
what ClickHouse has (trail.clickhouse.deletions) and never reaches what is sent afterwards.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from trail.clickhouse.deletions import deleted_sites
from trail.clickhouse.position import Slice
from trail.clickhouse.spool import spooled
from trail.storage import tombstones

# Every insert: deduplicated by its token, also in session_states (the view of sessions), and
# acknowledged only once stored.
INSERT_SETTINGS = {
    "insert_deduplicate": 1,
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "async_insert": 0,
}


def insert(client: Any, database: str, table: str, rows: Any, token: str) -> None:
    """Insert the Arrow table `rows` into `database.table` with deduplication token `token`."""
    settings = {**INSERT_SETTINGS, "insert_deduplication_token": token}
    client.insert_arrow(f"{database}.{table}", rows, settings=settings)


def token(*parts: str) -> str:
    """A deduplication token: the hash of the parts naming an insert's position."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def slices_token(node: str, table: str, slices: list[Slice]) -> str:
    """The shipper's token of one table's insert: node id, table and the (file, start, end)
    slices it holds; the same after any restart."""
    return token(node, table, *(f"{n}:{a}:{b}" for n, a, b in slices))


def by_table(plan: list[Slice]) -> list[tuple[str, list[Slice]]]:
    tables: dict[str, list[Slice]] = {}
    for piece in plan:
        item = spooled(piece[0])
        assert item is not None  # the plan holds spooled names only
        tables.setdefault(item.table, []).append(piece)
    return list(tables.items())


def read_slices(data_dir: Path, spool: Path, table: str, slices: list[Slice]) -> Any:
    """One Arrow table of the slices' rows, `site_id` first, rows a tombstone covers left out.

    One record batch: ClickHouse parses one large batch with less work than many small ones
    (the files' own batches, one per sealing), more than the copy costs here."""
    import pyarrow as pa

    parts = []
    for name, start, end in slices:
        item = spooled(name)
        assert item is not None
        with pa.memory_map(str(spool / name)) as source:
            rows = pa.ipc.open_file(source).read_all().slice(start, end - start)
        parts.append(with_site(keep(data_dir, item.site, table, rows), item.site))
    return pa.concat_tables(parts).combine_chunks()


def with_site(rows: Any, site: str) -> Any:
    """`rows` with the site's id as its first column."""
    import pyarrow as pa

    return rows.add_column(0, "site_id", pa.repeat(pa.scalar(site, pa.string()), rows.num_rows))


def keep(data_dir: Path, site: str, table: str, rows: Any) -> Any:
    """`rows` (Arrow, with `time`) without those a deletion of the site deletes."""
    import pyarrow.compute as pc

    if site in deleted_sites(data_dir):
        return rows.slice(0, 0)
    stones = tombstones.load(data_dir, site)
    if not stones or rows.num_rows == 0:
        return rows
    times = rows.column("time").cast("int64")
    first, last = pc.min_max(times).values()
    stones = tombstones.relevant(stones, table, first.as_py(), last.as_py() + 1)
    if not stones:
        return rows
    dead = None
    for s in stones:
        hit = pc.and_(
            pc.and_(pc.greater_equal(times, s.start_ms), pc.less(times, s.end_ms)),
            pc.less_equal(times, s.deleted_at_ms),
        )
        dead = hit if dead is None else pc.or_(dead, hit)
    return rows.filter(pc.invert(dead))

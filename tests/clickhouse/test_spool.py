"""Discovery of sealed segments on real segment files (a server's, then real compaction), and
the one shipper a data directory has."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from trail.clickhouse.shipper import Shipper, ShipperBusy
from trail.clickhouse.spool import MARGIN_NS, Discovery, spool_dir, spooled
from trail.clickhouse.url import parse
from trail.tasks import compaction


def arrow_files(data: Path) -> list[Path]:
    return sorted((data / "segments").rglob("*.arrow"))


def past_the_margin(data: Path) -> None:
    """Wait until every segment is older than discovery's margin (the fixture's server has
    just stopped): then only a WAL file keeps a generation from the spool."""
    newest = max(generation(f)[1] for f in arrow_files(data))
    time.sleep(max(0.0, (newest + MARGIN_NS - time.time_ns()) / 1e9))


def generation(segment: Path) -> tuple[int, int]:
    """(worker, generation) of a `w<worker>-g<gen>-<n>.arrow` segment."""
    worker, gen, _ = segment.name.removesuffix(".arrow").split("-")
    return int(worker[1:]), int(gen[1:])


def test_a_generation_waits_for_its_wal_file(copy: Path) -> None:
    worker, gen = generation(arrow_files(copy)[0])
    wal = copy / "wal" / f"worker-{worker}-{gen}.wal"
    wal.write_bytes(b"")  # as if the sealer had not finished this generation
    past_the_margin(copy)  # every other generation complete

    discovery = Discovery.open(copy)
    discovery.scan()
    # That worker's generations from this one on wait; every other segment is linked.
    waiting = [
        f for f in arrow_files(copy) if generation(f)[0] == worker and generation(f)[1] >= gen
    ]
    assert waiting and discovery.deferred == len(waiting)
    assert len(os.listdir(spool_dir(copy))) == len(arrow_files(copy)) - len(waiting)

    wal.unlink()
    discovery.scan()
    names = os.listdir(spool_dir(copy))
    assert len(names) == len(arrow_files(copy)) and discovery.deferred == 0
    assert all(discovery.committed(item) for n in names if (item := spooled(n)) is not None)
    assert discovery.scan() == 0, "linked once"


def _compact(data: Path) -> dict[str, Any]:
    summary = compaction.run_round(data, now=time.time(), delay=0, grace=3600).as_dict()
    assert summary["compacted_dirs"] > 0
    return summary


def test_segments_compacted_before_the_first_scan_are_history(copy: Path) -> None:
    _compact(copy)
    assert arrow_files(copy), "replaced segments stay for the grace period"
    assert Discovery.open(copy).scan() == 0
    # the compacted parts are the history `trail migrate clickhouse` ships, linked as they are
    parts = sorted((copy / "segments").rglob("part-*.parquet"))
    history = sorted((copy / "clickhouse" / "history").iterdir())
    assert len(history) == len(parts) > 0
    assert {os.stat(p).st_ino for p in parts} == {os.stat(h).st_ino for h in history}


def test_segments_compacted_after_discovery_started_are_still_shipped(copy: Path) -> None:
    # Discovery ran before (it recorded watermarks), then rows were sealed and compacted
    # before its next scan: their segments still exist (grace period) and are linked.
    root = copy / "clickhouse"
    root.mkdir()
    (root / "watermarks.json").write_bytes(orjson.dumps({"watermarks": {"0": 0, "1": 0}}))
    _compact(copy)
    assert Discovery.open(copy).scan() == len(arrow_files(copy)) > 0


def test_one_shipper_per_data_directory(copy: Path, tmp_path: Path) -> None:
    target = parse(f"chdb://{tmp_path / 'ch'}")
    first = Shipper(copy, target, Discovery.open(copy))
    with pytest.raises(ShipperBusy, match="another process ships"):
        Shipper(copy, target, Discovery.open(copy))
    first._lock.close()  # what the first one's exit does
    Shipper(copy, target, Discovery.open(copy))


def test_a_quiet_wal_directory_is_not_walked(copy: Path) -> None:
    newest = max(generation(f)[1] for f in arrow_files(copy))
    time.sleep(max(0.0, (newest + MARGIN_NS - time.time_ns()) / 1e9))
    wal = copy / "wal"
    settled = time.time_ns() - 10_000_000_000
    os.utime(wal, ns=(settled, settled))
    discovery = Discovery.open(copy)
    assert discovery.scan() == len(arrow_files(copy))

    # A segment no WAL file announced (a sealer never writes one): a quiet WAL directory means
    # no generation completed, so the tree is not walked and the file is not seen...
    source = arrow_files(copy)[0]
    worker, _ = generation(source)
    late = source.with_name(f"w{worker}-g{time.time_ns()}-0.arrow")
    os.link(source, late)
    time.sleep(MARGIN_NS / 1e9 + 0.1)
    assert discovery.scan() == 0
    assert len(os.listdir(spool_dir(copy))) == len(arrow_files(copy)) - 1

    # ...until a WAL file comes and goes, as every generation's does.
    announced = wal / f"worker-{worker}-{time.time_ns()}.wal"
    announced.touch()
    announced.unlink()
    assert discovery.scan() == 1
    assert len(os.listdir(spool_dir(copy))) == len(arrow_files(copy))

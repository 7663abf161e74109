"""Live merges (trail.tasks.live_merge): the segments of open days become a few parts with every
report unchanged, tiered, tombstones and pending WAL generations respected, a kill -9 in the
middle of a merge losing and doubling nothing; the engine's compressed segments, and rows
replayed from the WAL of a killed worker, go the same way."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pytest
from pyarrow import ipc

from bench.stats_gen import FIRST_DAY, SITE
from tests.test_compaction import (
    AFTER,
    DAYS,
    all_reports,
    all_reports_small,
    assert_same_reports,
    copied,
    generated,
)
from trail.storage import tombstones
from trail.storage.daydir import Manifest, list_day
from trail.tasks import compaction, live_merge

ROOT = Path(__file__).resolve().parent.parent
# Every day of the data set is still open at this time.
OPEN = datetime.combine(FIRST_DAY, datetime.min.time(), UTC).timestamp()
ROUNDS = 4


def day_dirs(data_dir: Path) -> list[Path]:
    return sorted(p for p in (data_dir / "segments").glob("*/site=*/day=*") if p.is_dir())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The WAL sealer's segments (24 a table a day), another seed than the compaction tests'."""
    return generated(tmp_path_factory, "live", 11)


@pytest.fixture
def data_dir(dataset: Path, tmp_path: Path) -> Path:
    return copied(dataset, tmp_path)


def hold_back(data_dir: Path, holding: Path) -> list[list[tuple[Path, Path]]]:
    """Move every segment to `holding`; the moves that bring them back, in ROUNDS batches."""
    batches: list[list[tuple[Path, Path]]] = [[] for _ in range(ROUNDS)]
    for d in day_dirs(data_dir):
        names = sorted(n for n in os.listdir(d) if n.endswith(".arrow"))
        for i, n in enumerate(names):
            held = holding / d.relative_to(data_dir) / n
            held.parent.mkdir(parents=True, exist_ok=True)
            (d / n).rename(held)
            batches[i * ROUNDS // len(names)].append((held, d / n))
    return batches


def test_rounds_of_live_merges_change_no_report(data_dir: Path, tmp_path: Path) -> None:
    before = all_reports(data_dir)
    assert before[("total", 0)]["views"] > 15_000
    plain = tmp_path / "plain"  # the same rows arriving, never merged
    shutil.copytree(data_dir, plain)
    for batch in hold_back(plain, tmp_path / "held-plain"):
        for held, home in batch:
            held.rename(home)
    most_parts = 0
    for batch in hold_back(data_dir, tmp_path / "held"):
        for held, home in batch:
            held.rename(home)
        summary = live_merge.run_round(data_dir, now=OPEN, grace=0)
        assert summary.as_dict()["compacted_dirs"] >= 3 * DAYS
        for d in day_dirs(data_dir):
            arrow, parquet = list_day(d)
            manifest = Manifest.read(d)
            assert arrow == [] and manifest.provisional and manifest.rollup == {}
            assert not [n for n in os.listdir(d) if n.endswith(".arrow")], "inputs deleted"
            most_parts = max(most_parts, len(parquet))
    # Tiered: a part is merged again only while it is not much larger than the new rows.
    assert 1 < most_parts <= 3
    assert_same_reports(all_reports_small(plain), all_reports_small(data_dir))
    assert_same_reports(before, all_reports(data_dir))

    # Once the days close, compaction rewrites the provisional parts into one final part.
    summary = compaction.run_round(data_dir, now=AFTER, grace=0)
    assert summary.as_dict()["compacted_dirs"] == len(day_dirs(data_dir))
    for d in day_dirs(data_dir):
        manifest = Manifest.read(d)
        assert len(list_day(d)[1]) == 1 and not manifest.provisional
    sessions = Manifest.read(data_dir / "segments/sessions" / f"site={SITE}" / f"day={FIRST_DAY}")
    assert sessions.rollup, "the final part has its rollup"
    assert_same_reports(before, all_reports(data_dir))


def test_segments_of_pending_generations_wait(data_dir: Path) -> None:
    d = data_dir / "segments/sessions" / f"site={SITE}" / f"day={FIRST_DAY}"
    name = min(n for n in os.listdir(d) if n.endswith(".arrow"))
    worker, gen = name.split("-")[0][1:], name.split("-")[1][1:]
    (data_dir / "wal").mkdir()
    wal = data_dir / "wal" / f"worker-{worker}-{gen}.wal"
    wal.write_bytes(b"")
    before = all_reports_small(data_dir)
    summary = live_merge.run_round(data_dir, now=OPEN, grace=0).as_dict()
    assert summary["deferred_files"] >= 1
    arrow, parquet = list_day(d)
    assert [Path(a).name for a in arrow] == [name] and len(parquet) == 1
    assert_same_reports(before, all_reports_small(data_dir))
    wal.unlink()
    live_merge.run_round(data_dir, now=OPEN, grace=0)
    assert list_day(d)[0] == []
    assert_same_reports(before, all_reports_small(data_dir))


def test_closed_days_are_left_to_compaction(data_dir: Path) -> None:
    assert live_merge.run_round(data_dir, now=AFTER, grace=0).dirs == []


def test_tombstones_hide_rows_before_and_after_a_live_merge(data_dir: Path) -> None:
    day = FIRST_DAY + timedelta(days=1)
    start = int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)
    live_merge.run_round(data_dir, now=OPEN, grace=0)
    tombstones.add(data_dir, SITE, tombstones.ALL_TABLES, start, start + 6 * 3_600_000)
    hidden = all_reports_small(data_dir)
    d = data_dir / "segments/page_views" / f"site={SITE}" / f"day={day}"
    part = pl.read_parquet(list_day(d)[1][0])
    ms = pl.col("time").dt.epoch("ms")
    late = part.filter((ms >= start) & (ms < start + 6 * 3_600_000)).head(50)
    assert late.height == 50
    late.write_ipc(d / "w9-g1-0.arrow")  # rows of the deleted range, sealed late
    assert_same_reports(hidden, all_reports_small(data_dir))
    live_merge.run_round(data_dir, now=OPEN, grace=0)
    assert_same_reports(hidden, all_reports_small(data_dir))
    manifest = Manifest.read(d)
    assert manifest.tombstones_at > 0 and len(manifest.live) == 1, "all parts rewritten"
    t = pl.read_parquet(d / manifest.live[0])["time"].dt.epoch("ms")
    assert t.filter((t >= start) & (t < start + 6 * 3_600_000)).len() == 0


MERGER = """
import sys, time
from trail.tasks import live_merge
print("ready", flush=True)
while True:
    live_merge.run_round(sys.argv[1], now=float(sys.argv[2]), grace=0)
"""


def test_a_merge_killed_at_any_moment_loses_and_doubles_nothing(
    data_dir: Path, tmp_path: Path
) -> None:
    before = all_reports_small(data_dir)
    batches = hold_back(data_dir, tmp_path / "held")
    interrupted = 0
    delays = [0.05, 0.2, 0.4, 0.7, 1.0, 1.5]
    for i, delay in enumerate(delays):
        for held, home in batches[i % ROUNDS]:
            if held.exists():
                held.rename(home)
        proc = subprocess.Popen(
            [sys.executable, "-c", MERGER, str(data_dir), str(OPEN)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            env={**os.environ, "POLARS_MAX_THREADS": "1"},
        )
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Whatever the moment, the files a reader picks hold every row exactly once.
        if i % ROUNDS == ROUNDS - 1 or i == len(delays) - 1:
            for batch in batches:
                for held, home in batch:
                    if held.exists():
                        held.rename(home)
            assert_same_reports(before, all_reports_small(data_dir))
        left = [n for d in day_dirs(data_dir) for n in os.listdir(d)]
        interrupted += any(n.endswith((".tmp", ".arrow")) for n in left)
    assert interrupted, "no kill landed before the merges were done"
    summary = live_merge.run_round(data_dir, now=OPEN, grace=0).as_dict()
    assert summary["failed_dirs"] == 0, summary
    for d in day_dirs(data_dir):
        names = os.listdir(d)
        assert not [n for n in names if n.endswith((".tmp", ".arrow"))], names
        assert sorted(Path(p).name for p in list_day(d)[1]) == sorted(
            n for n in names if n.startswith("part-")
        ), "orphan parts removed"
    assert_same_reports(before, all_reports_small(data_dir))


CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
INGEST = """
import sys, orjson
from trail.core import Engine
from trail.datalists import load_bot_lists
engine = Engine(sys.argv[1], 0, {"seal_interval_ms": 3_600_000}, {}, load_bot_lists())
hits = orjson.loads(sys.argv[2])
print(engine.ingest_api("site-a", "example.com", "hit", orjson.dumps(hits), True)["accepted"],
      flush=True)
input()  # killed here: acknowledged, in the WAL, never sealed
"""


def test_killed_worker_replays_into_compressed_segments_that_merge(tmp_path: Path) -> None:
    from trail.core import recover_wal

    hits = [
        {"url": f"https://example.com/p{i % 7}", "ip": f"81.2.{i % 50}.{i % 200 + 1}",
         "user_agent": CHROME}
        for i in range(300)
    ]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", INGEST, str(tmp_path), orjson.dumps(hits).decode()],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"300\n"
    proc.kill()
    proc.wait()
    assert not list(tmp_path.rglob("*.arrow")) and list((tmp_path / "wal").glob("*.wal"))
    recover_wal(tmp_path, 0)
    segment = next((tmp_path / "segments/page_views").rglob("*.arrow"))
    table = ipc.open_file(segment).read_all()
    assert table.num_rows == 300
    plain = pa.BufferOutputStream()
    with ipc.new_file(plain, table.schema) as writer:
        writer.write_table(table)
    assert segment.stat().st_size * 3 < plain.getvalue().size, "zstd-compressed buffers"
    assert pl.read_ipc(segment)["path"].to_list() == [f"/p{i % 7}" for i in range(300)]

    live_merge.run_round(tmp_path, now=time.time(), grace=0)
    d = segment.parent
    arrow, parquet = list_day(d)
    assert arrow == [] and len(parquet) == 1
    assert pl.read_parquet(parquet[0]).height == 300


def test_a_server_merges_todays_segments_while_it_runs(tmp_path: Path) -> None:
    from tests.server import TrailServer

    env = {"TRAIL_SEAL_INTERVAL_MS": "200", "TRAIL_LIVE_MERGE_INTERVAL_S": "1"}
    s = TrailServer(tmp_path / "data", workers=2, env=env).start()
    try:
        site, key = s.create_site()
        for i in range(40):  # a visitor per hit
            body = {"url": f"https://example.com/k{i % 4}", "ip": f"81.2.3.{i + 1}",
                    "user_agent": CHROME}  # fmt: skip
            assert s.call("POST", "/api/v1/hit", body, key=key).status == 200
        today = time.strftime("%Y-%m-%d", time.gmtime())
        day = tmp_path / "data/segments/page_views" / f"site={site}" / f"day={today}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            arrow, parquet = list_day(day)
            rows = sum(pl.read_parquet(p).height for p in parquet)
            if not arrow and rows == 40:
                break
            time.sleep(0.2)
        assert not arrow and rows == 40, (arrow, parquet)
        assert Manifest.read(day).provisional
        total = s.stats("total", site, **{"from": today, "to": today})
        assert (total["visitors"], total["views"], total["sessions"]) == (40, 40, 40)
        pages = s.stats("page", site, **{"from": today, "to": today})
        assert sorted((p["path"], p["views"]) for p in pages) == [(f"/k{j}", 10) for j in range(4)]
    finally:
        s.stop()

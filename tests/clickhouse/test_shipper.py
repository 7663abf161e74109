"""The shipper end to end: rows ingested by a real server, shipped into ClickHouse's engine (chDB
through clickhouse-connect, as a server deployment runs it), compared with trail's own numbers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.clickhouse.test_schema import ROOT
from tests.clickhouse.traffic import (
    DAY,
    FAST_SEAL,
    clickhouse_numbers,
    segment_rows,
    send_traffic,
    shipped_rows,
    trail_totals,
    wait_until,
)
from tests.server import TrailServer
from trail.clickhouse.shipper import read_status
from trail.clickhouse.spool import spool_dir


def shipper(data: Path, url: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "trail.clickhouse.shipper",
        "--data-dir",
        str(data),
        "--url",
        url,
        *args,
    ]


def run_shipper(data: Path, url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        shipper(data, url, *args),
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def test_shipped_rows_match_trails_statistics(
    traffic: dict[str, Any], copy: Path, tmp_path: Path
) -> None:
    url = f"chdb://{tmp_path / 'ch'}"
    done = run_shipper(copy, url, "--drain", "--batch-rows", "700", "--max-batch-rows", "700")
    assert done.returncode == 0, done.stderr
    totals, rows = clickhouse_numbers(url, traffic["site"])
    assert totals == traffic["total"]
    assert rows == traffic["rows"]
    status = read_status(copy)
    assert status is not None
    assert status["rows_shipped"] == traffic["shipped"] and status["pending_rows"] == 0
    assert status["batches"] >= traffic["shipped"] // 700
    assert os.listdir(spool_dir(copy)) == [], "shipped files leave the spool"

    # Nothing new: a second run ships nothing and changes nothing.
    again = run_shipper(copy, url, "--drain")
    assert again.returncode == 0, again.stderr
    assert clickhouse_numbers(url, traffic["site"]) == (totals, rows)
    assert read_status(copy)["batches"] == status["batches"]  # type: ignore[index]


def test_kill_9_mid_batch_loses_nothing_and_counts_nothing_twice(
    traffic: dict[str, Any], copy: Path, tmp_path: Path
) -> None:
    url = f"chdb://{tmp_path / 'ch'}"
    small = ("--batch-rows", "300", "--max-batch-rows", "300")
    # Killed right after ClickHouse acknowledged the 5th insert, before the position moved.
    killed = run_shipper(copy, url, *small, TRAIL_CLICKHOUSE_KILL_AFTER_INSERTS="5")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    position = (copy / "clickhouse" / "shipper.json").read_bytes()
    assert b'"pending":[[' in position, "killed with a batch in flight"

    # Killed again from outside, at whatever point it reached.
    proc = subprocess.Popen(shipper(copy, url, *small), cwd=ROOT, stderr=subprocess.DEVNULL)
    before = read_status(copy)["rows_shipped"]  # type: ignore[index]
    try:
        wait_until(lambda: read_status(copy)["rows_shipped"] > before)  # type: ignore[index]
    finally:
        proc.kill()
        proc.wait(30)

    done = run_shipper(copy, url, "--drain", *small)
    assert done.returncode == 0, done.stderr
    totals, rows = clickhouse_numbers(url, traffic["site"])
    assert rows == traffic["rows"]
    assert totals == traffic["total"]
    assert read_status(copy)["rows_shipped"] == traffic["shipped"]  # type: ignore[index]


def test_clickhouse_down_then_back(traffic: dict[str, Any], copy: Path, tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'ch'}"
    # Another process holds the engine's directory: for the shipper, ClickHouse is down.
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.clickhouse.chq", url, "--hold"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().startswith("{")
    proc = subprocess.Popen(shipper(copy, url), cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        down = wait_until(lambda: (s := read_status(copy)) and s["retries"] >= 2 and s)
        assert down["rows_shipped"] == 0 and not down["connected"]
        assert down["pending_rows"] == traffic["shipped"]
        assert "lock" in down["last_error"] or "chdb" in down["last_error"]
        assert len(os.listdir(spool_dir(copy))) > 0, "the rows wait on disk"

        holder.stdin.close()
        assert holder.wait(60) == 0
        up = wait_until(lambda: (s := read_status(copy)) and s["pending_rows"] == 0 and s)
        assert up["rows_shipped"] == traffic["shipped"]
        assert up["connected"] and up["last_error"] == ""
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        if holder.poll() is None:
            holder.kill()
    totals, rows = clickhouse_numbers(url, traffic["site"])
    assert (totals, rows) == (traffic["total"], traffic["rows"])


def test_the_maintenance_process_ships_with_storage_clickhouse(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'ch'}"
    env = {**FAST_SEAL, "TRAIL_STORAGE": "clickhouse", "TRAIL_CLICKHOUSE_URL": url}
    s = TrailServer(tmp_path / "data", workers=2, env=env).start()
    try:
        site, key = s.create_site()
        send_traffic(s, key, hits=600)
        total = wait_until(
            lambda: (t := s.stats("total", site, **{"from": DAY, "to": DAY}))["views"] >= 607 and t
        )
        rows, shipped = segment_rows(s.data_dir), shipped_rows(s.data_dir)
        wait_until(
            lambda: (
                (st := read_status(s.data_dir))
                and st["rows_shipped"] == shipped
                and st["pending_rows"] == 0
            )
        )
    finally:
        s.stop()
    assert clickhouse_numbers(url, site) == (trail_totals(total), rows)

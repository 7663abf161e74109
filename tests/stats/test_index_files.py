"""Per-window indexes are built once per machine and read back the same (trail.stats.index_files).

A worker that starts after another one built a window's visitor union, a breakdown's visitor
index or a page report maps the files instead of building them; what it reads back counts the
same visitors as what was built (tests/stats/test_dim_rollups.py compares the reports with the
rows with the files in place).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from trail.stats import index_files, rollup_visitors
from trail.storage import memory


def test_built_once_then_read(tmp_path: Path) -> None:
    calls = []

    def make() -> dict:
        calls.append(1)
        return {"ids": np.arange(5, dtype=np.uint64), "answer": pl.DataFrame({"path": ["/"]})}

    first = index_files.shared(tmp_path, ("union", 1), make)
    again = index_files.shared(tmp_path, ("union", 1), make)
    assert len(calls) == 1
    assert again["ids"].tolist() == [0, 1, 2, 3, 4] and not again["ids"].flags.writeable
    assert again["answer"].equals(first["answer"])
    index_files.shared(tmp_path, ("union", 2), make)  # another key: built again
    assert len(calls) == 2
    assert len(list(tmp_path.iterdir())) == 2


def test_processes_at_the_same_time_build_once(tmp_path: Path) -> None:
    calls, results = [], []

    def make() -> dict:
        calls.append(1)
        time.sleep(0.3)  # the others arrive while it builds
        return {"ids": np.arange(3, dtype=np.uint64)}

    def worker() -> None:
        results.append(index_files.shared(tmp_path, ("k",), make)["ids"].tolist())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and results == [[0, 1, 2]] * 3


def test_old_entries_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_files, "MAX_KEPT", 3)
    root = tmp_path
    stale = root / ".gone.lock"  # left by a process that stopped while building
    stale.touch()
    os.utime(stale, (time.time() - index_files.KEEP_S - 60,) * 2)
    for i in range(5):
        index_files.shared(tmp_path, (i,), lambda: {"a": np.zeros(1)})
    assert len(list(root.iterdir())) == 3 and not stale.exists()


def test_an_index_read_back_counts_the_same(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    days = []
    for _ in range(3):
        ids = np.unique(rng.integers(1, 400, 150).astype(np.uint64))
        combos = pl.DataFrame({"a": ["x", "y", "z"], "visitors": [0, 0, 0]})
        lists = [
            np.sort(rng.choice(len(ids), rng.integers(1, 60), replace=False)) for _ in range(3)
        ]
        combos = combos.with_columns(visitors=pl.Series([len(p) for p in lists], dtype=pl.UInt32))
        deltas = np.concatenate([np.diff(p, prepend=0) for p in lists]).astype(np.uint32)
        for i, p in enumerate(lists):  # each list's first value as is
            deltas[sum(len(q) for q in lists[:i])] = p[0]
        days.append((ids, combos, deltas))
    union = np.unique(np.concatenate([d[0] for d in days]))
    groups = np.array([0, 1, 1] * 3)

    def index(deltas: list) -> rollup_visitors.SetIndex:
        return rollup_visitors.index_for(
            ("set", "files"), [d[1] for d in days], deltas, lambda: [d[0] for d in days],
            lambda: union, ["a"], tmp_path,
        )  # fmt: skip

    built = index([lambda d=d: d[2] for d in days])
    memory.KEPT.drop("set index")

    def unread() -> np.ndarray:
        raise AssertionError("built again instead of read")

    read = index([unread for _ in days])
    want = rollup_visitors.count(built, groups, 2, [], [], [])
    assert rollup_visitors.count(read, groups, 2, [], [], []).tolist() == want.tolist()
    expected = [set(), set()]
    for (ids, _, deltas), day_groups in zip(days, groups.reshape(3, 3), strict=True):
        lens = _lens(days, ids)
        positions = rollup_visitors.positions(deltas, lens)
        for g, chunk in zip(day_groups, np.split(positions, np.cumsum(lens)[:-1]), strict=True):
            expected[g] |= set(ids[chunk].tolist())
    assert want.tolist() == [len(e) for e in expected]


def _lens(days: list, ids: np.ndarray) -> np.ndarray:
    table = next(d[1] for d in days if d[0] is ids)
    return table["visitors"].to_numpy().astype(np.int64)

"""The LMDB meta store's change stamp (`MetaStore.stamp`), read on every browser request through a
map of the env's two meta pages (trail.storage.meta_backend.MappedTxnId): it must be exactly what
LMDB itself reports, after any mix of commits, aborted writes and reads, from this process and
from another one, and the map must refuse a file it cannot read that way."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trail.storage import meta_backend
from trail.storage.meta import MetaStore
from trail.storage.meta_backend import MappedTxnId, mapped_txnid

# Another process with the same env open: commits `n` writes for each line `n` it reads.
WRITER = """
import sys
import lmdb
env = lmdb.open(sys.argv[1], map_size=int(sys.argv[2]), max_dbs=128, max_readers=512)
db = env.open_db(b"elsewhere")
print("open", flush=True)
for line in sys.stdin:
    for i in range(int(line)):
        with env.begin(write=True) as txn:
            txn.put(b"key-%d" % i, b"value", db=db)
    print("done", flush=True)
"""


class Writer:
    def __init__(self, meta_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(meta_dir), str(meta_backend.MAP_SIZE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._line() == "open"

    def commit(self, n: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        assert self._line() == "done"

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(30) == 0


@pytest.fixture(scope="module")
def meta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stamp") / "meta"


@pytest.fixture(scope="module")
def meta(meta_dir: Path) -> Iterator[MetaStore]:
    store = MetaStore.open(meta_dir)
    yield store
    store.close()


@pytest.fixture(scope="module")
def writer(meta: MetaStore, meta_dir: Path) -> Iterator[Writer]:
    w = Writer(meta_dir)
    yield w
    w.close()


def lmdb_txnid(meta: MetaStore) -> int:
    env = meta.env
    assert isinstance(env, lmdb.Environment)
    return int(env.info()["last_txnid"])


def test_an_lmdb_store_reads_its_stamp_through_the_map(meta: MetaStore) -> None:
    assert isinstance(meta.tables._txnid, MappedTxnId)  # type: ignore[attr-defined]
    assert meta.stamp() == lmdb_txnid(meta)


STEPS = st.lists(
    st.tuples(st.sampled_from(["here", "there", "aborted", "read"]), st.integers(0, 4)),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS)
def test_the_stamp_is_what_lmdb_reports_after_any_writes(
    meta: MetaStore, meta_dir: Path, writer: Writer, steps: list[tuple[str, int]]
) -> None:
    table = meta.tables["settings"]
    for who, n in steps:
        before = meta.stamp()
        if who == "here":
            for i in range(n):
                table.put(f"stamp-test-{i}", {"n": i})
        elif who == "there":
            writer.commit(n)
        elif who == "aborted":
            txn = meta.tables.write()
            table.put("stamp-test-aborted", {"n": n}, txn)
            txn.abort()  # type: ignore[union-attr]
        else:
            with meta.tables.read() as txn:
                table.get("stamp-test-0", txn)
        stamp = meta.stamp()
        assert stamp == lmdb_txnid(meta) == meta_backend.last_txnid(meta_dir)
        assert stamp == before + (n if who in ("here", "there") else 0), (who, n)


def test_a_file_of_another_layout_is_not_mapped(tmp_path: Path) -> None:
    assert mapped_txnid(tmp_path / "missing.mdb", lambda: 0) is None
    for body in (b"", b"\0" * 8192, b"not an lmdb file" * 600):
        path = tmp_path / "data.mdb"
        path.write_bytes(body)
        assert mapped_txnid(path, lambda: 0) is None, body[:16]


def test_a_map_that_disagrees_with_lmdb_is_not_used(meta: MetaStore, meta_dir: Path) -> None:
    path = meta_dir / meta_backend.LMDB_FILE
    current = lmdb_txnid(meta)
    agreeing = mapped_txnid(path, lambda: current)
    assert agreeing is not None and agreeing() == current
    assert mapped_txnid(path, lambda: current + 1) is None

"""The maintenance process's session sweep: the LMDB state with session_store = "lmdb", nothing
with "redis" (sessions, salts and rate limits live in Redis there, with expiring keys)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trail.config import Config
from trail.tasks.maintenance import State, sweep_sessions


@pytest.mark.parametrize(
    ("store", "url", "opened"),
    [("lmdb", "", True), ("redis", "redis://127.0.0.1:1/0", False)],
)
def test_the_session_sweep_touches_lmdb_only_when_it_holds_the_sessions(
    tmp_path: Path, store: str, url: str, opened: bool
) -> None:
    config = Config(data_dir=str(tmp_path), session_store=store, redis_url=url)
    state = State(config, meta=None)
    sweep_sessions(state)
    assert (state._sessions is not None) is opened
    assert ("state" in os.listdir(tmp_path)) is opened

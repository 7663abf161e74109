"""bench/dashboard_load.py end to end at a tiny size: its setup (a real server, the domain, the
password, sign-in through the form, stats_gen rows under the domain's id, compaction), one cold
load of the data range in headless Chromium and the in-process CPU probe. No timing is asserted:
only that the load set the ready mark with every panel filled and nothing failed (the benchmark
raises otherwise)."""

from __future__ import annotations

from pathlib import Path

from bench import dashboard_load


def test_dashboard_load_smoke(tmp_path: Path) -> None:
    r = dashboard_load.main(
        ["--page-views", "2000", "--days", "2", "--runs", "0", "--cold-runs", "1",
         "--no-uncached", "--settle", "0", "--cpu-repeat", "1", "--workdir", str(tmp_path)]
    )  # fmt: skip
    assert r["page_views"] > 1500
    assert set(r["ready"]) == {"cold/data"}
    cold = r["loads"]["cold"]["data"][0]
    assert cold["ready"] > 0 and cold["failed"] == "0" and not cold["errors"]
    assert set(cold["panels"].values()) == {"data"}
    names = {q["name"] for q in cold["requests"]}
    assert {"total", "total (prev)", "page", "session/list", "goals", "funnel"} <= names
    assert set(r["cpu"]) == {n for n in names if not n.startswith("/")}  # the in-process probe
    assert list(tmp_path.iterdir()) == []  # the temp data dir is gone

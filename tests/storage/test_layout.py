"""The data directory's layout: the site-id rule, the paths built from it, removing a site."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from trail.storage import layout, schema, tombstones

SITE = "3f1c9a0e-1111-4222-8333-444455556666"
OTHER = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("site_id", "ok"),
    [
        (SITE, True),
        ("bench-site", True),
        ("a_b.c", True),  # what the WAL sealer accepts (rust_core check_site)
        ("x" * 128, True),
        ("x" * 129, False),
        ("", False),
        (".", False),
        ("..", False),
        (".hidden", False),
        ("../x", False),
        ("a/b", False),
        ("a b", False),
        ("a\x00b", False),
        ("abc\n", False),
        ("é", False),
    ],
)
def test_site_id_rule(site_id: str, ok: bool) -> None:
    assert layout.is_site_id(site_id) is ok


def test_paths_refuse_bad_ids(tmp_path: Path) -> None:
    d = layout.day_dir(tmp_path, "sessions", SITE, date(2024, 3, 10))
    assert d == tmp_path / "segments/sessions" / f"site={SITE}" / "day=2024-03-10"
    assert layout.tombstone_file(tmp_path, SITE) == tmp_path / "tombstones" / f"site={SITE}.json"
    for build in (
        lambda: layout.site_dir(tmp_path, "sessions", "../x"),
        lambda: layout.tombstone_file(tmp_path, "../x"),
    ):
        with pytest.raises(layout.SiteIdError):
            build()
    assert layout.site_days(tmp_path, "sessions", "../x") == []


@pytest.mark.parametrize(
    ("name", "day"),
    [
        ("day=2024-03-10", date(2024, 3, 10)),
        ("day=9999-12-31", date(9999, 12, 31)),
        ("day=0000-01-01", None),  # year 0: a damaged row's directory, no Python date
        ("day=2024-02-30", None),
        ("day=+10000-01-01", None),
        ("part-1.parquet", None),
    ],
)
def test_day_names(name: str, day: date | None) -> None:
    assert layout.day_of(name) == day


def test_names_of_files() -> None:
    assert tuple(schema.TABLES) == layout.TABLES
    assert layout.part_name(7) == "part-7.parquet" and layout.part_number("part-7.parquet") == 7
    assert layout.part_number("rollup-7.parquet") is None
    assert layout.rollup_name("part-7.parquet") == "rollup-7.u64"
    assert layout.rollup_name("part-7.parquet", "page_views") == "rollup-7.parquet"
    assert (
        layout.wal_file("worker-2-15.wal") == (2, 15) and layout.wal_file("worker-2.lock") is None
    )
    assert layout.wal_generation_prefix(2, 15) == "w2-g15-"
    assert layout.segment_generation_prefix("w2-g15-0.arrow") == "w2-g15-"
    assert layout.segment_generation_prefix("seg-0001.arrow") is None


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_remove_site_data_takes_every_file_of_the_site_and_nothing_else(tmp_path: Path) -> None:
    for site in (SITE, OTHER):
        for table in [*layout.TABLES, "legacy_table"]:
            day = layout.table_dir(tmp_path, table) / f"site={site}" / "day=2024-03-10"
            for name in ("w0-g1-0.arrow", "part-1.parquet", "rollup-1.u64", layout.MANIFEST):
                _touch(day / name)
            _touch(day.parent / "day=0000-01-01" / "seg.arrow")
        tombstones.add(tmp_path, site, tombstones.ALL_TABLES, 0, 1000)
    # What a removal interrupted by a crash left behind goes too.
    _touch(layout.table_dir(tmp_path, "sessions") / f".removed-site={SITE}-abc" / "day=x" / "f")
    assert layout.stored_site_ids(tmp_path) == {SITE, OTHER}

    layout.remove_site_data(tmp_path, SITE)

    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert not [p for p in left if SITE in p], left
    assert len([p for p in left if OTHER in p]) == 5 * 5 + 1
    assert layout.stored_site_ids(tmp_path) == {OTHER}
    assert tombstones.load(tmp_path, SITE) == [] and tombstones.load(tmp_path, OTHER)
    layout.remove_site_data(tmp_path, SITE)  # nothing left: nothing to do
    with pytest.raises(layout.SiteIdError):
        layout.remove_site_data(tmp_path, "..")

"""Imported statistics on disk (trail.storage.imported): real Parquet files and manifests."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from trail.storage import imported, layout

SITE = "3f1c9a0e-1111-4222-8333-444455556666"
OTHER = "9a9a9a9a-1111-4222-8333-444455556666"
JAN30, JAN31, FEB1, FEB2 = date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1), date(2024, 2, 2)


def day(d: date, visitors: int, views: int = 0) -> dict[str, Any]:
    return {"date": d, "visitors": visitors, "views": views, "sessions": visitors,
            "bounces": 0, "session_duration": 0}  # fmt: skip


def visitors_by_day(data_dir: Path, site: str = SITE) -> dict[date, int]:
    df = imported.read(data_dir, site, "visitors")
    return dict(zip(df["date"].to_list(), df["visitors"].to_list(), strict=True))


def test_every_table_starts_with_date_and_has_visitors() -> None:
    assert set(imported.TABLES) >= {
        "visitors", "page", "entry_page", "exit_page", "referrer", "utm_source", "utm_medium",
        "utm_campaign", "country", "region", "city", "language", "browser", "os", "device",
    }  # fmt: skip
    for table, columns in imported.TABLES.items():
        assert columns[0] == "date" and "visitors" in columns, table
        assert list(imported.schema(table)) == list(columns)
    assert imported.dimension("visitors") is None
    assert imported.dimension("country") == "country_code"


def test_replace_read_and_ranges_across_months(tmp_path: Path) -> None:
    rows = [day(JAN30, 3, 5), day(JAN31, 4), day(FEB2, 2)]
    assert imported.replace(tmp_path, SITE, "visitors", JAN30, FEB2, rows) == 3
    assert visitors_by_day(tmp_path) == {JAN30: 3, JAN31: 4, FEB2: 2}
    assert imported.read(tmp_path, SITE, "visitors", JAN31, FEB1)["date"].to_list() == [JAN31]
    assert imported.read(tmp_path, SITE, "visitors").schema == imported.schema("visitors")
    assert imported.ranges(tmp_path, SITE) == {"visitors": (JAN30, FEB2)}
    assert imported.has_any(tmp_path, SITE) and not imported.has_any(tmp_path, OTHER)
    # One file per (table, month), beside the manifest, nowhere near the segments.
    names = sorted(os.listdir(layout.imported_dir(tmp_path, SITE)))
    assert [n for n in names if n.endswith(".parquet")] == [
        "visitors-2024-01-1.parquet", "visitors-2024-02-1.parquet",
    ]  # fmt: skip
    assert not (tmp_path / layout.SEGMENTS).exists()


def test_replacing_a_range_keeps_the_days_outside_it(tmp_path: Path) -> None:
    imported.replace(tmp_path, SITE, "visitors", JAN30, FEB2, [day(JAN30, 3), day(FEB2, 2)])
    generation = imported.fingerprint(tmp_path, SITE)
    imported.replace(tmp_path, SITE, "visitors", JAN31, FEB2, [day(FEB1, 7)])
    assert visitors_by_day(tmp_path) == {JAN30: 3, FEB1: 7}
    assert imported.fingerprint(tmp_path, SITE) > generation
    # The same range again replaces it, it does not add to it.
    imported.replace(tmp_path, SITE, "visitors", JAN31, FEB2, [day(FEB1, 7)])
    assert visitors_by_day(tmp_path) == {JAN30: 3, FEB1: 7}
    imported.replace(tmp_path, SITE, "visitors", JAN30, FEB2, [])
    assert visitors_by_day(tmp_path) == {}
    assert not imported.has_any(tmp_path, SITE) and imported.ranges(tmp_path, SITE) == {}


def test_a_dataframe_is_taken_as_rows(tmp_path: Path) -> None:
    frame = pl.concat([page_frame(visitors=2, views=3, sessions=2, bounces=1),
                       page_frame(path="/b")])  # fmt: skip
    assert imported.replace(tmp_path, SITE, "page", JAN30, JAN30, frame) == 2
    got = imported.read(tmp_path, SITE, "page")
    assert got.schema == imported.schema("page")
    assert got.select("path", "views").rows() == [("/", 3), ("/b", 1)]


def page_row(**over: Any) -> dict[str, Any]:
    return {"date": JAN30, "path": "/", "visitors": 1, "views": 1, "sessions": 1, "bounces": 0,
            **over}  # fmt: skip


def page_frame(**over: Any) -> pl.DataFrame:
    return pl.DataFrame({k: [v] for k, v in page_row(**over).items()},
                        schema_overrides={"path": pl.String})  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "column"),
    [
        ([{"date": JAN30, "path": "/", "visitors": 1}], "views"),  # missing
        ([{**day(JAN30, 1), "path": "/"}], "session_duration"),  # not a column of the table
        ([page_row(path=3)], "path"),
        ([page_row(date="30.01.2024")], "date"),
        ([page_row(date=FEB2)], "date"),  # outside first..last
        ([page_row(visitors=-1)], "visitors"),
        ([page_row(views=2**32)], "views"),
        ([page_row(sessions=True)], "sessions"),
        (page_frame(views=1.5), "views"),
        (page_frame(path=None), "path"),
    ],
)
def test_bad_rows_name_their_column_and_store_nothing(
    tmp_path: Path, rows: Any, column: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{column}: "):
        imported.replace(tmp_path, SITE, "page", JAN30, JAN31, rows)
    assert not imported.has_any(tmp_path, SITE)


def test_unknown_table_and_reversed_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="^table: "):
        imported.replace(tmp_path, SITE, "pages", JAN30, JAN30, [])
    with pytest.raises(ValueError, match="^last: "):
        imported.replace(tmp_path, SITE, "visitors", JAN31, JAN30, [])
    with pytest.raises(layout.SiteIdError):
        imported.replace(tmp_path, "../x", "visitors", JAN30, JAN30, [])


def test_delete_ranges_every_table(tmp_path: Path) -> None:
    imported.replace(
        tmp_path, SITE, "visitors", JAN30, FEB2, [day(d, 1) for d in (JAN30, JAN31, FEB1, FEB2)]
    )
    imported.replace(tmp_path, SITE, "browser", JAN31, JAN31,
                     [{"date": JAN31, "browser": "Chrome", "visitors": 1}])  # fmt: skip
    imported.replace(tmp_path, OTHER, "visitors", JAN30, JAN30, [day(JAN30, 9)])
    assert imported.delete(tmp_path, SITE, JAN31, FEB1) == 3
    assert visitors_by_day(tmp_path) == {JAN30: 1, FEB2: 1}
    assert imported.read(tmp_path, SITE, "browser").height == 0
    assert imported.delete(tmp_path, SITE, last=JAN30) == 1
    assert imported.delete(tmp_path, SITE, first=FEB2) == 1
    assert not imported.has_any(tmp_path, SITE)
    assert visitors_by_day(tmp_path, OTHER) == {JAN30: 9}  # another site's rows stay
    assert imported.delete(tmp_path, "5a5a5a5a-1111-4222-8333-444455556666") == 0


def test_files_of_a_crashed_writer_are_never_read_and_go_with_the_next_write(
    tmp_path: Path,
) -> None:
    imported.replace(tmp_path, SITE, "visitors", JAN30, JAN30, [day(JAN30, 1)])
    directory = layout.imported_dir(tmp_path, SITE)
    # A writer that wrote its month file and died before renaming the manifest into place.
    pl.DataFrame([day(JAN30, 99)], schema=imported.schema("visitors")).write_parquet(
        directory / "visitors-2024-01-2.parquet"
    )
    (directory / ".manifest.json.tmp").write_bytes(b"{half")
    assert visitors_by_day(tmp_path) == {JAN30: 1}
    imported.replace(tmp_path, SITE, "visitors", FEB1, FEB1, [day(FEB1, 2)])
    assert visitors_by_day(tmp_path) == {JAN30: 1, FEB1: 2}
    assert "visitors-2024-01-2.parquet" not in os.listdir(directory)


def test_replaced_files_stay_for_readers_of_the_old_manifest_until_the_grace_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported.replace(tmp_path, SITE, "visitors", JAN30, JAN30, [day(JAN30, 1)])
    directory = layout.imported_dir(tmp_path, SITE)
    old_manifest = (directory / imported.MANIFEST).read_bytes()
    imported.replace(tmp_path, SITE, "visitors", JAN30, JAN30, [day(JAN30, 2)])
    live = orjson.loads((directory / imported.MANIFEST).read_bytes())
    assert "visitors-2024-01-1.parquet" in live["retired"]
    # A reader holding the old manifest still finds its file.
    assert (
        directory / orjson.loads(old_manifest)["tables"]["visitors"]["2024-01"]["file"]
    ).exists()
    monkeypatch.setattr(imported, "GRACE_S", -1.0)
    imported.replace(tmp_path, SITE, "visitors", FEB1, FEB1, [])
    assert sorted(n for n in os.listdir(directory) if n.endswith(".parquet")) == [
        "visitors-2024-01-2.parquet"
    ]
    assert visitors_by_day(tmp_path) == {JAN30: 2}


def test_removing_a_site_takes_its_imported_statistics(tmp_path: Path) -> None:
    imported.replace(tmp_path, SITE, "visitors", JAN30, JAN30, [day(JAN30, 1)])
    imported.replace(tmp_path, OTHER, "visitors", JAN30, JAN30, [day(JAN30, 1)])
    assert layout.stored_site_ids(tmp_path) == {SITE, OTHER}
    layout.remove_site_data(tmp_path, SITE)
    assert not imported.has_any(tmp_path, SITE) and imported.has_any(tmp_path, OTHER)
    assert layout.stored_site_ids(tmp_path) == {OTHER}
    assert os.listdir(layout.imported_root(tmp_path)) == [f"site={OTHER}"]

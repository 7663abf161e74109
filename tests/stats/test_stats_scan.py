"""The segment scan: partition pruning by day directory, the UTC window, empty sites."""

from __future__ import annotations

from datetime import date

import polars as pl
from segment_rows import SITE, SiteData, ts

from trail.stats.scan import scan, utc_days
from trail.storage import layout
from trail.storage.daydir import read_day
from trail.storage.schema import SESSIONS, TABLES, empty_frame


def test_schemas_mirror_rows_rs() -> None:
    assert set(TABLES) == {"sessions", "page_views", "events", "requests"}
    assert SESSIONS["time"] == pl.Datetime("ms", "UTC")
    assert SESSIONS["visitor_id"] == pl.UInt64 and SESSIONS["session_id"] == pl.UInt32
    assert SESSIONS["sign"] == pl.Int8
    assert TABLES["page_views"]["tag_keys"] == pl.List(pl.String)
    assert empty_frame("events").height == 0


def test_utc_days_cover_the_window() -> None:
    # 2024-03-10 05:00 UTC .. 2024-03-11 04:00 UTC (a New York day) touches two UTC days.
    assert utc_days(ts("2024-03-10 05:00:00"), ts("2024-03-11 04:00:00")) == [
        date(2024, 3, 10),
        date(2024, 3, 11),
    ]
    # An end exactly at midnight does not pull in the next day.
    assert utc_days(ts("2024-03-10 00:00:00"), ts("2024-03-11 00:00:00")) == [date(2024, 3, 10)]
    assert utc_days(ts("2024-03-11 00:00:00"), ts("2024-03-10 00:00:00")) == []


def test_scan_prunes_days_and_filters_time(site: SiteData) -> None:
    site.visit(1, 1, [("2024-03-09 23:59:59", "/old")])
    site.visit(2, 1, [("2024-03-10 00:00:00", "/in"), ("2024-03-10 00:00:04", "/in2")])
    site.visit(3, 1, [("2024-03-11 00:00:00", "/next")])
    site.write()
    listing = read_day(layout.day_dir(site.data_dir, "page_views", SITE, date(2024, 3, 10)))
    assert len(listing.arrow) == 1 and listing.parquet == []
    lf = scan(
        site.data_dir,
        "page_views",
        SITE,
        ts("2024-03-10 00:00:00"),
        ts("2024-03-11 00:00:00"),
        ["path"],
    )
    assert lf.collect()["path"].to_list() == ["/in", "/in2"]
    assert lf.collect_schema().names() == ["path"]


def test_scan_reads_parquet_next_to_arrow(site: SiteData) -> None:
    site.visit(1, 1, [("2024-03-10 10:00:00", "/a")])
    site.write()
    day = site.data_dir / "segments/page_views" / f"site={SITE}" / "day=2024-03-10"
    part = pl.read_ipc(next(day.glob("*.arrow"))).with_columns(pl.lit("/b").alias("path"))
    part.write_parquet(day / "part-0001.parquet")
    # A parquet is read once the compaction manifest lists it as live (trail.storage.daydir).
    from trail.storage.daydir import Manifest

    Manifest(live=["part-0001.parquet"]).write(day)
    lf = scan(
        site.data_dir,
        "page_views",
        SITE,
        ts("2024-03-10 00:00:00"),
        ts("2024-03-11 00:00:00"),
        ["path"],
    )
    assert sorted(lf.collect()["path"].to_list()) == ["/a", "/b"]


def test_scan_without_files_is_empty_with_schema(tmp_path) -> None:
    lf = scan(
        tmp_path,
        "sessions",
        SITE,
        ts("2024-03-10 00:00:00"),
        ts("2024-03-11 00:00:00"),
        ["visitor_id", "sign"],
    )
    df = lf.collect()
    assert df.height == 0 and df.schema == {"visitor_id": pl.UInt64, "sign": pl.Int8}
    # A site id that could walk out of the segments directory reads nothing.
    assert (
        scan(tmp_path, "sessions", "../x", ts("2024-03-10 00:00:00"), ts("2024-03-11 00:00:00"))
        .collect()
        .height
        == 0
    )


def test_rows_outside_their_day_directory_are_not_read(site: SiteData) -> None:
    """A damaged segment may hold rows of another day (or year 0, or 9999): a scan reads only
    the rows of each directory's own day, whatever the window."""
    site.visit(1, 1, [("2024-03-10 10:00:00", "/in")])
    site.write()
    day = site.data_dir / "segments/page_views" / f"site={SITE}" / "day=2024-03-10"
    row = pl.read_ipc(next(day.glob("*.arrow")))
    for i, ms in enumerate([-62_167_219_200_000, 253_402_300_799_000, 1_710_115_200_000]):
        t = pl.lit(ms, pl.Int64).cast(pl.Datetime("ms", "UTC"))  # year 0, 9999, 2024-03-11
        row.with_columns(time=t, path=pl.lit(f"/bad{i}")).write_ipc(day / f"bad-{i}.arrow")
    for start, end in [
        ("2024-03-10 00:00:00", "2024-03-11 00:00:00"),
        ("2024-03-09 12:00:00", "2024-03-12 00:00:00"),
        ("1970-01-01 00:00:00", "2030-01-01 00:00:00"),
    ]:
        lf = scan(site.data_dir, "page_views", SITE, ts(start), ts(end), ["path", "time"])
        assert lf.collect()["path"].to_list() == ["/in"], (start, end)

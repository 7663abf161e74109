"""The Plausible importer (trail.importers.plausible) on exports written from known numbers: every
column set, the mapping into the imported tables, the errors that name file, line and column,
and the properties of a run (idempotent, resumable, order of rows irrelevant)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from import_exports import (
    BROWSERS_HEADER,
    LOCATIONS_HEADER,
    VISITORS_HEADER,
    Plausible,
    days,
    write,
    zip_of,
)

from trail.importers import aggregates, plausible
from trail.importers.archive import ImportFormatError, open_zip
from trail.storage import imported

SITE = "site-plausible"
FIRST = date(2024, 1, 20)


def _tables(data_dir: Path) -> dict[str, pl.DataFrame]:
    return {t: imported.read(data_dir, SITE, t) for t in imported.TABLES}


@pytest.mark.parametrize("pages", ["older", "newer", "newest"])
def test_column_sets_import_the_known_numbers(tmp_path: Path, pages: str) -> None:
    export = Plausible(days(FIRST, 40), pages=pages).build()
    archive = write(tmp_path / "p.zip", export.zip())
    summary = aggregates.run("plausible", archive, tmp_path / "data", SITE)
    assert (summary.first, summary.last) == (FIRST, export.days[-1])
    got = _tables(tmp_path / "data")

    visitors = {r["date"]: r for r in got["visitors"].to_dicts()}
    for d, (v, views, bounces, visits, duration) in export.visitors.items():
        assert visitors[d] == {
            "date": d, "visitors": v, "views": views, "sessions": visits, "bounces": bounces,
            "session_duration": duration,
        }  # fmt: skip
    views = {(r["date"], r["path"]): r["views"] for r in got["page"].to_dicts()}
    assert views == export.page_views
    sessions = set(got["page"]["sessions"])
    assert sessions == ({3} if pages == "older" else {4})  # visitors when there is no visits
    # Browser versions are summed per browser and day.
    browsers = {(r["date"], r["browser"]): r["visitors"] for r in got["browser"].to_dicts()}
    assert browsers == export.browsers
    referrers = got["referrer"].filter(pl.col("date") == FIRST).sort("referrer").to_dicts()
    assert referrers == [
        {"date": FIRST, "referrer": "", "visitors": 3, "sessions": 3, "bounces": 0},
        {"date": FIRST, "referrer": "Google", "visitors": 4, "sessions": 5, "bounces": 1},
    ]
    assert got["utm_source"]["utm_source"].unique().to_list() == ["news"]
    assert got["utm_campaign"]["visitors"].sum() == 3 * 40
    assert got["country"].row(0, named=True) == {"date": FIRST, "country_code": "de", "visitors": 5}
    assert got["region"]["region"].unique().to_list() == ["Berlin"]
    assert set(got["city"]["city"]) == {"Berlin"} and got["city"]["visitors"].sum() == 5 * 40
    assert not any("GeoNames" in note for note in summary.notes)


def test_cities_are_named_after_their_geonames_ids(tmp_path: Path) -> None:
    second = date(2024, 1, 21)
    locations = [
        LOCATIONS_HEADER,
        f"{FIRST},DE,DE-BE,2950159,5,5,50,1,7",  # Berlin
        f"{FIRST},FR,FR-IDF,2988507,3,3,30,0,3",  # Paris
        f"{FIRST},FR,,6255148,2,2,20,0,2",  # Europe: not a place of 500 people or more
        f"{FIRST},US,,0,1,1,10,0,1",  # no city
        f"{second},DE,DE-BE,2950159,4,4,40,0,4",
    ]
    archive = write(tmp_path / "p.zip", zip_of({
        "imported_locations_20240120_20240121.csv": "\n".join(locations) + "\n",
    }))  # fmt: skip
    summary = aggregates.run("plausible", archive, tmp_path / "data", SITE)
    cities = imported.read(tmp_path / "data", SITE, "city")
    assert {(r["date"], r["city"]): r["visitors"] for r in cities.to_dicts()} == {
        (FIRST, "Berlin"): 5, (FIRST, "Paris"): 3, (FIRST, "GeoNames 6255148"): 2,
        (second, "Berlin"): 4,
    }  # fmt: skip
    assert any(note.startswith("1 GeoNames city ids are not places") for note in summary.notes)
    assert imported.read(tmp_path / "data", SITE, "country")["visitors"].sum() == 15


def test_rerun_and_killed_run_give_the_same_rows(tmp_path: Path) -> None:
    export = Plausible(days(FIRST, 70)).build()
    archive = write(tmp_path / "p.zip", export.zip())
    aggregates.run("plausible", archive, tmp_path / "once", SITE)
    once = _tables(tmp_path / "once")

    aggregates.run("plausible", archive, tmp_path / "twice", SITE)
    aggregates.run("plausible", archive, tmp_path / "twice", SITE)
    assert all(_tables(tmp_path / "twice")[t].equals(once[t]) for t in once)

    # A run stopped after some months (as a killed job is), then run again from the start.
    half = tmp_path / "half"
    with open_zip(archive) as z:
        plan = plausible.plan(z)
        for i, chunk in enumerate(plausible.chunks(z, plan, [0], keep=True)):
            if i == 4:
                break
            for table, frame in chunk.tables.items():
                imported.replace(half, SITE, table, chunk.first, chunk.last, frame)
    partial = _tables(half)
    assert any(not partial[t].equals(once[t]) for t in once)
    aggregates.run("plausible", archive, half, SITE)
    assert all(_tables(half)[t].equals(once[t]) for t in once)


def test_rows_out_of_date_order(tmp_path: Path) -> None:
    rows = [f"{d},{i + 1},{i + 2},0,{i + 1},10" for i, d in enumerate(days(FIRST, 45))]
    name = "imported_visitors_20240120_20240304.csv"
    sorted_zip = write(tmp_path / "a.zip", zip_of({name: "\n".join([VISITORS_HEADER, *rows])}))
    shuffled = rows[30:] + rows[:10] + rows[10:30][::-1]
    mixed_zip = write(tmp_path / "b.zip", zip_of({name: "\n".join([VISITORS_HEADER, *shuffled])}))
    aggregates.run("plausible", sorted_zip, tmp_path / "a", SITE)
    aggregates.run("plausible", mixed_zip, tmp_path / "b", SITE)
    a = imported.read(tmp_path / "a", SITE, "visitors")
    assert a.height == 45 and a["visitors"].sum() == sum(range(1, 46))
    assert imported.read(tmp_path / "b", SITE, "visitors").equals(a)


def test_a_reimport_replaces_its_days_only(tmp_path: Path) -> None:
    head = VISITORS_HEADER
    first = zip_of({"imported_visitors_20240101_20240103.csv":
                    f"{head}\n2024-01-01,5,5,0,5,0\n2024-01-02,6,6,0,6,0\n2024-01-03,7,7,0,7,0\n"})  # fmt: skip
    second = zip_of({"visitors_20240102_20240102.csv": f"{head}\n2024-01-02,1,1,0,1,0\n"})
    aggregates.run("plausible", write(tmp_path / "1.zip", first), tmp_path / "d", SITE)
    aggregates.run("plausible", write(tmp_path / "2.zip", second), tmp_path / "d", SITE)
    assert imported.read(tmp_path / "d", SITE, "visitors")["visitors"].to_list() == [5, 1, 7]


V = "imported_visitors_20240101_20240102.csv"
B = "imported_browsers_20240101_20240102.csv"
BAD = [
    # (files, the message's expected start)
    ({V: "date,visitors,pageviews,bounces,visits\n"}, f"{V}, line 1, column 'visit_duration': missing column"),
    ({V: f"{VISITORS_HEADER},extra\n"}, f"{V}, line 1, column 'extra': unknown column"),
    ({V: f"{VISITORS_HEADER}\n2024-01-01,1,2,3,4,5\n2024-13-01,1,2,3,4,5\n"},
     f"{V}, line 3, column 'date': not a date (YYYY-MM-DD): '2024-13-01'"),
    ({V: f"{VISITORS_HEADER}\n01/01/2024,1,2,3,4,5\n"}, f"{V}, line 2, column 'date': not a date"),
    ({V: f"{VISITORS_HEADER}\n2024-01-01,1,2,x,4,5\n"},
     f"{V}, line 2, column 'bounces': not a whole number >= 0: 'x'"),
    ({V: f"{VISITORS_HEADER}\n2024-01-01,-1,2,3,4,5\n"}, f"{V}, line 2, column 'visitors'"),
    ({V: f"{VISITORS_HEADER}\n2024-01-01,1,2,3,4,99999999999\n"},
     f"{V}, line 2, column 'visit_duration': larger than"),
    ({V: f"{VISITORS_HEADER}\n2024-01-05,1,2,3,4,5\n"},
     f"{V}, line 2, column 'date': 2024-01-05 is outside the file's range"),
    ({V: f"{VISITORS_HEADER}\n2024-01-01,1,2\n"}, f"{V}, line 2: 3 fields, the header has 6"),
    ({V: ""}, f"{V}, line 1: empty file"),
    ({B: f"{BROWSERS_HEADER}\n2024-01-01,Chrome,1,1,1,1,x,1\n"}, f"{B}, line 2, column 'bounces'"),
    ({"visits.csv": "a\n"}, "visits.csv: not a file of a Plausible export"),
    ({"imported_visitors_20240105_20240101.csv": "date\n"}, "imported_visitors_20240105_20240101.csv: not a file"),
    ({V: f"{VISITORS_HEADER}\n", "imported_visitors_20240102_20240110.csv": f"{VISITORS_HEADER}\n"},
     "imported_visitors_20240102_20240110.csv: its days overlap those of " + V),
    ({"notes.txt": "hello"}, "notes.txt: not a CSV file of the export"),
    ({}, "holds no CSV file"),
    ({V: b"date,visitors\xff\n"}, f"{V}: not UTF-8 text"),
]  # fmt: skip


@pytest.mark.parametrize(("files", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_exports_are_refused_before_anything_is_written(
    tmp_path: Path, files: dict[str, str | bytes], message: str
) -> None:
    archive = write(tmp_path / "bad.zip", zip_of(files))
    with pytest.raises(ImportFormatError) as e:
        aggregates.run("plausible", archive, tmp_path / "data", SITE)
    assert str(e.value).startswith(message), str(e.value)
    assert not imported.has_any(tmp_path / "data", SITE)


def test_a_bad_row_late_in_a_file_changes_nothing(tmp_path: Path) -> None:
    export = Plausible(days(FIRST, 60)).build()
    good = write(tmp_path / "good.zip", export.zip())
    aggregates.run("plausible", good, tmp_path / "data", SITE)
    before = _tables(tmp_path / "data")
    name = next(n for n in export.files if n.startswith("imported_visitors"))
    broken = export.files[name].rstrip("\n") + "\n2024-03-19,1,1,1,1,oops\n"
    bad = write(tmp_path / "bad.zip", export.zip(extra={name: broken}))
    with pytest.raises(ImportFormatError, match="line 62, column 'visit_duration'"):
        aggregates.run("plausible", bad, tmp_path / "data", SITE)
    after = _tables(tmp_path / "data")
    assert all(after[t].equals(before[t]) for t in before)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("imported_visitors_20240101_20241231.csv", ("visitors", date(2024, 1, 1), date(2024, 12, 31))),
        ("operating_systems_20230105_20230105.csv", ("operating_systems", date(2023, 1, 5), date(2023, 1, 5))),
        ("imported_pages_20240230_20240301.csv", None),
        ("imported_goals_20240101_20240102.csv", None),
        ("imported_visitors_2024_2025.csv", None),
    ],
)  # fmt: skip
def test_file_names(name: str, expected: tuple[str, date, date] | None) -> None:
    assert plausible.file_range(name) == expected


def test_region_names() -> None:
    assert plausible.region_name("DE-BE") == "Berlin"
    assert plausible.region_name("us-ca") == "California"
    assert plausible.region_name("XX-99") == "XX-99"

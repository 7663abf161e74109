"""The Fathom importer (trail.importers.fathom) on an export written from known numbers: each
breakdown of the range spread over its days with the totals kept exactly."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from import_exports import FATHOM_FILES, fathom_zip, write, zip_of

from trail.importers import aggregates, fathom
from trail.importers.archive import ImportFormatError
from trail.storage import imported

SITE = "site-fathom"
FIRST, LAST = date(2026, 9, 2), date(2026, 9, 8)


def _totals(data_dir: Path, table: str) -> dict[str, dict[str, int]]:
    rows = imported.read(data_dir, SITE, table)
    dim = imported.dimension(table)
    counts = [c for c in imported.TABLES[table][1:] if c != dim]
    if dim is None:
        return {"": {c: int(rows[c].sum()) for c in counts}}
    grouped = rows.group_by(dim).sum()
    return {r[dim]: {c: r[c] for c in counts} for r in grouped.to_dicts()}


def test_breakdowns_keep_their_totals_over_the_range(tmp_path: Path) -> None:
    archive = write(tmp_path / "f.zip", fathom_zip())
    summary = aggregates.run("fathom", archive, tmp_path / "data", SITE)
    data = tmp_path / "data"
    assert (summary.first, summary.last) == (FIRST, LAST)
    visitors = imported.read(data, SITE, "visitors")
    assert visitors["date"].to_list() == [FIRST + timedelta(days=i) for i in range(7)]
    assert visitors["visitors"].to_list() == [10] * 7  # 70 people over 7 days
    assert _totals(data, "visitors") == {
        "": {"visitors": 70, "views": 140, "sessions": 70, "bounces": 35, "session_duration": 2100}
    }
    assert _totals(data, "page") == {
        "/": {"visitors": 50, "views": 100, "sessions": 50, "bounces": 20},
        "/about": {"visitors": 23, "views": 40, "sessions": 23, "bounces": 23},
    }
    assert _totals(data, "entry_page")["/about"] == {"visitors": 10, "sessions": 10}
    assert _totals(data, "exit_page")["/"] == {"visitors": 45, "sessions": 45}
    assert _totals(data, "referrer") == {
        "": {"visitors": 40, "sessions": 40, "bounces": 20},
        "news.ycombinator.com": {"visitors": 30, "sessions": 30, "bounces": 15},
    }
    assert _totals(data, "country") == {
        "us": {"visitors": 40}, "de": {"visitors": 20}, "ru": {"visitors": 10}
    }  # fmt: skip
    assert _totals(data, "device") == {
        "desktop": {"visitors": 43}, "mobile": {"visitors": 20}, "tablet": {"visitors": 7}
    }  # fmt: skip
    assert _totals(data, "os")["OS X"] == {"visitors": 20}
    assert _totals(data, "region") == {"California": {"visitors": 30}, "Berlin": {"visitors": 20}}
    assert _totals(data, "city") == {"Los Angeles": {"visitors": 30}}
    assert _totals(data, "utm_source") == {"newsletter": {"visitors": 9}}
    # 23 visitors of /about over 7 days: 3 a day, 2 extra days.
    pages = imported.read(data, SITE, "page")
    about = pages.filter(pages["path"] == "/about")
    assert sorted(about["visitors"].to_list()) == [3, 3, 3, 3, 3, 4, 4]
    assert any("Events.csv" in n for n in summary.notes)
    assert any("spread evenly" in n for n in summary.notes)


def test_one_day_imports_exactly_and_rerun_is_idempotent(tmp_path: Path) -> None:
    summary = FATHOM_FILES["Summary.csv"].replace(
        "2026-09-02 00:00:00 to 2026-09-08 16:02:04", "2026-09-02 00:00:00 to 2026-09-02 23:59:59"
    )
    archive = write(tmp_path / "f.zip", fathom_zip({"Summary.csv": summary}, folder=""))
    aggregates.run("fathom", archive, tmp_path / "data", SITE)
    first = {t: imported.read(tmp_path / "data", SITE, t) for t in imported.TABLES}
    assert first["visitors"].to_dicts() == [
        {"date": FIRST, "visitors": 70, "views": 140, "sessions": 70, "bounces": 35,
         "session_duration": 2100}
    ]  # fmt: skip
    aggregates.run("fathom", archive, tmp_path / "data", SITE)
    assert all(imported.read(tmp_path / "data", SITE, t).equals(first[t]) for t in first)


BAD = [
    ({"Summary.csv": None}, "Summary.csv (the export's range and totals) is missing"),
    ({"Summary.csv": "Metric,Value\nPeople,5\nPageviews,5\n"}, "Summary.csv: no 'export date range' row"),
    ({"Summary.csv": FATHOM_FILES["Summary.csv"].replace("2026-09-08 16", "2026-08-01 16")},
     "Summary.csv, column 'Export Date Range': the export date range"),
    ({"Summary.csv": FATHOM_FILES["Summary.csv"].replace("People,70", "People,seventy")},
     "Summary.csv, column 'People': not a whole number"),
    ({"Pages.csv": "Path,Visitors,Pageviews\n/,1,1\n"}, "Pages.csv, line 1, column 'Page': missing column"),
    ({"Browsers.csv": "Browser,Visitors\nChrome,lots\n"}, "Browsers.csv, line 2, column 'Visitors'"),
    ({"Pages.csv": 'Page,Visitors,Pageviews,"Bounce Rate (%)"\n/,1,1,abc\n'},
     "Pages.csv, line 2, column 'Bounce Rate (%)': not a number"),
    ({"Visits.csv": "a,b\n"}, "Visits.csv: not a file of a Fathom export"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_exports_are_refused(
    tmp_path: Path, changes: dict[str, str | None], message: str
) -> None:
    files = {k: v for k, v in {**FATHOM_FILES, **changes}.items() if v is not None}
    archive = write(tmp_path / "f.zip", zip_of(files))  # type: ignore[arg-type]
    with pytest.raises(ImportFormatError) as e:
        aggregates.run("fathom", archive, tmp_path / "data", SITE)
    assert str(e.value).startswith(message), str(e.value)
    assert not imported.has_any(tmp_path / "data", SITE)


@pytest.mark.parametrize(
    ("name", "code"),
    [("United States", "us"), ("Germany", "de"), ("Russia", "ru"), ("South Korea", "kr"),
     ("Turkey", "tr"), ("Czechia", "cz"), ("Atlantis", ""), ("", "")],
)  # fmt: skip
def test_country_names(name: str, code: str) -> None:
    assert fathom.country_code(name) == code

"""`trail export --format plausible` (trail.export_plausible): collected rows written as a Plausible
CE export, imported again through the Plausible importer into a fresh data directory; the daily
aggregates the files carry must come back as the imported tables hold them, and match what the
collected rows say."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from datetime import date
from pathlib import Path

import polars as pl

from tests.server import TrailServer
from tests.stats.segment_rows import SITE, SiteData
from trail import export_plausible
from trail.export import SiteInfo
from trail.importers import aggregates
from trail.storage import imported

FIRST, LAST = date(2024, 3, 9), date(2024, 3, 12)


def _traffic(data_dir: Path) -> SiteData:
    data = SiteData(data_dir)
    # Visitor 1: two visits on the 10th, one of two pages; visitor 2 bounces on the 10th and
    # comes back on the 11th from Google; visitor 3 crosses midnight (counts on the 11th, its
    # start); visitor 4 is on the 8th, outside the range.
    data.visit(1, 1, [("2024-03-10 09:00:00", "/"), ("2024-03-10 09:01:00", "/blog")],
               country_code="de", region="Berlin", browser="Firefox", os="Linux")  # fmt: skip
    data.visit(1, 2, [("2024-03-10 15:00:00", "/")], country_code="de", region="Berlin",
               browser="Firefox", os="Linux")  # fmt: skip
    data.visit(2, 3, [("2024-03-10 10:00:00", "/pricing")], country_code="us",
               region="California", browser="Chrome", os="Windows", mobile=True, desktop=False)  # fmt: skip
    data.visit(2, 4, [("2024-03-11 08:00:00", "/"), ("2024-03-11 08:05:00", "/pricing")],
               referrer="https://www.google.com/", referrer_name="Google", utm_source="ads",
               utm_medium="cpc", utm_campaign="spring", browser="Chrome", os="Windows",
               events={1: ("signup", {"plan": "pro"})})  # fmt: skip
    data.visit(3, 5, [("2024-03-11 23:58:00", "/"), ("2024-03-12 00:03:00", "/blog")],
               browser="Safari", os="Mac OS X")  # fmt: skip
    data.visit(4, 6, [("2024-03-08 12:00:00", "/")])
    data.write()
    return data


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_plausible_export_round_trips(tmp_path: Path) -> None:
    source = tmp_path / "source"
    _traffic(source)
    out = tmp_path / "out"
    written = export_plausible.export(source, SiteInfo(SITE), FIRST, LAST, out)
    names = sorted(written.files)
    assert names == sorted(
        export_plausible.file_name(t, FIRST, LAST) for t in export_plausible.FILES
    )
    visitors = {
        r["date"]: r for r in _csv(out / export_plausible.file_name("visitors", FIRST, LAST))
    }
    # Known numbers: the 10th has visitors 1 and 2 in three visits, 4 page views, two bounces
    # (visit 2 and visit 3) and 60 s; the 11th visitors 2 and 3 (3 starts that day).
    assert visitors["2024-03-10"] == {
        "date": "2024-03-10", "visitors": "2", "pageviews": "4", "bounces": "2", "visits": "3",
        "visit_duration": "60",
    }  # fmt: skip
    assert visitors["2024-03-11"]["visitors"] == "2" and visitors["2024-03-11"]["visits"] == "2"
    assert "2024-03-08" not in visitors and "2024-03-12" not in visitors
    pages = _csv(out / export_plausible.file_name("pages", FIRST, LAST))
    assert {(r["date"], r["page"], r["pageviews"]) for r in pages} >= {
        ("2024-03-10", "/", "2"), ("2024-03-12", "/blog", "1"),
    }  # fmt: skip
    locations = _csv(out / export_plausible.file_name("locations", FIRST, LAST))
    assert {(r["country"], r["region"]) for r in locations} >= {("DE", "DE-BE"), ("US", "US-CA")}
    events = _csv(out / export_plausible.file_name("custom_events", FIRST, LAST))
    assert [(r["date"], r["name"], r["events"]) for r in events] == [("2024-03-11", "signup", "1")]

    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for name in names:
            z.write(out / name, name)
    fresh = tmp_path / "fresh"
    summary = aggregates.run("plausible", archive, fresh, SITE)
    assert (summary.first, summary.last) == (FIRST, LAST)

    got = imported.read(fresh, SITE, "visitors")
    want = pl.DataFrame(
        {
            "date": [date.fromisoformat(d) for d in visitors],
            "visitors": [int(r["visitors"]) for r in visitors.values()],
            "views": [int(r["pageviews"]) for r in visitors.values()],
            "sessions": [int(r["visits"]) for r in visitors.values()],
            "bounces": [int(r["bounces"]) for r in visitors.values()],
            "session_duration": [int(r["visit_duration"]) for r in visitors.values()],
        }
    ).sort("date")
    assert got.cast(want.schema).equals(want)
    page_rows = imported.read(fresh, SITE, "page")
    assert page_rows["views"].sum() == sum(int(r["pageviews"]) for r in pages)
    referrers = imported.read(fresh, SITE, "referrer").to_dicts()
    assert {"date": date(2024, 3, 11), "referrer": "Google", "visitors": 1, "sessions": 1,
            "bounces": 0} in referrers  # fmt: skip
    regions = imported.read(fresh, SITE, "region").to_dicts()
    assert {"date": date(2024, 3, 10), "region": "Berlin", "visitors": 1} in regions
    devices = imported.read(fresh, SITE, "device")
    assert set(devices["category"]) == {"desktop", "mobile"}


def test_export_command_writes_plausible_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = TrailServer(data_dir, workers=1).start()
    try:
        site, _ = server.create_site("plausible-export.example")
    finally:
        assert server.stop() == 0
    _traffic_for(data_dir, site)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "trail", "export", "--data-dir", str(data_dir), "--site", site,
         "--from", str(FIRST), "--to", str(LAST), "--format", "plausible", "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "imported_visitors_20240309_20240312.csv" in done.stdout
    rows = _csv(out / "imported_visitors_20240309_20240312.csv")
    assert [r["date"] for r in rows] == ["2024-03-10", "2024-03-11", "2024-03-12"]


def _traffic_for(data_dir: Path, site: str) -> None:
    data = SiteData(data_dir, site)
    data.visit(1, 1, [("2024-03-10 09:00:00", "/")])
    data.visit(2, 2, [("2024-03-11 09:00:00", "/")])
    data.visit(3, 3, [("2024-03-12 09:00:00", "/")])
    data.write()

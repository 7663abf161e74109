"""The CSV export: one file per selected section, made by the JSON reports' own functions."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from segment_rows import SITE, SiteData
from shop import DAY, build_shop

from trail.stats.export import SECTIONS, export_zip, to_csv
from trail.stats.filters import parse_filter

NOW = datetime(2024, 3, 20, tzinfo=UTC)


def read(blob: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return {n: list(csv.DictReader(io.StringIO(z.read(n).decode()))) for n in z.namelist()}


def test_every_section(site: SiteData) -> None:
    data = build_shop(site)
    f = parse_filter({"id": [SITE], "from": [DAY], "to": [DAY], "limit": ["1"]}, now=NOW)
    goals = [{"id": "g", "name": "page a", "pattern": "(?i)^/a$", "path_pattern": "/a"}]
    files = read(export_zip(data, f, list(SECTIONS), goals))
    assert set(files) == {
        "visitors.csv", "pages.csv", "session_duration.csv", "growth.csv", "languages.csv",
        "referrer.csv", "os.csv", "browser.csv", "country.csv", "region.csv", "city.csv",
        "platform.csv", "screen.csv", "utm_source.csv", "utm_medium.csv", "utm_campaign.csv",
        "utm_content.csv", "utm_term.csv", "conversion_goals.csv", "events.csv", "tags.csv",
        "hostname.csv",
    }  # fmt: skip
    # The export is not cut at `limit`: all 4 pages (/, /a, /p, /x).
    assert [r["path"] for r in files["pages.csv"]] == ["/", "/a", "/p", "/x"]
    assert (
        files["visitors.csv"][0]["visitors"] == "5"
        and files["visitors.csv"][0]["day"] == "2024-03-10T00:00:00Z"
    )
    assert files["events.csv"][0] == {"name": "signup", "count": "3", "visitors": "3", "views": "4", "cr": "0.6",
                                      "average_duration_seconds": "0", "meta_keys": "amount,plan"}  # fmt: skip
    assert files["conversion_goals.csv"][0]["visitors"] == "2"
    assert files["platform.csv"][0]["platform_desktop"] == "5"
    assert [r["country_code"] for r in files["country.csv"]] == ["", "de", "us"]


def test_selection_and_empty(tmp_path: Path) -> None:
    f = parse_filter({"id": [SITE], "from": [DAY], "to": [DAY]}, now=NOW)
    files = read(export_zip(tmp_path, f, ["os", "growth"], []))
    assert set(files) == {"os.csv", "growth.csv"} and files["os.csv"] == []
    assert to_csv([]) == "" and to_csv({"a": 1, "b": [1, 2]}) == 'a,b\n1,"1,2"\n'

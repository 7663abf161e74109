"""`GET /api/v1/statistics`: the selected reports as CSV files in one zip, built by the same
report functions the JSON endpoints call (with the row limit lifted).

With storage = "clickhouse" the caller passes `answer` (trail.services.statistics.export): a
file whose report the statistics API names (`REPORT_OF`) is asked of it first, as the JSON
endpoint is, and None leaves it to the report function here."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from trail.stats import reports
from trail.stats.events import events
from trail.stats.filters import Filter
from trail.stats.goals import goal_stats
from trail.stats.tags import tags

EXPORT_LIMIT = 1_000_000
Table = Callable[[Path, Filter, list[dict[str, Any]]], Any]
# (statistics report name, filter) -> its answer, or None: the report function here answers.
Answer = Callable[[str, Filter], Any | None]


def _dim(name: str) -> Table:
    return lambda d, f, g: reports.dimension(d, f, name)


def _goal_rows(d: Path, f: Filter, goals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": g["page_goal"]["name"], "path_pattern": g["page_goal"].get("path_pattern"),
         "event_name": g["page_goal"].get("event_name"), **g["stats"]}
        for g in goal_stats(d, f, goals)
    ]  # fmt: skip


# Query flag -> [(file name, report)].
SECTIONS: dict[str, list[tuple[str, Table]]] = {
    "visitors": [("visitors", lambda d, f, g: reports.visitor(d, f))],
    "pages": [("pages", lambda d, f, g: reports.page(d, f))],
    "session_duration": [("session_duration", lambda d, f, g: reports.session_duration(d, f))],
    "growth": [("growth", lambda d, f, g: reports.growth(d, f))],
    "languages": [("languages", _dim("language"))],
    "referrer": [("referrer", lambda d, f, g: reports.referrer(d, f))],
    "os": [("os", _dim("os"))],
    "browser": [("browser", _dim("browser"))],
    "country": [("country", _dim("country"))],
    "region": [("region", _dim("region"))],
    "city": [("city", _dim("city"))],
    "platform": [("platform", lambda d, f, g: reports.platform(d, f))],
    "screen": [("screen", _dim("screen"))],
    "utm": [
        (f"utm_{k}", _dim(f"utm/{k}")) for k in ("source", "medium", "campaign", "content", "term")
    ],
    "conversion_goals": [("conversion_goals", _goal_rows)],
    "events": [("events", lambda d, f, g: events(d, f))],
    "tags": [("tags", lambda d, f, g: tags(d, f))],
    "hostname": [("hostname", lambda d, f, g: reports.hostname(d, f))],
}


# File name -> the `/statistics/<report>` its rows are (the other files read goals, or no report).
REPORT_OF: dict[str, str] = {
    "visitors": "visitor", "pages": "page", "session_duration": "duration/session",
    "growth": "growth", "languages": "language", "referrer": "referrer", "os": "os",
    "browser": "browser", "country": "country", "region": "region", "city": "city",
    "platform": "platform", "screen": "screen", "events": "events", "tags": "tags",
    "hostname": "hostname",
    **{f"utm_{k}": f"utm/{k}" for k in ("source", "medium", "campaign", "content", "term")},
}  # fmt: skip


def to_csv(result: Any) -> str:
    """Rows (or one object) as CSV with a header; lists joined by commas."""
    rows = result if isinstance(result, list) else [result]
    out = io.StringIO()
    if not rows:
        return ""
    writer = csv.DictWriter(
        out, fieldnames=list(rows[0]), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for r in rows:
        writer.writerow(
            {k: ",".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()}
        )
    return out.getvalue()


def export_zip(
    data_dir: Path,
    f: Filter,
    sections: list[str],
    goals: list[dict[str, Any]],
    answer: Answer | None = None,
) -> bytes:
    """A zip holding `<file>.csv` for each selected section (all rows, not just 100)."""
    f = replace(f, limit=EXPORT_LIMIT, offset=0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for section in sections:
            for name, table in SECTIONS[section]:
                got = answer(REPORT_OF[name], f) if answer and name in REPORT_OF else None
                if got is None:
                    got = table(Path(data_dir), f, goals)
                z.writestr(f"{name}.csv", to_csv(got))
    return buf.getvalue()

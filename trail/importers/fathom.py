"""Fathom Analytics' CSV export (the dashboard's Export button) as imported statistics.

The export is a zip of CSV files with a header line each; its format is not published by Fathom,
so these facts come from exports seen in public code (stacksjs/analyticshq,
`tests/fixtures/fathom-export/*.csv` and `app/Analytics/fathom-import.ts`, 2026):

    Summary.csv            Metric,Value rows: People, Pageviews, "Avg Time on Site (seconds)",
                           "Bounce Rate (%)", "Export Date Range" ("2026-09-02 00:00:00 to
                           2026-09-08 16:02:04 (UTC)"), "Filters Applied"
    Pages.csv              Page, Visitors, Pageviews, "Bounce Rate (%)", "Avg Time (seconds)"
    Entry_Pages.csv        "Entry Page", Visitors, Pageviews
    Exit_Pages.csv         "Exit Page", Visitors, Pageviews
    Referrers.csv          Referrer, Visitors, Pageviews, "Bounce Rate (%)"
    Sources.csv            Source, Visitors
    UTM_Source.csv, UTM_Medium.csv, UTM_Campaign.csv, UTM_Content.csv, UTM_Term.csv
                           "UTM Source" (Medium, ...), Visitors, Pageviews
    Countries.csv          Country (an English name: "United States"), Visitors
    Regions.csv            Region, Country, Visitors
    Cities.csv             City, Region, Country, Visitors
    Device_Types.csv       "Device Type" (Desktop, Phone, Tablet), Visitors
    Browsers.csv           Browser, Visitors
    Operating_Systems.csv  "Operating System", Visitors
    Events.csv             "Event Name", "Unique Completions", Completions,
                           "Conversion Rate (%)", Value

Each file is a breakdown of the whole range, not of days: the one date in the export is the
range in Summary.csv. The imported tables are daily, so every count is spread evenly over the
days of the range (n visitors over d days: n // d a day, one more on n % d consecutive days),
which keeps the total of every row over the range exact and makes each day an average. A range
of one day imports exactly.

Into the imported tables (trail.storage.imported): Summary -> visitors (sessions = People, as the
export counts no visits; bounces and session_duration from the rate and the average), Pages ->
page, Entry_Pages / Exit_Pages -> entry_page / exit_page (sessions = visitors), Referrers ->
referrer ("Direct / Unknown" is ""), UTM_Source / UTM_Medium / UTM_Campaign -> utm_*,
Countries -> country (the name's ISO code; "" when unknown), Regions, Cities -> region, city
(names as given), Device_Types -> device (desktop, mobile for Phone, tablet), Browsers,
Operating_Systems -> browser, os. Sources, UTM_Content, UTM_Term and Events are checked but not
imported (no imported table holds them). Columns are matched by name; a missing one is an error,
other columns are ignored.
"""

from __future__ import annotations

import functools
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from trail.importers import aggregates
from trail.importers.aggregates import Chunk, Plan, Source, Sums
from trail.importers.archive import (
    ImportFormatError,
    Member,
    count,
    csv_members,
    number,
    open_csv,
)


@dataclass(frozen=True)
class FileSpec:
    label: str  # the dimension column
    table: str | None  # the imported table, None when not imported
    counts: tuple[str, ...] = ("Visitors",)


FILES: dict[str, FileSpec] = {
    "pages.csv": FileSpec("Page", "page", ("Visitors", "Pageviews")),
    "entry_pages.csv": FileSpec("Entry Page", "entry_page"),
    "exit_pages.csv": FileSpec("Exit Page", "exit_page"),
    "referrers.csv": FileSpec("Referrer", "referrer"),
    "sources.csv": FileSpec("Source", None),
    "utm_source.csv": FileSpec("UTM Source", "utm_source"),
    "utm_medium.csv": FileSpec("UTM Medium", "utm_medium"),
    "utm_campaign.csv": FileSpec("UTM Campaign", "utm_campaign"),
    "utm_content.csv": FileSpec("UTM Content", None),
    "utm_term.csv": FileSpec("UTM Term", None),
    "countries.csv": FileSpec("Country", "country"),
    "regions.csv": FileSpec("Region", "region"),
    "cities.csv": FileSpec("City", "city"),
    "device_types.csv": FileSpec("Device Type", "device"),
    "browsers.csv": FileSpec("Browser", "browser"),
    "operating_systems.csv": FileSpec("Operating System", "os"),
    "events.csv": FileSpec("Event Name", None, ("Unique Completions", "Completions")),
}
SUMMARY = "summary.csv"
BOUNCE = "Bounce Rate (%)"
DEVICES = {"desktop": "desktop", "phone": "mobile", "mobile": "mobile", "tablet": "tablet"}
DIRECT = ("direct / unknown", "direct")
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})[0-9: T]*\s+to\s+(\d{4}-\d{2}-\d{2})")
# Country names Fathom may write that pycountry does not know by that name.
COUNTRY_ALIASES = {
    "russia": "RU", "turkey": "TR", "palestine": "PS", "ivory coast": "CI", "macau": "MO",
    "macao": "MO", "kosovo": "XK", "brunei": "BN", "cape verde": "CV", "the netherlands": "NL",
    "czech republic": "CZ", "south korea": "KR", "north korea": "KP", "vatican city": "VA",
    "democratic republic of the congo": "CD", "republic of the congo": "CG", "congo": "CG",
    "micronesia": "FM", "swaziland": "SZ", "burma": "MM", "east timor": "TL",
    "saint martin": "MF", "sint maarten": "SX", "curacao": "CW", "reunion": "RE",
}  # fmt: skip


def plan(archive: zipfile.ZipFile) -> Plan:
    """The files of the export, its range and totals from Summary.csv; ImportFormatError for a
    file that is not part of a Fathom export or lacks a column."""
    sources: list[Source] = []
    summary: dict[str, str] | None = None
    for member in csv_members(archive):
        key = member.base.lower()
        if key == SUMMARY:
            summary = _summary(archive, member)
            continue
        spec = FILES.get(key)
        if spec is None:
            raise ImportFormatError("not a file of a Fathom export", member.base)
        header, _ = open_csv(archive, member)
        for name in (spec.label, *spec.counts):
            if name not in header:
                raise ImportFormatError("missing column", member.base, 1, name)
        sources.append(Source(member, key, header, date.min, date.max))
    if summary is None:
        raise ImportFormatError("Summary.csv (the export's range and totals) is missing")
    first, last = _range(summary)
    for s in sources:
        s.first, s.last = first, last
    notes = []
    filters = summary.get("filters applied", "0").strip()
    if filters not in ("", "0"):
        notes.append(f"the export was taken with {filters} filter(s) on: a part of the traffic")
    skipped = sorted(s.member.base for s in sources if FILES[s.name].table is None)
    if skipped:
        notes.append("checked but not imported: " + ", ".join(skipped))
    if (last - first).days:
        notes.append(
            f"the counts of {first}..{last} are spread evenly over its {(last - first).days + 1}"
            " days (the export has no daily rows)"
        )
    return Plan("fathom", sources, first, last, notes, {"summary": summary})


def _summary(archive: zipfile.ZipFile, member: Member) -> dict[str, str]:
    """Summary.csv's Metric -> Value, metric names in lower case."""
    header, lines = open_csv(archive, member)
    if len(header) < 2:
        raise ImportFormatError("expected the columns Metric,Value", member.base, 1)
    out: dict[str, str] = {}
    for _, cells in lines:
        if cells[0].strip():
            out[cells[0].strip().lower()] = cells[1]
    for metric in ("export date range", "people", "pageviews"):
        if metric not in out:
            raise ImportFormatError(f"no {metric!r} row", member.base)
    return out


def _range(summary: dict[str, str]) -> tuple[date, date]:
    text = summary["export date range"]
    m = _RANGE.search(text)
    try:
        first, last = date.fromisoformat(m.group(1)), date.fromisoformat(m.group(2))  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        first = last = date.max
    if first > last:
        raise ImportFormatError(
            f"the export date range {text!r} is not '<YYYY-MM-DD ...> to <YYYY-MM-DD ...>'",
            "Summary.csv",
            0,
            "Export Date Range",
        )
    return first, last


# -- rows --------------------------------------------------------------------------------------


def chunks(archive: zipfile.ZipFile, plan: Plan, counter: list[int], keep: bool) -> Iterator[Chunk]:
    """Every file read whole (one row per value), then spread over the range month by month;
    `keep=False` only checks."""
    totals: dict[str, dict[str, list[int]]] = {"visitors": {"": _summary_counts(plan)}}
    rows = 0
    for source in plan.sources:
        spec = FILES[source.name]
        for key, values in _read(archive, source, spec, counter):
            rows += 1
            if spec.table is not None:
                have = totals.setdefault(spec.table, {}).setdefault(key, [0] * len(values))
                for i, n in enumerate(values):
                    have[i] += n
    if not keep:
        yield Chunk(plan.first, plan.last, {}, rows)
        return
    tables = sorted(totals)
    days = (plan.last - plan.first).days + 1
    for first, last in aggregates.months(plan.first, plan.last):
        sums = Sums()
        for table in tables:
            for index, (key, counts) in enumerate(sorted(totals[table].items())):
                for offset in range((first - plan.first).days, (last - plan.first).days + 1):
                    share = tuple(_share(n, days, offset, index) for n in counts)
                    if any(share):
                        sums.add(table, plan.first + timedelta(days=offset), key, share)
        yield Chunk(first, last, sums.frames(tables), rows)
        rows = 0


def _share(n: int, days: int, offset: int, index: int) -> int:
    """Day `offset`'s part of n spread over `days` days; the n % days extra ones land on
    consecutive days starting at a place that moves with the row (`index`)."""
    base, extra = divmod(n, days)
    return base + (1 if (offset - index) % days < extra else 0)


def _summary_counts(plan: Plan) -> list[int]:
    summary = plan.extra["summary"]
    file = "Summary.csv"
    people = count(summary["people"], file, 0, "People")
    views = count(summary["pageviews"], file, 0, "Pageviews")
    rate = number(summary.get("bounce rate (%)", ""), file, 0, "Bounce Rate (%)")
    seconds = number(summary.get("avg time on site (seconds)", ""), file, 0, "Avg Time on Site")
    return [people, views, people, round(min(rate, 100.0) * people / 100), round(seconds * people)]


def _read(
    archive: zipfile.ZipFile, source: Source, spec: FileSpec, counter: list[int]
) -> Iterator[tuple[str, tuple[int, ...]]]:
    """(dimension value as stored, counts in the table's order) of each row of a file."""
    header, lines = open_csv(archive, source.member, counter)
    at = {c: i for i, c in enumerate(header)}
    file = source.member.base
    for line, cells in lines:
        label = cells[at[spec.label]].strip()
        numbers = [count(cells[at[c]], file, line, c) for c in spec.counts]
        people = numbers[0]
        if spec.table == "page":
            rate = number(cells[at[BOUNCE]], file, line, BOUNCE) if BOUNCE in at else 0.0
            bounces = round(min(rate, 100.0) * people / 100)
            yield label, (people, numbers[1], people, bounces)
        elif spec.table in ("entry_page", "exit_page"):
            yield label, (people, people)
        elif spec.table == "referrer":
            rate = number(cells[at[BOUNCE]], file, line, BOUNCE) if BOUNCE in at else 0.0
            key = "" if label.lower() in DIRECT else label
            yield key, (people, people, round(min(rate, 100.0) * people / 100))
        elif spec.table == "country":
            yield country_code(label), (people,)
        elif spec.table == "device":
            yield DEVICES.get(label.lower(), ""), (people,)
        else:
            yield label, (people,)


@functools.lru_cache(maxsize=1024)
def country_code(name: str) -> str:
    """The lower-case ISO 3166-1 code of a country's English name ("" when unknown)."""
    import pycountry

    text = name.strip()
    if not text:
        return ""
    alias = COUNTRY_ALIASES.get(text.lower())
    if alias:
        return alias.lower()
    try:
        return str(pycountry.countries.lookup(text).alpha_2).lower()
    except LookupError:
        return ""

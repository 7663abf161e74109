"""`trail export --format plausible`: a site's collected rows as the daily aggregates of a
Plausible CE CSV export (trail.importers.plausible names the files and columns), so another
Plausible-compatible tool, or another trail through `trail import plausible`, can take them.

Files `imported_<table>_<YYYYMMDD>_<YYYYMMDD>.csv` over the site's local dates FROM..TO, with the
newest column sets Plausible writes. A visit counts on the local date of its start, a page view
on that of its time; visitors are distinct per day and value, as in Plausible's own export.

    visitors           visitors, pageviews (the visits' page views), bounces, visits,
                       visit_duration (seconds, summed)
    sources            source = the referrer's name, referrer = its URL, utm_*; per visit
    pages              hostname, page, visits, visitors, pageviews (scroll depth and time on
                       page: 0, not collected that way)
    entry_pages        per entry path; exit_pages per exit path
    locations          country = upper-case ISO code, region = the ISO 3166-2 code of the region's
                       name ("" when unknown), city = 0 (trail keeps names, not GeoNames ids)
    devices            Desktop or Mobile (from the platform), "" when unknown
    browsers, operating_systems  with versions
    custom_events      name, visitors, events (link_url and path empty)

The rows are read as `trail export` reads them (trail.export: the statistics' scans, final
session states), one UTC day at a time; works while the server runs.
"""

from __future__ import annotations

import functools
import io
import time as clock
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from trail.export import ExportError, Progress, SiteInfo, _day_rows, window
from trail.stats.scan import stored_days

V = pl.col("visitor_id")
VISITS = [
    V.n_unique().alias("visitors"),
    pl.len().alias("visits"),
    pl.col("duration_seconds").sum().alias("visit_duration"),
    pl.col("is_bounce").sum().alias("bounces"),
    pl.col("page_views").sum().alias("pageviews"),
]
_VISITS = "visitors visits visit_duration bounces pageviews"
# Plausible's file -> (the table its rows come from, the key columns, the output columns).
FILES: dict[str, tuple[str, list[str], list[str]]] = {
    name: (source, keys.split(), columns.split())
    for name, source, keys, columns in (
        ("visitors", "sessions", "", "date visitors pageviews bounces visits visit_duration"),
        (
            "sources",
            "sessions",
            "source referrer utm_source utm_medium utm_campaign utm_content utm_term",
            (
                "date source referrer utm_source utm_medium utm_campaign utm_content utm_term "
                "pageviews visitors visits visit_duration bounces"
            ),
        ),
        (
            "pages",
            "page_views",
            "hostname page",
            (
                "date hostname page visits visitors pageviews total_scroll_depth "
                "total_scroll_depth_visits total_time_on_page total_time_on_page_visits"
            ),
        ),
        (
            "entry_pages",
            "sessions",
            "entry_page",
            "date entry_page visitors entrances visit_duration bounces pageviews",
        ),
        (
            "exit_pages",
            "sessions",
            "exit_page",
            "date exit_page visitors visit_duration exits bounces pageviews",
        ),
        ("locations", "sessions", "country region city", f"date country region city {_VISITS}"),
        ("devices", "sessions", "device", f"date device {_VISITS}"),
        (
            "browsers",
            "sessions",
            "browser browser_version",
            f"date browser browser_version {_VISITS}",
        ),
        (
            "operating_systems",
            "sessions",
            "operating_system operating_system_version",
            f"date operating_system operating_system_version {_VISITS}",
        ),
        ("custom_events", "events", "name", "date name link_url path visitors events"),
    )
}


@dataclass
class Written:
    files: dict[str, int]  # file name -> rows
    seconds: float


def file_name(table: str, first: date, last: date) -> str:
    return f"imported_{table}_{first:%Y%m%d}_{last:%Y%m%d}.csv"


def export(
    data_dir: Path | str,
    site: SiteInfo,
    first: date,
    last: date,
    out_dir: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
) -> Written:
    """Write the Plausible-format files of the site's local dates first..last into out_dir."""
    began = clock.monotonic()
    _prepare(out_dir, force)
    start, end = window(first, last, site.timezone)
    data_dir = Path(data_dir)
    progress = progress if progress is not None else Progress("export", 0, io.StringIO())
    sinks = {t: _Sink(out_dir / file_name(t, first, last), FILES[t][2]) for t in FILES}
    try:
        for table in ("sessions", "page_views", "events"):
            days = stored_days(data_dir, table, site.id, start, end)
            progress.steps = max(progress.steps, len(days))
            pending = pl.DataFrame()
            for day in days:
                rows = _rows(data_dir, table, site, day, start, end)
                pending = pl.concat([pending, rows], how="diagonal") if pending.width else rows
                # Rows of UTC day `day` fall on local dates day-1..day+1, a visit may have
                # started a day before its final state: dates before day-1 are complete.
                done = pending.filter(pl.col("date") < day - timedelta(days=1))
                pending = pending.filter(pl.col("date") >= day - timedelta(days=1))
                _write_dates(sinks, table, done, first, last)
                progress.step(f"{table} {day}", rows.height, 0)
            _write_dates(sinks, table, pending, first, last)
        counts = {sink.path.name: sink.finish() for sink in sinks.values()}
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    finally:
        progress.close()
    return Written(counts, clock.monotonic() - began)


def _prepare(out_dir: Path, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError("out", f"{out_dir} is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise ExportError("out", f"{out_dir} is not empty (use --force to write into it)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError("out", f"cannot create {out_dir}: {e.strerror or e}") from None


def _rows(
    data_dir: Path, table: str, site: SiteInfo, day: date, start: datetime, end: datetime
) -> pl.DataFrame:
    """The rows of one stored UTC day with their local `date` (of the visit's start for
    sessions) and the key columns of the Plausible files."""
    frames = _day_rows(data_dir, table, site.id, day, start, end)
    df = frames["sessions" if table == "sessions" else table]
    stamp = "start" if table == "sessions" else "time"
    local = pl.col(stamp).dt.convert_time_zone(site.timezone).dt.date().alias("date")
    if table == "page_views":
        return df.select(
            local, "visitor_id", "session_id", "hostname", pl.col("path").alias("page")
        )
    if table == "events":
        return df.select(local, "visitor_id", pl.col("event_name").alias("name"))
    pairs = df.select("country_code", "region").unique()
    codes = [region_code(c, r) for c, r in pairs.iter_rows()]
    pairs = pairs.with_columns(pl.Series("region_code", codes, pl.String()))
    df = df.join(pairs, on=["country_code", "region"], how="left", nulls_equal=True)
    return df.select(
        local,
        "visitor_id",
        "duration_seconds",
        "is_bounce",
        "page_views",
        pl.col("referrer_name").alias("source"),
        "referrer",
        *[f"utm_{k}" for k in ("source", "medium", "campaign", "content", "term")],
        pl.col("entry_path").alias("entry_page"),
        pl.col("exit_path").alias("exit_page"),
        pl.col("country_code").str.to_uppercase().alias("country"),
        pl.col("region_code").fill_null("").alias("region"),
        pl.lit(0, pl.UInt64()).alias("city"),
        pl.when(pl.col("mobile"))
        .then(pl.lit("Mobile"))
        .when(pl.col("desktop"))
        .then(pl.lit("Desktop"))
        .otherwise(pl.lit(""))
        .alias("device"),
        "browser",
        "browser_version",
        pl.col("os").alias("operating_system"),
        pl.col("os_version").alias("operating_system_version"),
    )


def _write_dates(
    sinks: dict[str, _Sink], table: str, rows: pl.DataFrame, first: date, last: date
) -> None:
    if not rows.height:
        return
    rows = rows.filter(pl.col("date").is_between(first, last))
    for name, (source, keys, columns) in FILES.items():
        if source != table:
            continue
        sinks[name].write(_aggregate(name, rows, keys).select(columns))


def _aggregate(name: str, rows: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    by = ["date", *keys]
    if name == "pages":
        out = rows.group_by(by).agg(
            pl.struct("visitor_id", "session_id").n_unique().alias("visits"),
            V.n_unique().alias("visitors"),
            pl.len().alias("pageviews"),
        )
        zero = pl.lit(0, pl.UInt64())
        out = out.with_columns(
            zero.alias("total_scroll_depth"),
            zero.alias("total_scroll_depth_visits"),
            zero.alias("total_time_on_page"),
            zero.alias("total_time_on_page_visits"),
        )
    elif name == "custom_events":
        out = rows.group_by(by).agg(V.n_unique().alias("visitors"), pl.len().alias("events"))
        out = out.with_columns(pl.lit("").alias("link_url"), pl.lit("").alias("path"))
    else:
        out = rows.group_by(by).agg(VISITS)
        if name == "entry_pages":
            out = out.rename({"visits": "entrances"})
        elif name == "exit_pages":
            out = out.rename({"visits": "exits"})
    return out.sort(by)


class _Sink:
    """One CSV file, written under a temp name and renamed into place by `finish`."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.rows = 0
        self.file = open(self.tmp, "wb")  # noqa: SIM115 (closed by finish or abort)
        self.file.write((",".join(columns) + "\n").encode())

    def write(self, df: pl.DataFrame) -> None:
        if df.height:
            df.with_columns(pl.col("date").dt.strftime("%Y-%m-%d")).write_csv(
                self.file, include_header=False
            )
            self.rows += df.height

    def finish(self) -> int:
        self.file.close()
        self.tmp.replace(self.path)
        return self.rows

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


@functools.lru_cache(maxsize=4096)
def region_code(country: str | None, name: str | None) -> str:
    """The ISO 3166-2 code of a region named `name` in `country` ("" when not found)."""
    import pycountry

    if not country or not name:
        return ""
    wanted = name.strip().lower()
    for sub in pycountry.subdivisions.get(country_code=country.upper()) or ():
        if str(sub.name).lower() == wanted:
            return str(sub.code)
    return ""


def cmd_plausible(args: Any, config: Any, site: SiteInfo, first: date, last: date) -> int:
    """The `trail export --format plausible` part of trail.export.cmd_export."""
    written = export(
        config.data_dir, site, first, last, Path(args.out),
        force=args.force, progress=Progress("export", 0),
    )  # fmt: skip
    if args.json:
        import orjson

        print(orjson.dumps({"files": written.files, "seconds": round(written.seconds, 3)}).decode())
        return 0
    print(f"exported {site.hostname or site.id} ({site.id}) {first}..{last} to {args.out}")
    for name, rows in written.files.items():
        print(f"  {name:<48} {rows:>10,} rows")
    return 0

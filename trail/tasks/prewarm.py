"""The default dashboard window's indexes, made before the first load of the day.

A window's visitor union, the breakdowns' visitor indexes and its page table span days, so
compaction cannot write them: the first report that needs one builds it and leaves it on disk
for every process of the machine (trail.stats.index_files), ~2-3 s of CPU at 10M page views a
month. The default view of the dashboard (the last 30 days in the site's zone) gets a new set of
closed days once a day, when compaction rolls up the day that ended, so without this task the
first person to open a big site's dashboard each day waits for those builds.

Each round looks at every site's default window: when the rollups of its closed days changed
since the site was last seen (a stat per day and table; nothing is read otherwise) and the window
holds at least MIN_VIEWS page views, the maintenance process runs the reports that build indexes
over that window, so the files are in place when a worker asks. Sites below MIN_VIEWS answer
quickly without indexes. With `storage = "clickhouse"` ClickHouse answers and nothing is made.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from trail.storage import layout, rollups
from trail.storage.daydir import MANIFEST

log = logging.getLogger("trail.prewarm")

INTERVAL = float(os.environ.get("TRAIL_PREWARM_INTERVAL_S", "120"))
MIN_VIEWS = int(os.environ.get("TRAIL_PREWARM_MIN_VIEWS", "200000"))
WINDOW_DAYS = 30  # the dashboard's default range ("Last 30 days", today included)
# The default view's reports that build window indexes (the others read the rollups directly).
REPORTS: tuple[tuple[str, dict[str, list[str]]], ...] = (
    ("total", {}),
    ("page", {"include_avg_time_on_page": ["true"]}),
    ("referrer", {}),
    ("country", {}),
    ("platform", {}),
    ("language", {}),
    ("events", {}),
    ("weekdays", {}),
)
_TABLES = ("sessions", "page_views")

# Per site, the signature of its default window when it was last warmed (or found small).
_seen: dict[str, tuple[Any, ...]] = {}


def task(state: Any, now: datetime | None = None) -> None:
    """Maintenance task: warm every site whose default window (at `now`) changed."""
    if getattr(state.config, "storage", "embedded") == "clickhouse":
        return
    data_dir = Path(state.config.data_dir)
    for site in state.meta.all_sites():
        try:
            warm_site(data_dir, site, today_in(site, now))
        except Exception:  # one site's failure must not stop the others
            log.exception("warming the dashboard window of site %s failed", site.id)


def today_in(site: Any, now: datetime | None = None) -> date:
    try:
        zone = ZoneInfo(site.timezone or "UTC")
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return (now or datetime.now(UTC)).astimezone(zone).date()


def warm_site(data_dir: Path, site: Any, today: date, min_views: int | None = None) -> bool:
    """Run REPORTS over the site's default window ending `today` when what its closed days hold
    changed since the last call and it has at least `min_views` (MIN_VIEWS) page views; True
    when the reports ran."""
    first = today - timedelta(days=WINDOW_DAYS - 1)
    signature = _signature(data_dir, site, first, today)
    if signature is None or _seen.get(site.id) == signature:
        return False
    if _views(data_dir, site.id, first, today) < (MIN_VIEWS if min_views is None else min_views):
        _seen[site.id] = signature
        return False
    from trail.services import statistics

    ctx = _Context(data_dir)
    base = {"id": [site.id], "from": [first.isoformat()], "to": [today.isoformat()]}
    started = time.monotonic()
    for name, extra in REPORTS:
        statistics.run(ctx, name, {**base, **extra}, site)
    _seen[site.id] = signature
    log.info("warmed the 30-day window of site %s in %.1f s", site.id, time.monotonic() - started)
    return True


class _Context:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.config = None


def _signature(data_dir: Path, site: Any, first: date, last: date) -> tuple[Any, ...] | None:
    """The site's zone and window and, per table, the stamps of the manifests of the window's
    days (a compaction or a rollup rewrites the manifest); None without any compacted day."""
    stamps: list[tuple[str, int, int]] = []
    for table in _TABLES:
        for day in layout.site_days(data_dir, table, site.id):
            if not first - timedelta(days=1) <= day <= last + timedelta(days=1):
                continue  # (the zone's window touches the UTC days around it)
            try:
                st = os.stat(layout.day_dir(data_dir, table, site.id, day) / MANIFEST)
            except FileNotFoundError:
                continue
            stamps.append((f"{table}/{day}", st.st_ino, st.st_mtime_ns))
    if not stamps:
        return None
    return (site.timezone, first, last, tuple(stamps))


def _views(data_dir: Path, site_id: str, first: date, last: date) -> int:
    """Page views of the compacted days around the window, from their rollups' sums."""
    start = datetime.combine(first - timedelta(days=1), datetime.min.time(), UTC)
    end = datetime.combine(last + timedelta(days=2), datetime.min.time(), UTC)
    days = rollups.days_or_gaps(data_dir, "sessions", site_id, start, end) or []
    return sum(int(r.sums.get("views", 0)) for _, r in days if r is not None)

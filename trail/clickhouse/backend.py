"""With storage = "clickhouse": the statistics reports that ClickHouse answers, and its client.

trail.services.statistics asks `answer` first; None means "the embedded engine answers this
one": a report without SQL here, a filter the SQL does not compile (rows.Unsupported), or a
site with a deletion (tombstone) in the window that the shipper has not applied to ClickHouse
yet (trail.clickhouse.deletions). docs/clickhouse.md has the table of reports and their backend.

One client per process, opened on first use. chDB (a `chdb://` URL) runs one engine per
process and locks its directory: a worker reads it only while the shipper leaves it alone, and
the embedded engine (on the same box, with the same rows) answers otherwise; a deployment with
several nodes reads a ClickHouse server over HTTP(S).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trail.clickhouse import deletions, reports, reports_events, reports_sessions
from trail.clickhouse.rows import Unsupported
from trail.errors import ApiError
from trail.stats.breakdowns import DIMENSIONS
from trail.stats.filters import Filter
from trail.storage import tombstones

log = logging.getLogger("trail.clickhouse")

SqlReport = Callable[[Any, str, Filter, Any], Any]  # (client, database, filter, site)

SQL_REPORTS: dict[str, SqlReport] = {
    "total": lambda c, d, f, s: reports.total(c, d, f),
    "visitor": lambda c, d, f, s: reports.visitor(c, d, f),
    "page": lambda c, d, f, s: reports.page(
        c, d, f, group_by_title=bool(getattr(s, "group_by_title", False))
    ),
    "page/entry": lambda c, d, f, s: reports.entry_pages(c, d, f),
    "page/exit": lambda c, d, f, s: reports.exit_pages(c, d, f),
    "referrer": lambda c, d, f, s: reports.referrer(c, d, f),
    "hostname": lambda c, d, f, s: reports.hostname(c, d, f),
    "platform": lambda c, d, f, s: reports.platform(c, d, f),
    "hours": lambda c, d, f, s: reports.hours(c, d, f),
    "weekdays": lambda c, d, f, s: reports.weekdays(c, d, f),
    "minutes": lambda c, d, f, s: reports.minutes(c, d, f),
    "events": lambda c, d, f, s: reports.events(c, d, f),
    "event/meta": lambda c, d, f, s: reports.event_meta(c, d, f),
    "event/list": lambda c, d, f, s: reports.event_list(c, d, f),
}


def _dimension(name: str) -> SqlReport:
    return lambda c, d, f, s: reports.dimension(c, d, f, name)


SQL_REPORTS.update({name: _dimension(name) for name in DIMENSIONS})
SQL_REPORTS.update(reports_events.SQL_REPORTS)
SQL_REPORTS.update(reports_sessions.SQL_REPORTS)
# The tables whose deletions a report's rows would miss in ClickHouse.
_TABLES = ("sessions", "page_views", "events")


class Unavailable(ApiError):
    """ClickHouse did not answer a report: 503, the statistics are not served from elsewhere
    (another node's rows are only in ClickHouse)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(503, f"the statistics database is unavailable: {type(error).__name__}")


class Busy(RuntimeError):
    """ClickHouse cannot answer yet, and the embedded engine can: a chDB directory another
    process holds (or is about to need: the shipper), or tables not created yet."""


class _Client:
    """The process's client, opened on first use; queries one at a time (chDB's engine is
    not shared between threads).

    A chDB directory belongs to one process: a worker opens it only while the shipper neither
    holds it nor has rows waiting (its status file says so), and closes it when that changes
    or after `CHDB_IDLE_S` seconds without a report, so shipping never waits long for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.url = ""
        self.client: Any = None
        self.database = ""
        self.used = 0.0
        self._closer: threading.Thread | None = None

    def run(self, url: str, data_dir: Path, report: SqlReport, f: Filter, site: Any) -> Any:
        from trail.clickhouse.client import connect
        from trail.clickhouse.url import parse

        target = parse(url)
        chdb = target.interface == "chdb"
        with self.lock:
            if chdb and not _chdb_free(data_dir):
                self._close()
                raise Busy("the shipper uses the chDB directory")
            if self.client is None or self.url != url:
                self._close()
                try:
                    self.client = connect(target)
                except Exception as e:
                    if chdb:  # held by another process
                        raise Busy(str(e)) from e
                    raise
                if not _migrated(self.client, target.database):
                    self._close()
                    raise Busy("the tables are not created yet (the shipper creates them)")
                self.url, self.database = url, target.database
                log.info("clickhouse reports read %s", target.describe())
                if chdb:
                    self._close_when_idle()
            self.used = time.monotonic()
            try:
                return report(self.client, self.database, f, site)
            except Unsupported:
                raise
            except Exception:
                if not chdb:
                    self.client = None  # a server: connect again next time
                raise

    def _close(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except Exception as e:  # noqa: BLE001  closing a broken client: nothing to do
                log.debug("closing the clickhouse client: %r", e)
            self.client = None

    def _close_when_idle(self) -> None:
        if self._closer is not None and self._closer.is_alive():
            return

        def watch() -> None:
            while True:
                time.sleep(1.0)
                with self.lock:
                    if self.client is None:
                        return
                    if time.monotonic() - self.used > CHDB_IDLE_S:
                        self._close()
                        return

        self._closer = threading.Thread(target=watch, name="chdb-idle", daemon=True)
        self._closer.start()


CHDB_IDLE_S = 5.0
_client = _Client()


def _migrated(client: Any, database: str) -> bool:
    """Whether every migration ran (the shipper runs them before its first insert)."""
    from trail.clickhouse.client import applied_versions
    from trail.clickhouse.schema import MIGRATIONS

    return set(applied_versions(client, database)) >= {m.version for m in MIGRATIONS}


def _chdb_free(data_dir: Path) -> bool:
    """Whether the shipper leaves the chDB directory alone: not connected, nothing waiting."""
    from trail.clickhouse.shipper import read_status

    status = read_status(data_dir) or {}
    busy = status.get("pending_rows") or status.get("deletions_pending")
    return not status.get("connected") and not busy


def has_sql(name: str) -> bool:
    return name in SQL_REPORTS


def answer(url: str, data_dir: Path, name: str, f: Filter, site: Any) -> Any | None:
    """Report `name` from ClickHouse, or None when the embedded engine answers it."""
    report = SQL_REPORTS.get(name)
    if report is None:
        return None
    return answer_with(url, data_dir, name, report, f, site)


def answer_with(
    url: str, data_dir: Path, name: str, report: SqlReport, f: Filter, site: Any
) -> Any | None:
    """`report` from ClickHouse under `answer`'s rules (None: the embedded engine answers, after
    a deletion in the filter's window, an Unsupported filter or Busy; Unavailable when
    ClickHouse fails); `name` is what the log calls it."""
    if f.from_date is None or _deleted(data_dir, f):
        return None
    try:
        return _client.run(url, data_dir, report, f, site)
    except Unsupported as e:
        log.debug("%s from the embedded engine: %s", name, e)
        return None
    except Busy as e:  # nothing shipped yet, or chDB: this box's engine has the same rows
        log.info("%s from the embedded engine: %s", name, e)
        return None
    except ApiError:
        raise
    except Exception as e:  # network, server, chDB: the caller gets a 503
        log.warning("clickhouse report %s failed: %r", name, e)
        raise Unavailable(e) from e


def _deleted(data_dir: Path, f: Filter) -> bool:
    """Whether a deletion (tombstone) of the site that ClickHouse has not applied yet touches
    the filter's window (the shipper applies them, trail.clickhouse.deletions)."""
    stones = tombstones.load(data_dir, f.site_id)
    if not stones:
        return False
    stones = deletions.unapplied(data_dir, f.site_id, stones)
    start, end = (int(t.timestamp() * 1000) for t in f.window())
    if any(tombstones.relevant(stones, t, start, end) for t in _TABLES):
        log.info("%s from the embedded engine: a deletion not yet applied to ClickHouse", f.site_id)
        return True
    return False

"""Session reports: the list of sessions and one session's page views and events in order."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from trail.stats.filters import Filter, FilterError
from trail.stats.kernels import TIE_ORDER
from trail.stats.scan import scan, stored_days
from trail.stats.sources import KEYS, Rows, live_states, rows_for
from trail.storage.schema import DIMS

_DIMS = [c for c in DIMS if c != "hostname"]
SESSION_FIELDS = [
    "visitor_id", "session_id", "time", "start", "duration_seconds", "entry_path", "exit_path",
    "page_views", "is_bounce", "entry_title", "exit_title", *_DIMS, "extended",
]  # fmt: skip


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


# A stored session state: a live state has one +1 row with these values.
_STATE = [*KEYS, "version", "time"]
_LATEST_FIRST = ["time", "visitor_id", "session_id"]


def session_list(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/session/list: live sessions matching the filter, latest first.

    A session's live state is its newest +1 row unless a -1 row of the same version cancelled
    it (it then ended in another window: another day's rows hold its state). Only the page is
    read in full: first which states it holds (`_page_states`), then their rows.
    """
    rows = rows_for(data_dir, f)
    page = _page_states(rows)
    if page.is_empty():
        return []
    out = []
    for r in _state_rows(rows, page).iter_rows(named=True):
        item = {k: r[k] for k in SESSION_FIELDS}
        item["visitor_id"] = str(r["visitor_id"])  # u64 does not survive a JS number
        item["time"], item["start"] = _stamp(r["time"]), _stamp(r["start"])
        item["referrer_icon"] = ""
        out.append(item)
    return out


def _page_states(rows: Rows) -> pl.DataFrame:
    """The page's live states (_STATE columns), latest first.

    A state and the row that cancels it share their time, so the live states with a time in
    any span are found among that span's rows, and a later day's come before an earlier day's:
    the days are read newest first, in spans that double, until offset + limit states are found.
    Only the listed rows are limited to a span; the filter's conditions on whole sessions (a
    page view, an event, the entry or exit page) still look at the whole window.
    """
    f = rows.f
    wanted = f.offset + f.limit
    columns = [*_STATE, "sign", *(["exit_path"] if f.search else [])]
    days = stored_days(rows.data_dir, "sessions", f.site_id, rows.start, rows.end)
    found: list[pl.DataFrame] = []
    have, span, end = 0, 1, rows.end
    while days and have < wanted:
        days, newest = days[:-span], days[-span:]
        start = max(rows.start, datetime.combine(newest[0], time.min, UTC))
        live = live_states(rows.sessions(columns).filter(_between(start, end)))
        if f.search:
            needle = f.search.lower()
            live = live.filter(
                pl.col("exit_path").str.to_lowercase().str.contains(needle, literal=True)
            )
        states = live.select(_STATE).sort(_LATEST_FIRST, descending=True).head(wanted - have)
        found.append(states.collect())
        have += found[-1].height
        span, end = span * 2, start
    if not found:
        return pl.DataFrame()
    return pl.concat(found).slice(f.offset, f.limit)


def _state_rows(rows: Rows, page: pl.DataFrame) -> pl.DataFrame:
    """The stored +1 rows of the page's states, in the page's order. Only the days they lie in
    are read, filtered by the page's visitors as they are read."""
    first, last = page["time"].min(), page["time"].max()
    assert isinstance(first, datetime) and isinstance(last, datetime)
    stored = scan(rows.data_dir, "sessions", rows.f.site_id, first,
                  last + timedelta(milliseconds=1), [*SESSION_FIELDS, "sign", "version"])  # fmt: skip
    stored = stored.filter(
        (pl.col("sign") > 0) & pl.col("visitor_id").is_in(page["visitor_id"].unique().implode())
    )
    states = stored.join(page.lazy(), on=_STATE, how="semi").unique(_STATE, keep="any")
    ranked = page.lazy().with_row_index("rank").join(states, on=_STATE)
    return ranked.sort("rank").collect()


def _between(start: datetime, end: datetime) -> pl.Expr:
    """start <= time < end."""
    time_ms = pl.Datetime("ms", "UTC")
    lo = pl.lit(int(start.timestamp() * 1000)).cast(time_ms)
    hi = pl.lit(int(end.timestamp() * 1000)).cast(time_ms)
    return (pl.col("time") >= lo) & (pl.col("time") < hi)


_PV_FIELDS = ["visitor_id", "session_id", "time", "duration_seconds", "path", "title", *_DIMS]


def session_details(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/session/details: page views and events of one session, in time order
    (details_in_order)."""
    if f.visitor_id is None:
        raise FilterError("visitor_id", "required together with session_id")
    if f.session_id is None:
        raise FilterError("session_id", "required together with visitor_id")
    rows = rows_for(data_dir, f)
    key = (pl.col("visitor_id") == f.visitor_id) & (pl.col("session_id") == f.session_id)
    pv = rows.unfiltered().page_views([*_PV_FIELDS, "tag_keys", "tag_values"]).filter(key)
    ev_cols = [*_PV_FIELDS, "event_name", "event_meta_keys", "event_meta_values"]
    ev = rows.unfiltered().events(ev_cols).filter(key)
    pv_df, ev_df = pl.collect_all([pv, ev])
    return details_in_order(pv_df.to_dicts(), ev_df.to_dicts())


# What orders the rows of one session at one instant (after `time`): every stored column that
# can differ between them (the dimensions are the session's), so that two rows in either order
# are the same rows. The order they were written in is not kept: the scans read a day's
# segments and merged parts in an order that changes as they are merged, and ClickHouse keeps
# no order at all (trail.clickhouse.reports_sessions.session_details takes this one). Page
# views follow the order the time on page pairs them in (kernels.TIE_ORDER).
_VIEW_ORDER = ("time", *TIE_ORDER)
_EVENT_ORDER = ("time", "event_name", "path", "title", "event_meta_keys", "event_meta_values",
                "duration_seconds")  # fmt: skip


def details_in_order(
    views: list[dict[str, Any]], events: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """session/details from one session's stored page views and events (dicts with _PV_FIELDS
    and their own columns): in time order, page views before events at one instant, rows at one
    instant by _VIEW_ORDER / _EVENT_ORDER; a page view's duration is the rounded gap to the next
    page view (0 for the last one)."""
    views = sorted(views, key=lambda v: tuple(v[k] for k in _VIEW_ORDER))
    events = sorted(events, key=lambda e: tuple(e[k] for k in _EVENT_ORDER))
    for i, cur in enumerate(views):
        nxt = views[i + 1] if i + 1 < len(views) else None
        cur["duration_seconds"] = round((nxt["time"] - cur["time"]).total_seconds()) if nxt else 0
    items: list[tuple[datetime, int, dict[str, Any]]] = []
    for v in views:
        items.append((v["time"], 0, {"page_view": _entry(v), "event": None}))
    for e in events:
        e["name"] = e.pop("event_name")
        e["meta_keys"] = e.pop("event_meta_keys")
        e["meta_values"] = e.pop("event_meta_values")
        items.append((e["time"], 1, {"page_view": None, "event": _entry(e)}))
    items.sort(key=lambda t: (t[0], t[1]))
    return [item for _, _, item in items]


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "time": _stamp(row["time"]), "referrer_icon": ""}

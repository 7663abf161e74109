"""Session reports: the list of sessions and one session's page views and events in order."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from trail.stats.filters import Filter, FilterError
from trail.stats.sources import live_states, rows_for
from trail.storage.schema import DIMS

_DIMS = [c for c in DIMS if c != "hostname"]
SESSION_FIELDS = [
    "visitor_id", "session_id", "time", "start", "duration_seconds", "entry_path", "exit_path",
    "page_views", "is_bounce", "entry_title", "exit_title", *_DIMS, "extended",
]  # fmt: skip


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def session_list(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/session/list: live sessions matching the filter, latest first.

    A session's live state is its newest +1 row unless a -1 row of the same version cancelled
    it (it then ended in another window: another day's rows hold its state).
    """
    rows = rows_for(data_dir, f)
    live = live_states(rows.sessions([*SESSION_FIELDS, "sign", "version"]))
    if f.search:
        needle = f.search.lower()
        live = live.filter(
            pl.col("exit_path").str.to_lowercase().str.contains(needle, literal=True)
        )
    live = live.sort(["time", "visitor_id", "session_id"], descending=True)
    df = live.slice(f.offset, f.limit).collect()
    out = []
    for r in df.iter_rows(named=True):
        item = {k: r[k] for k in SESSION_FIELDS}
        item["visitor_id"] = str(r["visitor_id"])  # u64 does not survive a JS number
        item["time"], item["start"] = _stamp(r["time"]), _stamp(r["start"])
        item["referrer_icon"] = ""
        out.append(item)
    return out


_PV_FIELDS = ["visitor_id", "session_id", "time", "duration_seconds", "path", "title", *_DIMS]


def session_details(data_dir: Path, f: Filter) -> list[dict[str, Any]]:
    """/statistics/session/details: page views and events of one session, in time order.

    A page view's duration is the rounded gap to the next page view (0 for the last one).
    """
    if f.visitor_id is None:
        raise FilterError("visitor_id", "required together with session_id")
    if f.session_id is None:
        raise FilterError("session_id", "required together with visitor_id")
    rows = rows_for(data_dir, f)
    key = (pl.col("visitor_id") == f.visitor_id) & (pl.col("session_id") == f.session_id)
    pv = rows.unfiltered().page_views([*_PV_FIELDS, "tag_keys", "tag_values"]).filter(key)
    ev_cols = [*_PV_FIELDS, "event_name", "event_meta_keys", "event_meta_values"]
    ev = rows.unfiltered().events(ev_cols).filter(key)
    pv_df, ev_df = pl.collect_all([pv.sort("time"), ev.sort("time")])
    views = pv_df.to_dicts()
    for i, cur in enumerate(views):
        nxt = views[i + 1] if i + 1 < len(views) else None
        cur["duration_seconds"] = round((nxt["time"] - cur["time"]).total_seconds()) if nxt else 0
    items: list[tuple[datetime, int, dict[str, Any]]] = []
    for v in views:
        items.append((v["time"], 0, {"page_view": _entry(v), "event": None}))
    for e in ev_df.to_dicts():
        e["name"] = e.pop("event_name")
        e["meta_keys"] = e.pop("event_meta_keys")
        e["meta_values"] = e.pop("event_meta_values")
        items.append((e["time"], 1, {"page_view": None, "event": _entry(e)}))
    items.sort(key=lambda t: (t[0], t[1]))
    return [item for _, _, item in items]


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "time": _stamp(row["time"]), "referrer_icon": ""}

"""Segment files written directly with Polars, shaped like the Rust writer's output.

`SiteData.visit` replays hits through the session rules of the reference (section 2) and appends
the rows the session state machine would: session +1 on start, cancel -1 + new +1 on each later
hit, one page view per page hit with duration = seconds since the previous hit.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from trail.storage.schema import DIMS, TABLES
from trail.tasks import compaction

SITE = "3f1c9a0e-1111-4222-8333-444455556666"


def ts(text: str) -> datetime:
    """'2024-03-10 12:00:05' (UTC) -> aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _dims(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        k: (False if v == pl.Boolean() else 0 if v.is_integer() else "") for k, v in DIMS.items()
    }
    d.update(desktop=True, hostname="example.com")
    d.update(over)
    return d


class SiteData:
    def __init__(self, data_dir: Path, site_id: str = SITE) -> None:
        self.data_dir = data_dir
        self.site_id = site_id
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.files = 0

    def visit(
        self,
        visitor_id: int,
        session_id: int,
        hits: list[tuple[str, str]],
        *,
        events: dict[int, tuple[str, dict[str, str]]] | None = None,
        tags: dict[int, dict[str, str]] | None = None,
        **dims: Any,
    ) -> None:
        """Page hits [(utc time, path)]; `events[i]` = (name, meta) fired right after hit i."""
        d = _dims(**dims)
        state: dict[str, Any] | None = None
        for i, (when, path) in enumerate(hits):
            now = ts(when)
            if state is None:
                state = dict(
                    sign=1,
                    version=1,
                    visitor_id=visitor_id,
                    session_id=session_id,
                    time=now,
                    start=now,
                    duration_seconds=0,
                    is_bounce=True,
                    page_views=1,
                    extended=0,
                    entry_path=path,
                    exit_path=path,
                    entry_title=path.upper(),
                    exit_title=path.upper(),
                    **d,
                )
                self.rows["sessions"].append(dict(state))
                gap = 0
            else:
                self.rows["sessions"].append({**state, "sign": -1})
                gap = int((now - state["time"]).total_seconds())
                state = {
                    **state,
                    "version": state["version"] + 1,
                    "time": now,
                    "page_views": state["page_views"] + 1,
                    "is_bounce": state["is_bounce"] and path == state["exit_path"],
                    "duration_seconds": int((now - state["start"]).total_seconds()),
                    "exit_path": path,
                    "exit_title": path.upper(),
                }
                self.rows["sessions"].append(dict(state))
            t = (tags or {}).get(i, {})
            self.rows["page_views"].append(
                dict(
                    visitor_id=visitor_id,
                    session_id=session_id,
                    time=now,
                    duration_seconds=gap,
                    path=path,
                    title=path.upper(),
                    tag_keys=list(t),
                    tag_values=list(t.values()),
                    **d,
                )
            )
            if events and i in events:
                # An interactive event: the session moves by 1 ms, stops bouncing, no page view.
                name, meta = events[i]
                self.rows["sessions"].append({**state, "sign": -1})
                state = {
                    **state,
                    "version": state["version"] + 1,
                    "is_bounce": False,
                    "time": state["time"] + timedelta(milliseconds=1),
                    "exit_path": path,
                }
                self.rows["sessions"].append(dict(state))
                self.rows["events"].append(
                    dict(
                        visitor_id=visitor_id,
                        session_id=session_id,
                        time=state["time"],
                        duration_seconds=0,
                        path=path,
                        title=path.upper(),
                        event_name=name,
                        event_meta_keys=list(meta),
                        event_meta_values=list(meta.values()),
                        **d,
                    )
                )

    def write(self) -> None:
        """One .arrow file per table and UTC day of the row's time."""
        for table, rows in self.rows.items():
            by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in rows:
                by_day[r["time"].date().isoformat()].append(r)
            for day, day_rows in by_day.items():
                d = self.data_dir / "segments" / table / f"site={self.site_id}" / f"day={day}"
                d.mkdir(parents=True, exist_ok=True)
                self.files += 1
                pl.DataFrame(day_rows, schema=TABLES[table]).write_ipc(
                    d / f"seg-{self.files:04d}.arrow"
                )
        self.rows.clear()


def rounded(value: Any) -> Any:
    """`value` with floats to 12 significant digits: counts must be equal, and a quotient's last
    bit can depend on how Polars chunked the column it divided (outside the rollup code)."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def hit_times(start: datetime, hits: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """(time, path) of `hits`, each (gap in seconds after the one before, path), the first
    `gap` seconds after `start`: the times SiteData.visit takes."""
    out = []
    for gap, path in hits:
        start += timedelta(seconds=gap)
        out.append((start.strftime("%Y-%m-%d %H:%M:%S"), path))
    return out


@contextmanager
def compacted(prefix: str, now: float, fill: Callable[[SiteData], None]) -> Iterator[SiteData]:
    """A SiteData in a new temporary data dir, filled by `fill`, written and compacted as at
    `now` (closed days with their rollups); the dir is removed afterwards."""
    data = SiteData(Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        fill(data)
        data.write()
        compaction.run_round(data.data_dir, now=now, grace=0)
        yield data
    finally:
        shutil.rmtree(data.data_dir, ignore_errors=True)

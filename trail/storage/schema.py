"""Polars schemas of the segment tables, mirroring rust_core/src/rows.rs with `Dims` flattened.

Files live in day directories (trail.storage.layout) as `*.arrow` (Arrow IPC, sealed by the
writer) and, after compaction, `part-*.parquet`.
"""

from __future__ import annotations

import polars as pl

TIME = pl.Datetime("ms", "UTC")
STRINGS = pl.List(pl.String)

# Session-level dimensions, repeated on session, page view and event rows.
DIMS: dict[str, pl.DataType] = {
    "hostname": pl.String(),
    "language": pl.String(),
    "country_code": pl.String(),
    "region": pl.String(),
    "city": pl.String(),
    "referrer": pl.String(),
    "referrer_name": pl.String(),
    "os": pl.String(),
    "os_version": pl.String(),
    "browser": pl.String(),
    "browser_version": pl.String(),
    "desktop": pl.Boolean(),
    "mobile": pl.Boolean(),
    "screen_class": pl.String(),
    "screen_width": pl.UInt32(),
    "utm_source": pl.String(),
    "utm_medium": pl.String(),
    "utm_campaign": pl.String(),
    "utm_content": pl.String(),
    "utm_term": pl.String(),
    "channel": pl.String(),
}

SESSIONS: dict[str, pl.DataType] = {
    "sign": pl.Int8(),
    "version": pl.UInt32(),
    "visitor_id": pl.UInt64(),
    "session_id": pl.UInt32(),
    "time": TIME,
    "start": TIME,
    "duration_seconds": pl.UInt32(),
    "is_bounce": pl.Boolean(),
    "page_views": pl.UInt32(),
    "extended": pl.UInt32(),
    "entry_path": pl.String(),
    "exit_path": pl.String(),
    "entry_title": pl.String(),
    "exit_title": pl.String(),
    **DIMS,
}

PAGE_VIEWS: dict[str, pl.DataType] = {
    "visitor_id": pl.UInt64(),
    "session_id": pl.UInt32(),
    "time": TIME,
    "duration_seconds": pl.UInt32(),
    "path": pl.String(),
    "title": pl.String(),
    "tag_keys": STRINGS,
    "tag_values": STRINGS,
    **DIMS,
}

EVENTS: dict[str, pl.DataType] = {
    "visitor_id": pl.UInt64(),
    "session_id": pl.UInt32(),
    "time": TIME,
    "duration_seconds": pl.UInt32(),
    "path": pl.String(),
    "title": pl.String(),
    "event_name": pl.String(),
    "event_meta_keys": STRINGS,
    "event_meta_values": STRINGS,
    **DIMS,
}

REQUESTS: dict[str, pl.DataType] = {
    "visitor_id": pl.UInt64(),
    "time": TIME,
    "ip": pl.String(),
    "user_agent": pl.String(),
    "hostname": pl.String(),
    "path": pl.String(),
    "event_name": pl.String(),
    "referrer": pl.String(),
    "utm_source": pl.String(),
    "utm_medium": pl.String(),
    "utm_campaign": pl.String(),
    "bot": pl.Boolean(),
    "bot_reason": pl.String(),
}

# Table name (the directory under `segments/`, trail.storage.layout.TABLES) -> schema.
TABLES: dict[str, dict[str, pl.DataType]] = {
    "sessions": SESSIONS,
    "page_views": PAGE_VIEWS,
    "events": EVENTS,
    "requests": REQUESTS,
}


def empty_frame(table: str) -> pl.DataFrame:
    """A zero-row frame with the table's schema."""
    return pl.DataFrame(schema=TABLES[table])

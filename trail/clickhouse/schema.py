"""trail's tables in ClickHouse, as versioned migrations (docs/clickhouse.md shows the result).

The columns are the segment tables' (trail.storage.schema) plus `site_id`, which on disk is the
directory a row is filed under. Every table is partitioned by month and sorted for the scans the
reports make: one site, a range of days.

- `sessions`: VersionedCollapsingMergeTree(sign, version), the design of Pirsch's `session` table
  (facts from pirsch-analytics/pirsch `schema/0012_datetime_ms.up.sql` and the v6 engine: a cancel
  row is a copy of the previous state with sign -1, the new state has sign +1 and version + 1;
  partitioned by `toYYYYMM(time)`). Merges drop a state and its cancel row; queries aggregate with
  `sum(x * sign)`, which gives the same numbers before and after a merge.
- `page_views`, `events`, `requests`: MergeTree.

Every table keeps the last `DEDUP_WINDOW` insert ids, so a batch sent again with the same
`insert_deduplication_token` (trail.clickhouse.shipper) is not stored twice. On a single server
that is `non_replicated_deduplication_window`; a replicated cluster has its own setting
(docs/clickhouse.md).

A migration is never edited once released: a change of trail's rows is a new migration
(`ALTER TABLE ... ADD COLUMN IF NOT EXISTS ...`). Every statement is idempotent, so a migration
interrupted half-way is simply run again.
"""

from __future__ import annotations

from typing import NamedTuple

# Insert ids each table remembers (blocks, i.e. one per partition an insert touched). A shipper
# resends at most its one unacknowledged batch, right after it restarts; the window must cover
# the inserts every node makes meanwhile.
DEDUP_WINDOW = 10_000

_DIMS = """
    hostname LowCardinality(String),
    language LowCardinality(String),
    country_code LowCardinality(String),
    region LowCardinality(String),
    city String,
    referrer String,
    referrer_name String,
    os LowCardinality(String),
    os_version LowCardinality(String),
    browser LowCardinality(String),
    browser_version LowCardinality(String),
    desktop Bool,
    mobile Bool,
    screen_class LowCardinality(String),
    screen_width UInt32,
    utm_source String,
    utm_medium String,
    utm_campaign String,
    utm_content String,
    utm_term String,
    channel LowCardinality(String)"""

_SETTINGS = f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}"

SESSIONS = f"""
CREATE TABLE IF NOT EXISTS {{db}}.sessions (
    site_id LowCardinality(String),
    sign Int8,
    version UInt32,
    visitor_id UInt64,
    session_id UInt32,
    time DateTime64(3, 'UTC'),
    start DateTime64(3, 'UTC'),
    duration_seconds UInt32,
    is_bounce Bool,
    page_views UInt32,
    extended UInt32,
    entry_path String,
    exit_path String,
    entry_title String,
    exit_title String,{_DIMS}
)
ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY toYYYYMM(time)
ORDER BY (site_id, toDate(time), visitor_id, session_id, time)
{_SETTINGS}"""

PAGE_VIEWS = f"""
CREATE TABLE IF NOT EXISTS {{db}}.page_views (
    site_id LowCardinality(String),
    visitor_id UInt64,
    session_id UInt32,
    time DateTime64(3, 'UTC'),
    duration_seconds UInt32,
    path String,
    title String,
    tag_keys Array(String),
    tag_values Array(String),{_DIMS}
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (site_id, toDate(time), visitor_id, session_id, time)
{_SETTINGS}"""

EVENTS = f"""
CREATE TABLE IF NOT EXISTS {{db}}.events (
    site_id LowCardinality(String),
    visitor_id UInt64,
    session_id UInt32,
    time DateTime64(3, 'UTC'),
    duration_seconds UInt32,
    path String,
    title String,
    event_name String,
    event_meta_keys Array(String),
    event_meta_values Array(String),{_DIMS}
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (site_id, toDate(time), event_name, visitor_id, time)
{_SETTINGS}"""

REQUESTS = f"""
CREATE TABLE IF NOT EXISTS {{db}}.requests (
    site_id LowCardinality(String),
    visitor_id UInt64,
    time DateTime64(3, 'UTC'),
    ip String,
    user_agent String,
    hostname LowCardinality(String),
    path String,
    event_name String,
    referrer String,
    utm_source String,
    utm_medium String,
    utm_campaign String,
    bot Bool,
    bot_reason LowCardinality(String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (site_id, time)
{_SETTINGS}"""

# Every state of every session (sign >= 0), never collapsed: which visitors a time window sees.
# trail counts a visitor in a window when any state of theirs lies in it (trail.stats.metrics),
# and `sessions` loses a cancelled state and its cancel row when ClickHouse merges them. A view
# copies the +1 rows of each block inserted into `sessions` (it sees them before any merge;
# compacted presence rows, sign 0, are inserted here directly by `trail migrate clickhouse`).
SESSION_STATES = SESSIONS.replace("{db}.sessions", "{db}.session_states").replace(
    "VersionedCollapsingMergeTree(sign, version)", "MergeTree"
)
SESSION_STATES_VIEW = """
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.session_states_view TO {db}.session_states
AS SELECT * FROM {db}.sessions WHERE sign > 0"""

# The record of applied migrations, in the same database.
MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS {db}.trail_migrations (
    version UInt32,
    name String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
ORDER BY version"""


class Migration(NamedTuple):
    version: int
    name: str
    statements: tuple[str, ...]  # with `{db}` for the database


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the row tables", (SESSIONS, PAGE_VIEWS, EVENTS, REQUESTS)),
    Migration(
        2,
        "session states for visitor counts",
        (
            SESSION_STATES,
            SESSION_STATES_VIEW,
            # the states inserted before this migration, as far as merges left them
            (
                "INSERT INTO {db}.session_states SELECT * FROM {db}.sessions WHERE sign > 0 "
                "AND (SELECT count() FROM {db}.session_states) = 0"
            ),
        ),
    ),
)

# The tables the shipper fills, in trail.storage.layout.TABLES order.
TABLES = ("sessions", "page_views", "events", "requests")

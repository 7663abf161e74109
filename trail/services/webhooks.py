"""Webhook delivery, run by the maintenance process.

Two steps per round: `scan_events` finds the custom events each active webhook names in the
sealed `events` segments since its cursor and queues one delivery per event in the
`webhook_outbox` sub-db; `deliver_due` POSTs queued payloads. A failed POST is retried with
exponential backoff; after MAX_FAILURES failures in a row the webhook is disabled and its queue
dropped (saving the webhook through the API re-activates it). Delivery is at least once.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from trail.storage.documents import Record, records

if TYPE_CHECKING:
    from trail.storage.meta import MetaStore, Site

log = logging.getLogger("trail.webhooks")

WEBHOOKS = "webhooks"
OUTBOX = "webhook_outbox"
SEAL_LAG_MS = 3000  # rows become visible when sealed (about a second); scan only behind that
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 3600.0
MAX_FAILURES = 5
TIMEOUT_SECONDS = 5.0
MAX_EVENTS_PER_SCAN = 1000
LOOKBACK_MS = 31 * 60 * 1000  # the session timeout (30 min) and a margin
USER_AGENT = "trail-webhook/1"


def run_round(meta: MetaStore, data_dir: Path) -> None:
    """The maintenance task: queue new events, then deliver what is due."""
    scan_events(meta, data_dir)
    deliver_due(meta)


def scan_events(
    meta: MetaStore, data_dir: Path, now_ms: int | None = None, lag_ms: int = SEAL_LAG_MS
) -> int:
    """Queue a delivery for every matching event not queued before; returns how many.

    An event row carries its session's time (the last page view + 1 ms), not the time it
    arrived, so each round looks back LOOKBACK_MS behind the cursor and skips the events it
    already queued (`seen`: event key -> time, pruned to the look-back window).
    """
    upper = (int(time.time() * 1000) if now_ms is None else now_ms) - lag_ms
    hooks, outbox = records(meta, WEBHOOKS), records(meta, OUTBOX)
    queued = 0
    for hook in hooks.find():
        cursor = int(hook.get("cursor_ms") or 0)
        start = max(int(hook.get("enabled_ms") or cursor), cursor - LOOKBACK_MS)
        site = meta.get_site(hook["domain_id"]) if hook.get("active") else None
        if site is None or start >= upper:
            continue
        seen: dict[str, int] = hook.get("seen") or {}
        rows = [
            r
            for r in matching_events(data_dir, site.id, hook["event"], start, upper)
            if event_key(r) not in seen
        ]
        rows = rows[:MAX_EVENTS_PER_SCAN]  # the rest stays unseen and comes next round
        now = time.time()
        for row in rows:
            outbox.create(
                {
                    "webhook_id": hook["id"],
                    "domain_id": site.id,
                    "payload": payload(site, hook, row),
                    "attempts": 0,
                    "next_at": now,
                }
            )
        queued += len(rows)
        keep_from = upper - LOOKBACK_MS
        seen = {k: t for k, t in seen.items() if t >= keep_from} | {
            event_key(r): _ms(r["time"]) for r in rows
        }
        advance = {"cursor_ms": upper, "seen": seen}
        hooks.merge(hook["id"], advance, touch=False, when=lambda r: bool(r.get("active")))
    return queued


def event_key(row: dict[str, Any]) -> str:
    """Events of one session have distinct times (each moves the session by 1 ms)."""
    return f"{row['visitor_id']}:{row['session_id']}:{_ms(row['time'])}"


def matching_events(
    data_dir: Path, site_id: str, event: str, start_ms: int, end_ms: int
) -> list[dict[str, Any]]:
    """Events named `event` with start <= time < end, oldest first."""
    import polars as pl

    from trail.stats.scan import scan

    start = datetime.fromtimestamp(start_ms / 1000, UTC)
    end = datetime.fromtimestamp(end_ms / 1000, UTC)
    columns = [
        "visitor_id",
        "session_id",
        "time",
        "path",
        "title",
        "duration_seconds",
        "event_name",
        "event_meta_keys",
        "event_meta_values",
    ]
    frame = scan(Path(data_dir), "events", site_id, start, end, columns).filter(
        pl.col("event_name") == event
    )
    return frame.sort("time").collect().to_dicts()


def payload(site: Site, hook: Record, row: dict[str, Any]) -> dict[str, Any]:
    """The JSON body POSTed for one event."""
    keys, values = row.get("event_meta_keys") or [], row.get("event_meta_values") or []
    when = row["time"]
    return {
        "webhook_id": hook["id"],
        "domain_id": site.id,
        "hostname": site.hostname,
        "event": row["event_name"],
        "time": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "path": row.get("path") or "",
        "title": row.get("title") or "",
        "duration_seconds": int(row.get("duration_seconds") or 0),
        "meta": dict(zip(keys, values, strict=False)),
    }


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def deliver_due(
    meta: MetaStore,
    now: float | None = None,
    base_delay: float = RETRY_BASE_SECONDS,
    max_failures: int = MAX_FAILURES,
) -> int:
    """POST every queued payload that is due; returns how many were delivered."""
    now = time.time() if now is None else now
    hooks, outbox = records(meta, WEBHOOKS), records(meta, OUTBOX)
    delivered = 0
    failed_this_round: set[str] = set()
    for item in outbox.find():
        if item["next_at"] > now or item["webhook_id"] in failed_this_round:
            continue
        hook = hooks.get(item["webhook_id"])
        if hook is None or not hook.get("active"):
            outbox.delete(item["id"])
            continue
        if post(hook["endpoint"], item["payload"]):
            outbox.delete(item["id"])
            if hook.get("failures"):
                hooks.merge(hook["id"], {"failures": 0}, touch=False)
            delivered += 1
            continue
        failed_this_round.add(hook["id"])
        _record_failure(meta, hook, item, now, base_delay, max_failures)
    return delivered


def _record_failure(
    meta: MetaStore, hook: Record, item: Record, now: float, base_delay: float, max_failures: int
) -> None:
    hooks, outbox = records(meta, WEBHOOKS), records(meta, OUTBOX)
    failures = int(hook.get("failures") or 0) + 1
    if failures >= max_failures:
        log.warning(
            "webhook %s disabled after %d failed deliveries to %s",
            hook["id"],
            failures,
            hook["endpoint"],
        )
        hooks.merge(hook["id"], {"active": False, "failures": failures})
        for queued in outbox.find(domain_id=hook["domain_id"]):
            if queued["webhook_id"] == hook["id"]:
                outbox.delete(queued["id"])
        return
    hooks.merge(hook["id"], {"failures": failures}, touch=False)
    attempts = int(item.get("attempts") or 0) + 1
    delay = min(base_delay * 2 ** (attempts - 1), RETRY_MAX_SECONDS)
    outbox.merge(item["id"], {"attempts": attempts, "next_at": now + delay}, touch=False)


def post(endpoint: str, body: dict[str, Any]) -> bool:
    """One POST; True on a 2xx answer. Any error (refused, timeout, 4xx/5xx) is a failure."""
    request = urllib.request.Request(
        endpoint,
        data=orjson.dumps(body),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError) as e:
        log.info("webhook POST to %s failed: %s", endpoint, e)
        return False

"""Ingestion: open the worker's engine, and hand validated requests to it."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

import orjson

from trail.config import parse_rate
from trail.core import Engine
from trail.datalists import load_bot_lists, load_ua_rules

if TYPE_CHECKING:
    from pathlib import Path

    from trail.config import Config
    from trail.context import Context
    from trail.storage.meta import Site

log = logging.getLogger("trail.ingest")

KINDS = ("hit", "event", "session")


def open_engine(cfg: Config, data_dir: Path, worker_id: int) -> Engine:
    """The worker's engine over <data_dir>: session state, WAL, segment writer, data lists."""
    options = {
        "fsync_interval_ms": cfg.fsync_interval_ms,
        "strict_fsync": cfg.strict_fsync,
        "seal_interval_ms": cfg.seal_interval_ms,
        "seal_rows": cfg.seal_rows,
        "geoip_db": cfg.geoip_db,
        "trusted_proxies": list(cfg.trusted_proxies),
        "page_view_cap": cfg.limits.page_view_cap,
        "max_batch": cfg.limits.max_batch,
        "max_hit_age_days": cfg.limits.max_hit_age_days,
        "max_hit_future_seconds": cfg.limits.max_hit_future_seconds,
        # The browser routes' per-IP limit, counted by the engine (browser.rs).
        "rate_limit_collect": parse_rate("rate_limit_collect", cfg.rate_limit_collect),
        # Sessions, salts and rate limits in a Redis server shared with other nodes.
        "redis_url": cfg.redis_url if cfg.session_store == "redis" else None,
    }
    engine = Engine(data_dir, worker_id, options, load_ua_rules(), load_bot_lists(cfg.blocked_ips))
    log.info("engine open for worker %d", worker_id)
    return engine


_rules_checked: dict[str, float] = {}


def sync_rules(ctx: Context, site: Site, force: bool = False) -> None:
    """Hand the site's current hostnames and traffic filters to this worker's engine.

    The version is a hash of the rules themselves, so any change anywhere (alternative domains,
    filters, excluded IPs, settings) reaches every worker within the `rules_cache_ms` setting
    without bookkeeping; `force` checks now (the browser routes, on a change to the meta
    store). A filter the engine cannot parse was refused when it was saved.
    """
    now = time.monotonic()
    engine = ctx.engine
    if not force and _rules_checked.get(site.id, 0.0) > now:
        return
    hostnames, filters = ctx.meta.site_rules(site)
    digest = hashlib.blake2b(orjson.dumps([hostnames, filters]), digest_size=8).digest()
    version = int.from_bytes(digest, "big") >> 1
    if engine.rules_version(site.id) != version:
        engine.set_rules(site.id, version, hostnames, filters)
    _rules_checked[site.id] = now + ctx.config.rules_cache_ms / 1000


def ingest_api(
    ctx: Context, site: Site, kind: str, body: bytes | str, batch: bool
) -> dict[str, Any]:
    """Run a Pirsch API body (bytes, or the str Robyn decoded it into) through the hot path;
    raises InvalidInput naming the field."""
    sync_rules(ctx, site)
    return ctx.engine.ingest_api(site.id, site.hostname, kind, body, batch)

"""Fixed-window rate limits shared by every worker (counters live in the engine's state env).

Buckets are named after the settings that size them: `collect` (the browser routes, keyed by
client IP; the engine counts it inside `Engine.browser`, rust_core/src/browser.rs), `api`
(protected routes, keyed by API key), `signin_ip` and `signin_account` (dashboard sign-in
attempts, keyed by client IP and by email). `check_rate` is the one call routes
make; it answers None (go ahead) or the seconds for the `Retry-After` header.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import TYPE_CHECKING

from trail.config import parse_rate

if TYPE_CHECKING:
    from trail.context import Context

log = logging.getLogger("trail.ratelimit")

BUCKETS = ("collect", "api", "signin_ip", "signin_account")


def limit_for(ctx: Context, bucket: str) -> tuple[int, int] | None:
    """(requests, window ms) of `bucket`, or None when that limit is off."""
    if bucket not in BUCKETS:
        raise ValueError(f"unknown rate-limit bucket {bucket!r}")
    return parse_rate(f"rate_limit_{bucket}", getattr(ctx.config, f"rate_limit_{bucket}"))


def state_key(bucket: str, key: str) -> str:
    """The counter's key in the state env: secrets are never stored, only a digest of them."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{bucket}:{digest}"


def check_rate(ctx: Context, bucket: str, key: str) -> int | None:
    """Count one request of `key` in `bucket`: None if allowed, else Retry-After seconds (>= 1)."""
    limit = limit_for(ctx, bucket)
    if limit is None:
        return None
    requests, window_ms = limit
    wait_ms = int(ctx.engine.rate_limit(state_key(bucket, key), requests, window_ms))
    if wait_ms <= 0:
        return None
    return max(1, math.ceil(wait_ms / 1000))

"""The ClickHouse backend's state for `/health` and `/metrics` (trail.api.health).

The shipper runs in the maintenance process and writes its counters to
`<data_dir>/clickhouse/status.json` (trail.clickhouse.status.read_status); a worker reads them
from there. Whether ClickHouse is reachable: a server is asked directly (`GET /ping`, answered
without credentials, the result kept for a few seconds); a chDB directory belongs to one
process, so there the shipper's last attempt says it (unreachable when it failed and has not
connected since).
"""

from __future__ import annotations

import ssl
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from trail.clickhouse.status import read_status
from trail.clickhouse.url import Target, UrlError, parse

PING_TIMEOUT = 2.0
PING_TTL = 5.0  # seconds a ping's answer is reused: /health may be polled every second

_pinged: dict[str, tuple[float, bool, str]] = {}  # url -> (when, reachable, error)
_lock = threading.Lock()

# The counters /health shows and /metrics exports: (name, Prometheus type, help).
FIGURES = (
    (
        "rows_shipped",
        "counter",
        "Rows shipped to ClickHouse since the data directory's first batch.",
    ),
    ("batches", "counter", "Batches ClickHouse acknowledged."),
    ("retries", "counter", "Failed shipping attempts since the shipper started."),
    ("pending_rows", "gauge", "Sealed rows waiting to be shipped."),
    ("pending_files", "gauge", "Spooled segment files waiting to be shipped."),
    ("lag_seconds", "gauge", "Age of the oldest row waiting to be shipped."),
    ("connected", "gauge", "1 when the shipper holds a working connection."),
    ("last_batch_at", "gauge", "Unix time of the last acknowledged batch."),
)


def state(data_dir: Path | str, url: str) -> dict[str, Any]:
    """The shipper's counters, `reachable` and, when not, `error`."""
    status = read_status(data_dir) or {}
    out: dict[str, Any] = {name: status.get(name, 0) for name, _, _ in FIGURES}
    out["connected"] = bool(status.get("connected", False))
    out["last_error"] = status.get("last_error", "")
    try:
        target = parse(url)
    except UrlError as e:  # the configuration checked it at start: not expected here
        return {**out, "reachable": False, "error": str(e)}
    out["target"] = target.describe()
    if target.interface == "chdb":
        reachable = not (out["last_error"] and not out["connected"])
        error = out["last_error"]
    else:
        reachable, error = _ping(url, target)
    out["reachable"] = reachable
    if not reachable:
        out["error"] = error
    return out


def _ping(url: str, target: Target) -> tuple[bool, str]:
    now = time.monotonic()
    with _lock:
        cached = _pinged.get(url)
    if cached is not None and now - cached[0] < PING_TTL:
        return cached[1], cached[2]
    context = None
    if target.interface == "https":
        context = ssl.create_default_context(cafile=target.ca_cert or None)
        if not target.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    address = f"{target.interface}://{target.host}:{target.port}/ping"
    try:
        with urllib.request.urlopen(address, timeout=PING_TIMEOUT, context=context) as r:
            ok, error = r.status == 200, "" if r.status == 200 else f"HTTP {r.status}"
    except OSError as e:  # refused, timed out, TLS, HTTP errors (URLError is an OSError)
        ok, error = False, f"{type(e).__name__}: {e}"[:300]
    with _lock:
        _pinged[url] = (now, ok, error)
    return ok, error


def prometheus(st: dict[str, Any] | None) -> str:
    """The Prometheus text format of `st` (state()); `trail_up` alone without one."""
    lines = ["# HELP trail_up 1 while this worker answers.", "# TYPE trail_up gauge", "trail_up 1"]
    if st is None:
        return "\n".join(lines) + "\n"
    figures = [*FIGURES, ("reachable", "gauge", "1 when ClickHouse answers.")]
    for name, kind, text in figures:
        metric = f"trail_clickhouse_{name}" + ("_total" if kind == "counter" else "")
        value = float(st.get(name) or 0)
        lines += [f"# HELP {metric} {text}", f"# TYPE {metric} {kind}", f"{metric} {value:g}"]
    return "\n".join(lines) + "\n"

"""CORS for the browser-facing routes (collect, the Pirsch browser SDK).

The allowed Origin is echoed back (never "*", since credentials are allowed) when its hostname is
one of the website's hostnames; `Vary: Origin` always, so caches keep answers per Origin apart.
A disallowed Origin gets no Access-Control-Allow-Origin: the browser hides the answer, but the
request itself is judged by the engine's hostname rule, not by CORS.
"""

from __future__ import annotations

from typing import Any

PREFLIGHT_MAX_AGE = "86400"


def origin_of(request: Any) -> str:
    return (request.headers.get("origin") or "").strip()


def cors_headers(origin: str, allowed: bool, methods: str) -> dict[str, str]:
    headers = {"Vary": "Origin", "Access-Control-Allow-Methods": methods}
    if allowed and origin:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def preflight_headers(origin: str, allowed: bool, methods: str) -> dict[str, str]:
    return {
        **cors_headers(origin, allowed, methods),
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
    }

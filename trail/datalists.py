"""Data lists the hot path needs, read once per worker at startup and handed to `trail._core`.

The uap-core rules come from `ua_parser_builtins`, the crawler patterns from `crawler-user-agents`,
our curated keyword and referrer-spam lists from `trail/data/` (sources in `trail/data/SOURCES.md`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"

# (regex, replacement, v1, v2, v3) — the shape `UaRules` in rust_core/src/ua.rs expects.
RuleTuple = tuple[str, str | None, str | None, str | None, str | None]


def load_ua_rules() -> dict[str, list[RuleTuple]]:
    """Return the uap-core rules as {"user_agent", "os", "device"} lists of 5-tuples."""
    # The legacy module must be imported before `ua_parser_builtins.regexes`: the two import each
    # other, and only this order resolves the cycle.
    import ua_parser.user_agent_parser  # noqa: F401
    from ua_parser_builtins import regexes

    user_agent = [
        (
            p.user_agent_re.pattern,
            p.family_replacement,
            p.v1_replacement,
            p.v2_replacement,
            getattr(p, "v3_replacement", None),
        )
        for p in regexes.USER_AGENT_PARSERS
    ]
    os = [
        (
            p.user_agent_re.pattern,
            p.os_replacement,
            p.os_v1_replacement,
            p.os_v2_replacement,
            p.os_v3_replacement,
        )
        for p in regexes.OS_PARSERS
    ]
    device = [
        (
            p.user_agent_re.pattern,
            "i" if p.user_agent_re.flags & re.IGNORECASE else None,
            p.device_replacement,
            p.brand_replacement,
            p.model_replacement,
        )
        for p in regexes.DEVICE_PARSERS
    ]
    return {"user_agent": user_agent, "os": os, "device": device}


def load_bot_lists(ip_blocks: Iterable[str] = ()) -> dict[str, list[str]]:
    """Return {"ua_patterns", "ua_keywords", "spam_hosts", "ip_blocks"} for `BotLists`."""
    return {
        "ua_patterns": crawler_patterns(),
        "ua_keywords": read_list("bot_keywords.txt"),
        "spam_hosts": read_list("referrer_spam.txt"),
        "ip_blocks": [b.strip() for b in ip_blocks if b.strip()],
    }


def crawler_patterns() -> list[str]:
    """The `pattern` field of every entry in crawler-user-agents' JSON (MIT)."""
    text = resources.files("crawleruseragents").joinpath("crawler-user-agents.json").read_text()
    entries: list[dict[str, Any]] = json.loads(text)
    return [e["pattern"] for e in entries if isinstance(e.get("pattern"), str) and e["pattern"]]


def read_list(name: str) -> list[str]:
    """One lowercase entry per line; `#` starts a comment line; blank lines are skipped."""
    lines = (DATA_DIR / name).read_text(encoding="utf-8").splitlines()
    return [s.lower() for s in (line.strip() for line in lines) if s and not s.startswith("#")]

"""Breakdowns by a session dimension (os, browser, ..., referrer, hostname, platform) and the
filter options (§5)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from tests.oracle.reports import Page, paged, searched
from tests.oracle.selection import Selection, key, rate

# -- breakdowns by a session dimension -----------------------------------------------------------

DIMENSIONS: dict[str, tuple[str, ...]] = {
    "os": ("os",),
    "os/version": ("os", "os_version"),
    "browser": ("browser",),
    "browser/version": ("browser", "browser_version"),
    "country": ("country_code",),
    "region": ("country_code", "region"),  # §5 "region with its country"
    "city": ("country_code", "region", "city"),  # "city with region and country"
    "language": ("language",),
    "screen": ("screen_class",),
    "channel": ("channel",),
    "utm/source": ("utm_source",),
    "utm/medium": ("utm_medium",),
    "utm/campaign": ("utm_campaign",),
    "utm/content": ("utm_content",),
    "utm/term": ("utm_term",),
}


def dimension(name: str) -> Callable[[Selection, int], Page]:
    """§5 "os, browser, ...: {visitors, relative_visitors, <field>}, ordered by visitors desc
    then field asc"; the primary field is the last one."""
    columns = DIMENSIONS[name]

    def report(sel: Selection, now: int) -> Page:
        groups = sel.core_by(lambda r: tuple(r[c] for c in columns))
        rows = []
        for values, m in groups.items():
            if not searched(values[-1], sel.q):
                continue
            row = {
                "visitors": m["visitors"],
                "relative_visitors": rate(m["visitors"], sel.all_visitors()),
            }
            row.update(zip(columns, values, strict=True))
            rows.append(row)
        allowed = ("visitors", "relative_visitors", *columns)
        return paged(rows, sel.q, allowed, "visitors", columns[-1])

    return report


def referrer(sel: Selection, now: int) -> Page:
    """§5 "referrer: grouped by referrer_name with an example referrer; grouped by full referrer
    when a referrer filter is set". The example is the smallest value (trail: "so the answer
    does not depend on row order"; Pirsch takes any())."""
    group = "referrer" if "referrer" in sel.q.fields else "referrer_name"
    other = "referrer_name" if group == "referrer" else "referrer"
    read = sel.matching_views() if sel.q.page_level else sel.matching_session_rows()
    examples: dict[str, str] = {}
    for r in read:
        examples[r[group]] = min(examples.get(r[group], r[other]), r[other])
    rows = []
    for value, m in sel.core_by(lambda r: r[group]).items():
        if not searched(value, sel.q):
            continue
        rows.append({
            group: value,
            other: examples[value],
            "referrer_icon": "",
            "visitors": m["visitors"],
            "sessions": m["sessions"],
            "relative_visitors": rate(m["visitors"], sel.all_visitors()),
            "bounces": m["bounces"],
            "bounce_rate": rate(m["bounces"], m["sessions"]),
        })  # fmt: skip
    allowed = ("visitors", "sessions", "relative_visitors", "bounces", "bounce_rate",
               "referrer", "referrer_name")  # fmt: skip
    return paged(rows, sel.q, allowed, "visitors", group)


def hostname(sel: Selection, now: int) -> Page:
    """The API's hostname report: the core metrics per hostname with relative values."""
    rows = []
    for value, m in sel.core_by(lambda r: r["hostname"]).items():
        if not searched(value, sel.q):
            continue
        rows.append({
            "hostname": value, **m,
            "relative_visitors": rate(m["visitors"], sel.all_visitors()),
            "relative_views": rate(m["views"], sel.all_views()),
            "bounce_rate": rate(m["bounces"], m["sessions"]),
        })  # fmt: skip
    allowed = ("hostname", "visitors", "views", "sessions", "bounces", "relative_visitors",
               "relative_views", "bounce_rate")  # fmt: skip
    return paged(rows, sel.q, allowed, "visitors", "hostname")


def platform(sel: Selection, now: int) -> dict[str, Any]:
    """§5 "platform: one object; desktop/mobile = distinct visitors with the flag, unknown =
    total minus both; relative values use unfiltered totals"."""
    flags = sel.core_by(lambda r: "desktop" if r["desktop"] else "mobile" if r["mobile"] else "")
    all_ = sel.core()
    total_ = all_["visitors"] if all_ else 0
    desktop = flags["desktop"]["visitors"] if "desktop" in flags else 0
    mobile = flags["mobile"]["visitors"] if "mobile" in flags else 0
    unknown = total_ - desktop - mobile
    denominator = sel.all_visitors()
    return {
        "platform_desktop": desktop,
        "platform_mobile": mobile,
        "platform_unknown": unknown,
        "relative_platform_desktop": rate(desktop, denominator),
        "relative_platform_mobile": rate(mobile, denominator),
        "relative_platform_unknown": rate(unknown, denominator),
    }


# -- filter options ----------------------------------------------------------------------------

MAX_OPTIONS = 200  # §5

OPTIONS: dict[str, tuple[str, str]] = {
    "referrer/name": ("sessions", "referrer_name"),
    "hostname": ("sessions", "hostname"),
    "page": ("page_views", "path"),
    "referrer": ("sessions", "referrer"),
    "event": ("events", "event_name"),
    "country": ("sessions", "country_code"),
    "region": ("sessions", "region"),
    "city": ("sessions", "city"),
    "language": ("sessions", "language"),
    "metadata": ("events", "event_meta_keys"),
    "utm/source": ("sessions", "utm_source"),
    "utm/medium": ("sessions", "utm_medium"),
    "utm/campaign": ("sessions", "utm_campaign"),
    "utm/content": ("sessions", "utm_content"),
    "utm/term": ("sessions", "utm_term"),
    "tag": ("page_views", "tag_keys"),
    "tag/value": ("page_views", "tag_values"),
}


def options(name: str) -> Callable[[Selection, int], list[str]]:
    """§5 "filter-option endpoints return at most 200 values"; the API: "available filtering
    options for a time period": the distinct non-empty values in the range, no other filter
    (trail: `search` applies; the 200 most frequent, sorted, a page view's or event's value
    counted once per row, a session's once per session with a state in the range:
    trail/stats/options.py)."""
    table, column = OPTIONS[name]

    def report(sel: Selection, now: int) -> list[str]:
        rows = {"sessions": [r for r in sel.session_rows if r["sign"] >= 0],
                "page_views": sel.page_views, "events": sel.events}[table]  # fmt: skip
        seen: dict[str, list[Any]] = defaultdict(list)  # value -> its occurrences
        for r in rows:
            if name == "tag/value":
                values = [v for k, v in zip(r["tag_keys"], r["tag_values"], strict=True)
                          if k == sel.q.tag]  # fmt: skip
            elif isinstance(r[column], list):
                values = r[column]
            else:
                values = [r[column]]
            for v in values:
                seen[v].append(key(r) if table == "sessions" else None)
        counts = {
            v: len(set(keys)) if table == "sessions" else len(keys)
            for v, keys in seen.items()
            if v and searched(v, sel.q)
        }
        top = sorted(counts, key=lambda v: (-counts[v], v))[:MAX_OPTIONS]
        return sorted(top)

    return report

"""Accepted hits -> the rows trail stores, by a naive replay of the session state machine.

A hit is a dict (see `tests.oracle.traffic` for how they are made):

    kind            "page_view" | "event" | "keep_alive"
    time            UTC milliseconds
    site            the site it was sent to
    user_agent, ip  the visitor's identity inputs
    path, title     "" on a keep-alive without a URL
    dims            the session-level dimensions derived from the hit (hostname, language,
                    country_code, region, city, referrer, referrer_name, os, os_version, browser,
                    browser_version, desktop, mobile, screen_class, screen_width, utm_source,
                    utm_medium, utm_campaign, utm_content, utm_term, channel)
    tags            {key: value} (page views; events may carry the page's tags too)
    event_name, event_meta, event_duration, non_interactive   (events)

Hits must be given in the order they reach the server (the generator sends them by time).
The facts are §2 of the semantics notes and, where trail is more precise, rust_core/src/session.rs
(`process`, `find`, `advance`) and fingerprint.rs; each rule below names its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS
SESSION_TIMEOUT_MS = 30 * MINUTE_MS  # §2 "Timeout 30 minutes since the session's last time"
PAGE_VIEW_CAP = 200  # §2 "Page-view cap per session: 200 by default" (trail: limits.page_view_cap)
EXTENDED_CAP = 65_534  # §2 keep-alive row: "extended+1 (cap 65534)"

DIM_NAMES = (
    "hostname", "language", "country_code", "region", "city", "referrer", "referrer_name",
    "os", "os_version", "browser", "browser_version", "desktop", "mobile", "screen_class",
    "screen_width", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
    "channel",
)  # fmt: skip
# §2 "A new session ... starts when the hit carries a non-empty referrer, referrer name or any
# UTM value that differs from the session's."
CAMPAIGN_DIMS = (
    "referrer", "referrer_name", "utm_source", "utm_medium", "utm_campaign", "utm_content",
    "utm_term",
)  # fmt: skip


@dataclass
class Tables:
    """What the model stores: the three tables of §1, as lists of dicts."""

    sessions: list[dict[str, Any]] = field(default_factory=list)  # with sign +1 / -1
    page_views: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (hit, reason)

    def for_site(self, site: str) -> Tables:
        return Tables(
            [r for r in self.sessions if r["site"] == site],
            [r for r in self.page_views if r["site"] == site],
            [r for r in self.events if r["site"] == site],
            [d for d in self.dropped if d[0]["site"] == site],
        )


def utc_day(time_ms: int) -> str:
    """The UTC date of a time as YYYYMMDD: the day whose salt keys the fingerprint."""
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y%m%d")


def visitor_id(site: str, user_agent: str, ip: str, day: str) -> str:
    """§2: visitor_id = hash(User-Agent + IP + salt + current UTC date). The hash is opaque, so
    the model names the visitor by its inputs. trail hashes the site in as well
    (fingerprint.rs) and rotates one secret salt per UTC day (salts.rs): a visitor gets a new id
    on each UTC day, not on each day of the site's time zone."""
    return f"{site}|{user_agent}|{ip}|{day}"


def sorted_pairs(mapping: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """§4 "Tags: trimmed, empty dropped"; keys come out sorted (pipeline.rs reads them from a
    BTreeMap), at most 20 pairs."""
    pairs = []
    for key, value in sorted((mapping or {}).items()):
        k, v = str(key).strip(), str(value).strip()
        if k and v:
            pairs.append((k, v))
    pairs = pairs[:20]
    return [k for k, _ in pairs], [v for _, v in pairs]


def event_meta(hit: dict[str, Any]) -> tuple[list[str], list[str]]:
    """§2 "Event metadata = page tags overridden by event meta on the same key"."""
    merged = dict(hit.get("tags") or {})
    merged.update(hit.get("event_meta") or {})
    return sorted_pairs(merged)


class Ingest:
    """The session store of one server: live sessions by (site, visitor_id)."""

    def __init__(self) -> None:
        self.live: dict[tuple[str, str], dict[str, Any]] = {}
        self.tables = Tables()
        self.next_session_id = 1

    def run(self, hits: list[dict[str, Any]]) -> Tables:
        for hit in hits:
            self.process(hit)
        return self.tables

    def find(self, hit: dict[str, Any], today_id: str) -> tuple[dict[str, Any], str] | None:
        """The visitor's live session (session.rs `find`): today's fingerprint first; if none
        and 30 minutes ago was yesterday (UTC), yesterday's fingerprint, unless that session
        started more than 24 h ago (§2 "Midnight")."""
        site = hit["site"]
        current = self.live.get((site, today_id))
        if current is not None:
            # session.rs: a session under today's key that timed out is not looked past.
            if hit["time"] - current["time"] <= SESSION_TIMEOUT_MS:
                return current, today_id
            return None
        yesterday = utc_day(hit["time"] - SESSION_TIMEOUT_MS)
        if yesterday == utc_day(hit["time"]):
            return None
        old_id = visitor_id(site, hit["user_agent"], hit["ip"], yesterday)
        old = self.live.get((site, old_id))
        if (
            old is not None
            and hit["time"] - old["time"] <= SESSION_TIMEOUT_MS
            and old["start"] > hit["time"] - DAY_MS
        ):
            return old, old_id
        return None

    def process(self, hit: dict[str, Any]) -> None:
        kind = hit["kind"]
        site = hit["site"]
        today_id = visitor_id(site, hit["user_agent"], hit["ip"], utc_day(hit["time"]))
        found = self.find(hit, today_id)
        if found is not None and kind != "keep_alive" and starts_new_session(found[0], hit):
            found = None
        if found is None:
            if kind == "keep_alive":
                # §2 "A ping without a session is dropped" (scenario 3).
                self.tables.dropped.append((hit, "no_session"))
                return
            self.open_session(hit, today_id)
            return
        previous, old_id = found
        if kind != "keep_alive" and previous["page_views"] >= PAGE_VIEW_CAP:
            self.tables.dropped.append((hit, "page_view_cap"))
            return
        state = advance(previous, hit)
        # Midnight: the session moves to today's key and keeps yesterday's visitor_id.
        del self.live[(site, old_id)]
        self.live[(site, today_id)] = state
        # §1 Collapsing: a cancel row (copy of the previous state, sign -1) and the new state.
        self.tables.sessions.append({**previous, "sign": -1})
        self.tables.sessions.append(dict(state))
        if kind == "page_view":
            # §1 page_view.duration_seconds = seconds since the previous hit of the session
            # (the session's `time`, which keep-alives and events move too); whole seconds.
            gap = max(hit["time"] - previous["time"], 0) // 1000
            self.tables.page_views.append(page_view(state, hit, gap))
        elif kind == "event":
            # §2 "event (its time = the session time)". No page view.
            self.tables.events.append(event(state, hit, state["time"]))

    def open_session(self, hit: dict[str, Any], vid: str) -> None:
        """§2 "page view, new session" / "event, new session": page_views=1, is_bounce=true,
        entry=exit=path, start=time=now; a lone event also gets its page view."""
        state = {
            "site": hit["site"],
            "sign": 1,
            "version": 1,
            "visitor_id": vid,
            "session_id": self.next_session_id,
            "time": hit["time"],
            "start": hit["time"],
            "duration_seconds": 0,
            "is_bounce": True,
            "page_views": 1,
            "extended": 0,
            "entry_path": hit["path"],
            "exit_path": hit["path"],
            "entry_title": hit["title"],
            "exit_title": hit["title"],
            **{k: hit["dims"][k] for k in DIM_NAMES},
        }
        self.next_session_id += 1
        self.live[(hit["site"], vid)] = state
        self.tables.sessions.append(dict(state))
        self.tables.page_views.append(page_view(state, hit, 0))
        if hit["kind"] == "event":
            self.tables.events.append(event(state, hit, state["time"]))


def starts_new_session(session: dict[str, Any], hit: dict[str, Any]) -> bool:
    """§2: a non-empty referrer, referrer name or UTM value that differs from the session's."""
    return any(hit["dims"][k] != "" and hit["dims"][k] != session[k] for k in CAMPAIGN_DIMS)


def advance(previous: dict[str, Any], hit: dict[str, Any]) -> dict[str, Any]:
    """The next state of a live session (§2 table; session.rs `advance`)."""
    s = dict(previous)
    s["sign"] = 1
    s["version"] = previous["version"] + 1
    kind = hit["kind"]
    if kind == "page_view":
        s["time"] = max(hit["time"], previous["time"])
        s["page_views"] = previous["page_views"] + 1
        # §2 "is_bounce stays true only if path equals the previous exit_path (a reload does
        # not un-bounce)".
        s["is_bounce"] = previous["is_bounce"] and hit["path"] == previous["exit_path"]
        s["exit_path"] = hit["path"]
        s["exit_title"] = hit["title"]
    elif kind == "event":
        # §2 "time moves by +1 ms only (events don't keep a session alive); is_bounce=false
        # unless non_interactive; exit_path = event path" (the exit title stays).
        s["time"] = previous["time"] + 1
        if not hit["non_interactive"]:
            s["is_bounce"] = False
        if hit["path"]:
            s["exit_path"] = hit["path"]
    else:
        # §2 keep-alive: "time=now, extended+1 (cap 65534), duration updated, exit path/title
        # overwritten" (only when the ping names a page: session.rs).
        s["time"] = max(hit["time"], previous["time"])
        s["extended"] = min(previous["extended"] + 1, EXTENDED_CAP)
        if hit["path"]:
            s["exit_path"] = hit["path"]
            s["exit_title"] = hit["title"]
    s["duration_seconds"] = (s["time"] - s["start"]) // 1000  # §1 duration = time - start
    return s


def page_view(session: dict[str, Any], hit: dict[str, Any], duration: int) -> dict[str, Any]:
    """§1 page_view row: the hit's path, title and tags; every session-level dimension is the
    session's ("Page views and events inherit the session's referrer, UTM, geo, UA and screen")."""
    keys, values = sorted_pairs(hit.get("tags"))
    return {
        "site": session["site"],
        "visitor_id": session["visitor_id"],
        "session_id": session["session_id"],
        "time": hit["time"],
        "duration_seconds": duration,
        "path": hit["path"],
        "title": hit["title"],
        "tag_keys": keys,
        "tag_values": values,
        **{k: session[k] for k in DIM_NAMES},
    }


def event(session: dict[str, Any], hit: dict[str, Any], time: int) -> dict[str, Any]:
    keys, values = event_meta(hit)
    return {
        "site": session["site"],
        "visitor_id": session["visitor_id"],
        "session_id": session["session_id"],
        "time": time,
        "duration_seconds": hit["event_duration"],  # §1 "the user-supplied event duration"
        "path": hit["path"] or session["exit_path"],
        "title": hit["title"],
        "event_name": hit["event_name"],
        "event_meta_keys": keys,
        "event_meta_values": values,
        **{k: session[k] for k in DIM_NAMES},
    }


def ingest(hits: list[dict[str, Any]]) -> Tables:
    """Replay `hits` (in arrival order) through one fresh session store."""
    return Ingest().run(hits)

"""Realistic accepted traffic and filters, as Hypothesis strategies.

Traffic: one or two sites (each with a time zone), a few visitors (a real browser User-Agent
and a public IP), a few visits each over the last days: page views with titles and tags, events
with metadata (on the page being viewed), keep-alives, a source (referrer, UTM) on the first hit
of a visit. Hits are sent through `/hit/batch`, `/event/batch` and `/session/batch` with their
own `time`, so they must lie within the ingest window (rust_core/src/validate.rs: at most
`max_hit_age_days` = 365 days in the past, 300 s in the future); the generator uses the last
seven days and, sometimes, the last few minutes (active visitors).

Every value the server derives from a request (browser, OS, platform, country, language, screen
class, referrer, referrer name, UTM, channel) comes from the tables below. They were read off
trail's ingest for exactly these inputs (a probe through a real server, December 2026) and
agree with the rules of §4 of the semantics notes; no User-Agent here is a bot (bots.rs: long
enough, current versions, no bot keywords) and every IP is public. A wrong entry shows up as a
disagreement in every report of that dimension, so the tables are checked by each run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

_WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
_SAFARI_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
_ANDROID = "Mozilla/5.0 (Linux; Android 14;"
_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15"
# (User-Agent, browser, browser_version, os, os_version, desktop, mobile)
USER_AGENTS = [
    (f"{_WINDOWS} {_WEBKIT} Chrome/131.0.0.0 Safari/537.36",
     "Chrome", "131.0", "Windows", "10", True, False),
    (f"{_WINDOWS} {_WEBKIT} Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
     "Edge", "131.0", "Windows", "10", True, False),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
     "Firefox", "133.0", "Mac", "10.15", True, False),
    (f"{_SAFARI_MAC} (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
     "Safari", "18.1", "Mac", "10.15", True, False),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
     "Firefox", "133.0", "Linux", "", True, False),
    (f"{_IPHONE} (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
     "Safari", "18.1", "iOS", "18.1", False, True),
    (f"{_ANDROID} Pixel 8) {_WEBKIT} Chrome/131.0.6778.104 Mobile Safari/537.36",
     "Chrome", "131.0", "Android", "14", False, True),
    (f"{_ANDROID} SM-S918B) {_WEBKIT} SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
     "Samsung Internet", "26.0", "Android", "14", False, True),
    # Chrome OS is neither desktop nor mobile (§4 "Chrome OS neither (= unknown)").
    (f"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) {_WEBKIT} Chrome/131.0.0.0 Safari/537.36",
     "Chrome", "131.0", "Chrome OS", "14541.0", False, False),
]  # fmt: skip
# (IP prefix, country_code, region, city): the networks of the GeoIP test fixture
# (tests/fixtures/make_mmdb.py; served with TRAIL_GEOIP_DB); 198.51.100.0/24 is not in it.
NETWORKS = [
    ("81.2.69.", "gb", "England", "London"),
    ("89.160.20.", "se", "Östergötland", "Linköping"),
    ("203.0.113.", "au", "", ""),
    ("198.51.100.", "", "", ""),
    ("2001:db8::", "de", "Berlin", "Berlin"),
]
# (Accept-Language, language): §4 "first entry, cut at ; , -, kept only if ISO-639-1".
LANGUAGES = [("en-US,en;q=0.9", "en"), ("de-DE,de;q=0.8", "de"), ("fr-CH, fr;q=0.9", "fr"),
             ("pt-BR", "pt"), ("", ""), ("invalid", "")]  # fmt: skip
# (screen_width, class): §4 minimum widths; 0 = unknown.
SCREENS = [(0, ""), (390, "XS"), (768, "M"), (1024, "XL"), (1440, "HD"), (1920, "Full HD"),
           (2560, "WQHD"), (3840, "UHD 4K")]  # fmt: skip


@dataclass(frozen=True)
class Source:
    """Where a visit comes from: the referrer and URL query of its first hit, and what the
    server derives from them (§4 "Referrer", "UTM", "Channel")."""

    name: str
    referrer_header: str
    query: str
    referrer: str = ""
    referrer_name: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    utm_content: str = ""
    utm_term: str = ""
    channel: str = "Direct"


SOURCES = [
    Source("direct", "", ""),
    Source("google", "https://www.google.com/", "", "https://www.google.com", "Google",
           channel="Organic Search"),
    Source("google.de", "https://www.google.de/search?q=x", "", "https://www.google.de/search",
           "Google", channel="Organic Search"),
    Source("hn", "https://news.ycombinator.com/item?id=1", "", "https://news.ycombinator.com/item",
           "Hacker News", channel="Organic Social"),
    Source("twitter", "https://t.co/abc", "", "https://t.co/abc", "Twitter",
           channel="Organic Social"),
    Source("chatgpt", "https://chatgpt.com/", "", "https://chatgpt.com", "ChatGPT", channel="AI"),
    Source("blog", "https://blog.example.org/post/1?x=y", "", "https://blog.example.org/post/1",
           "blog.example.org", channel="Referral"),
    Source("gmail", "https://mail.google.com/mail/u/0/", "", "https://mail.google.com/mail/u/0/",
           "Gmail", channel="Email"),
    Source("newsletter-text", "Newsletter", "", "", "Newsletter"),
    Source("newsletter", "", "utm_source=newsletter&utm_medium=email&utm_campaign=winter", "",
           "newsletter", "newsletter", "email", "winter", channel="Email"),
    Source("ads", "", "utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_term=analytics"
           "&utm_content=ad1", "", "google", "google", "cpc", "brand", "ad1", "analytics",
           channel="Paid Search"),
    Source("gclid", "https://www.google.com/", "gclid=abc", "https://www.google.com", "Google",
           utm_medium="(gclid)", channel="Paid Search"),
    Source("facebook", "", "utm_source=facebook&utm_medium=social&utm_campaign=launch", "",
           "facebook", "facebook", "social", "launch", channel="Organic Social"),
    Source("paid-bar", "", "utm_medium=" + quote("paid bar"), utm_medium="paid bar",
           channel="Paid Other"),
]  # fmt: skip
DIRECT = SOURCES[0]

# Paths and their titles (one title per path: the model's "latest title" is then unambiguous).
PAGES = {
    "/": "Home", "/pricing": "Pricing", "/blog": "Blog", "/blog/first-post": "First post",
    "/blog/second-post": "Second post", "/docs": "Docs", "/docs/install": "Install",
    "/about": "About us", "/Contact": "Contact",
}  # fmt: skip
PATHS = list(PAGES)
TAGS = {"author": ["alice", "bob", "Carol"], "category": ["news", "howto"], "ab": ["a", "b"]}
EVENT_NAMES = ["signup", "download", "play video", "Newsletter"]
META = {"plan": ["free", "pro"], "amount": ["3", "12", "12.5", "abc"], "file": ["a.pdf", "b.zip"]}
TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Site:
    key: str  # the model's name for the site; the harness maps it to the server's id
    hostname: str
    timezone: str


@dataclass(frozen=True)
class Visitor:
    ua: int  # index in USER_AGENTS
    network: int  # index in NETWORKS
    host: int  # last part of the IP
    language: int
    screen: int

    @property
    def ip(self) -> str:
        return f"{NETWORKS[self.network][0]}{self.host}"


@dataclass(repr=False)
class Traffic:
    sites: list[Site]
    hits: list[dict[str, Any]]  # in the order they are sent (by time)
    now: int  # UTC ms when the traffic was made

    def __repr__(self) -> str:
        """One line per hit (a failing example prints its traffic this way)."""
        lines = [f"Traffic(now={iso(self.now)}, sites={self.sites!r}, hits=["]
        for h in self.hits:
            what = h["event_name"] if h["kind"] == "event" else h["dims"]["referrer_name"]
            lines.append(f"  {h['request']['time']} {h['site']} {h['kind']} {h['ip']} "
                         f"{h['dims']['browser']} {h['path'] or '-'} {what!r} tags={h['tags']}")  # fmt: skip
        return "\n".join([*lines, "])"])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis prints drawn values with its pretty printer


def iso(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def title_of(path: str) -> str:
    return PAGES.get(path, f"Page {path}")


def make_hit(
    kind: str,
    time_ms: int,
    site: Site,
    visitor: Visitor,
    path: str,
    *,
    source: Source = DIRECT,
    follow_up: bool = False,
    tags: dict[str, str] | None = None,
    event_name: str = "",
    event_meta: dict[str, str] | None = None,
    event_duration: int = 0,
    non_interactive: bool = False,
    with_url: bool = True,
) -> dict[str, Any]:
    """One hit for the model (derived values) with the request body that produces it.

    A follow-up hit of a visit sends the previous page of the site as its Referer, which the
    server drops as a self-referral (§4 "a referrer whose www-stripped host equals the site's
    hostname is dropped"), so it carries no campaign values.
    """
    ua = USER_AGENTS[visitor.ua]
    _, country, region, city = NETWORKS[visitor.network]
    accept_language, language = LANGUAGES[visitor.language]
    width, screen_class = SCREENS[visitor.screen]
    url = f"https://{site.hostname}{path}" + (f"?{source.query}" if source.query else "")
    referrer_header = f"https://{site.hostname}/" if follow_up else source.referrer_header
    has_url = kind != "keep_alive" or with_url
    body: dict[str, Any] = {"ip": visitor.ip, "user_agent": ua[0], "time": iso(time_ms)}
    if has_url:
        body.update(url=url, title=title_of(path), referrer=referrer_header)
        body.update(accept_language=accept_language, screen_width=width)
    if tags:
        body["tags"] = dict(tags)
    if kind == "event":
        body.update(event_name=event_name, event_meta=dict(event_meta or {}),
                    event_duration=event_duration, non_interactive=non_interactive)  # fmt: skip
    dims = {
        "hostname": site.hostname, "language": language, "country_code": country,
        "region": region, "city": city, "os": ua[3], "os_version": ua[4], "browser": ua[1],
        "browser_version": ua[2], "desktop": ua[5], "mobile": ua[6],
        "screen_class": screen_class, "screen_width": width,
    }  # fmt: skip
    campaign = DIRECT if follow_up or not has_url else source
    dims.update({f: getattr(campaign, f) for f in (
        "referrer", "referrer_name", "utm_source", "utm_medium", "utm_campaign", "utm_content",
        "utm_term", "channel")})  # fmt: skip
    return {
        "kind": kind,
        "time": time_ms,
        "site": site.key,
        "user_agent": ua[0],
        "ip": visitor.ip,
        "path": path if has_url else "",
        "title": title_of(path) if has_url else "",
        "dims": dims,
        "tags": dict(tags or {}),
        "event_name": event_name,
        "event_meta": dict(event_meta or {}),
        "event_duration": event_duration,
        "non_interactive": non_interactive,
        "request": body,
    }


# -- strategies ---------------------------------------------------------------------------------


def sometimes(draw: st.DrawFn, one_in: int) -> bool:
    """True once in `one_in` draws; shrinks to False, so a shrunk example keeps only the
    unusual parts it needs."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


visitors = st.builds(
    Visitor,
    ua=st.integers(0, len(USER_AGENTS) - 1),
    network=st.integers(0, len(NETWORKS) - 1),
    host=st.integers(1, 250),
    language=st.integers(0, len(LANGUAGES) - 1),
    screen=st.integers(0, len(SCREENS) - 1),
)
page_tags = st.dictionaries(st.sampled_from(sorted(TAGS)), st.just(""), max_size=2).flatmap(
    lambda d: st.fixed_dictionaries({k: st.sampled_from(TAGS[k]) for k in d})
)
event_metas = st.dictionaries(st.sampled_from(sorted(META)), st.just(""), max_size=2).flatmap(
    lambda d: st.fixed_dictionaries({k: st.sampled_from(META[k]) for k in d})
)
# Seconds between two actions of a visit: mostly short, sometimes past the 30-minute timeout.
gaps = st.one_of(st.integers(1, 120), st.integers(121, 1500), st.integers(1700, 2100))


@st.composite
def visit(draw: st.DrawFn, site: Site, visitor: Visitor, start_ms: int) -> list[dict[str, Any]]:
    """One visit: a first page view (sometimes an event) with its source, then actions."""
    source = draw(st.sampled_from(SOURCES))
    path = draw(st.sampled_from(PATHS))
    tags = draw(page_tags)
    t = start_ms
    first = "event" if sometimes(draw, 10) else "page_view"
    hits = [make_hit(first, t, site, visitor, path, source=source, tags=tags,
                     **(draw(event_fields()) if first == "event" else {}))]  # fmt: skip
    for _ in range(draw(st.integers(0, 6))):
        t += draw(gaps) * 1000
        action = draw(st.sampled_from(["page_view"] * 6 + ["event"] * 3 + ["keep_alive"] * 2))
        if action == "page_view":
            path = draw(st.sampled_from(PATHS + [path] * 2))  # reloads happen
            tags = draw(page_tags)
            # Now and then the visitor comes back through a campaign: a new session (§2).
            again = sometimes(draw, 10)
            hits.append(make_hit("page_view", t, site, visitor, path, tags=tags,
                                 source=draw(st.sampled_from(SOURCES)) if again else DIRECT,
                                 follow_up=not again))  # fmt: skip
        elif action == "event":
            carry = tags if draw(st.booleans()) else {}
            hits.append(make_hit("event", t, site, visitor, path, follow_up=True, tags=carry,
                                 **draw(event_fields())))  # fmt: skip
        else:
            hits.append(make_hit("keep_alive", t, site, visitor, path, follow_up=True,
                                 with_url=draw(st.booleans())))  # fmt: skip
    return hits


@st.composite
def event_fields(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "event_name": draw(st.sampled_from(EVENT_NAMES)),
        "event_meta": draw(event_metas),
        "event_duration": draw(st.sampled_from([0, 0, 1, 5, 30, 61, 300])),
        "non_interactive": sometimes(draw, 6),
    }


def utc_midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


@st.composite
def traffic(draw: st.DrawFn, now: int | None = None, days: int = 7) -> Traffic:
    """Traffic of one or two sites over the last `days` UTC days before `now`, plus sometimes
    a visit of the last minutes. Historical hits stay 3 hours clear of `now`, so that the
    active-visitor window (at most an hour, §5) sees only the recent visit."""
    now = now if now is not None else int(datetime.now(UTC).timestamp() * 1000)
    today = datetime.fromtimestamp(now / 1000, UTC).date()
    latest = now - 3 * 3600 * 1000
    sites = [
        Site(f"site{i}", f"site{i}.oracle.test", draw(st.sampled_from(TIMEZONES)))
        for i in range(draw(st.integers(1, 2)))
    ]
    hits: list[dict[str, Any]] = []
    for site in sites:
        people = draw(st.lists(visitors, min_size=1, max_size=5,
                               unique_by=lambda v: (v.ua, v.network, v.host)))  # fmt: skip
        for person in people:
            for _ in range(draw(st.integers(1, 3))):
                day = today - timedelta(days=draw(st.integers(1, days)))
                # Some visits start just before midnight (UTC): the midnight rule (§2).
                late = sometimes(draw, 6)
                second = draw(st.integers(84_600, 86_399) if late else st.integers(0, 86_399))
                start = min(utc_midnight(day) + second * 1000, latest)
                hits += [h for h in draw(visit(site, person, start)) if h["time"] <= latest]
        if sometimes(draw, 4):
            person = draw(visitors)
            hits += draw(visit(site, person, now - draw(st.integers(60, 240)) * 1000))
    return Traffic(sites, unique_times(hits, now), now)


def unique_times(hits: list[dict[str, Any]], now: int) -> list[dict[str, Any]]:
    """Sort by time and give every hit its own second: rows then have an order that does not
    depend on how the server breaks ties, and times print the same at second resolution. Hits
    that would land in the future are dropped (the ingest window allows 300 s; none needed)."""
    out: list[dict[str, Any]] = []
    for hit in sorted(hits, key=lambda h: h["time"]):
        t = hit["time"] - hit["time"] % 1000
        if out and t <= out[-1]["time"]:
            t = out[-1]["time"] + 1000
        if t > now:
            continue
        hit = {**hit, "time": t, "request": {**hit["request"], "time": iso(t)}}
        out.append(hit)
    return out


# -- filters ------------------------------------------------------------------------------------

# Values a filter may name, per query parameter: the values the traffic can have, a few
# spellings that differ in case, and values no row has.
FIELD_VALUES: dict[str, list[str]] = {
    "path": [*PATHS, "/nope"],
    "entry_path": [*PATHS],
    "exit_path": [*PATHS],
    "language": ["en", "de", "fr", "pt", "null", "EN"],
    "country": ["gb", "se", "au", "de", "null", "GB"],
    "region": ["England", "Östergötland", "Berlin", "null"],
    "city": ["London", "Linköping", "Berlin", "null"],
    "referrer": sorted({s.referrer for s in SOURCES if s.referrer}) + ["null"],
    "referrer_name": sorted({s.referrer_name for s in SOURCES if s.referrer_name}) + ["null"],
    "os": ["Windows", "Mac", "Linux", "iOS", "Android", "Chrome OS"],
    "os_version": ["10", "10.15", "14", "18.1", "null"],
    "browser": ["Chrome", "Firefox", "Safari", "Edge", "Samsung Internet", "chrome"],
    "browser_version": ["131.0", "133.0", "18.1", "26.0"],
    "screen_class": [c for _, c in SCREENS if c] + ["null"],
    "utm_source": ["newsletter", "google", "facebook", "null"],
    "utm_medium": ["email", "cpc", "social", "(gclid)", "paid bar", "null"],
    "utm_campaign": ["winter", "brand", "launch", "null"],
    "utm_content": ["ad1", "null"],
    "utm_term": ["analytics", "null"],
    "channel": sorted({s.channel for s in SOURCES}),
    "hostname": ["{site}", "elsewhere.test"],  # {site}: the site's own hostname
    "event": [*EVENT_NAMES, "nope"],
}
PATTERNS = ["^/blog", "post$", "^/(docs|about)", "o", "^/$", "[A-Z]", "^/docs/"]
SORTS = ["visitors", "views", "sessions", "bounces", "relative_visitors", "bounce_rate", "path",
         "title", "count", "name", "entries", "exits", "cr", "key", "value", "os", "browser",
         "country_code", "referrer_name", "average_time_spent_seconds", "meta_value"]  # fmt: skip
SEARCHES = ["o", "blog", "GO", "e", "news", "zzz"]


@st.composite
def condition_value(draw: st.DrawFn, values: list[str]) -> str:
    """One value with an operator (§5 Filters): plain, `!` not, `~` contains, `^` does not
    contain; for contains a piece of a value, in some other case."""
    value = draw(st.sampled_from(values))
    op = draw(st.sampled_from(["", "", "!", "~", "^"]))
    if op in ("~", "^") and value != "null":
        cut = draw(st.integers(0, max(len(value) - 1, 0)))
        piece = value[cut : cut + draw(st.integers(1, 4))]
        value = piece.upper() if draw(st.booleans()) else piece
    return op + value


@st.composite
def list_condition(draw: st.DrawFn, values: list[str]) -> str:
    """language/country: `~a,b` in a list, `^a,b` not in it (§5)."""
    chosen = draw(st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True))
    return draw(st.sampled_from(["~", "^"])) + ",".join(chosen)


@st.composite
def date_range(draw: st.DrawFn, now: int, tz: str) -> dict[str, list[str]]:
    """from/to in the site's (or the filter's) time zone: the whole week, one day (sometimes
    with from_time/to_time), or a few days."""
    from zoneinfo import ZoneInfo

    today = datetime.fromtimestamp(now / 1000, UTC).astimezone(ZoneInfo(tz)).date()
    kind = draw(st.sampled_from(["week", "day", "day", "range"]))
    if kind == "week":
        first, last = today - timedelta(days=8), today
    elif kind == "day":
        first = last = today - timedelta(days=draw(st.integers(0, 8)))
    else:
        first = today - timedelta(days=draw(st.integers(1, 8)))
        last = first + timedelta(days=draw(st.integers(1, (today - first).days)))
    out = {"from": [first.isoformat()], "to": [last.isoformat()]}
    if kind == "day" and sometimes(draw, 3):
        a, b = sorted(draw(st.lists(st.integers(0, 24 * 60 - 1), min_size=2, max_size=2)))
        out["from_time"] = [f"{a // 60:02d}:{a % 60:02d}"]
        out["to_time"] = [f"{b // 60:02d}:{b % 60:02d}"]
    return out


@st.composite
def filter_params(draw: st.DrawFn, traffic: Traffic, site: Site) -> dict[str, list[str]]:
    """A statistics query for one site: dates, and any mix of the filter language."""
    p: dict[str, list[str]] = {}
    tz = site.timezone
    if sometimes(draw, 4):
        tz = draw(st.sampled_from(TIMEZONES))
        p["tz"] = [tz]
    p.update(draw(date_range(traffic.now, tz)))
    if sometimes(draw, 4):
        p["scale"] = [draw(st.sampled_from(["day", "week", "month", "year"]))]
    for name in draw(st.lists(st.sampled_from(sorted(FIELD_VALUES)), max_size=2, unique=True)):
        values = [v.replace("{site}", site.hostname) for v in FIELD_VALUES[name]]
        if name in ("language", "country") and draw(st.booleans()):
            p[name] = [draw(list_condition([v for v in values if v != "null"]))]
        else:
            p[name] = draw(st.lists(condition_value(values), min_size=1, max_size=2))
    if sometimes(draw, 8):
        p["pattern"] = [draw(st.sampled_from(PATTERNS))]
    if sometimes(draw, 8):
        p["platform"] = [draw(st.sampled_from(["desktop", "mobile", "unknown", "!desktop",
                                                "!mobile", "!unknown"]))]  # fmt: skip
    if sometimes(draw, 8):
        p["tag"] = [draw(st.sampled_from(sorted(TAGS)))]
    if sometimes(draw, 6):
        k = draw(st.sampled_from(sorted(TAGS)))
        p[f"tag_{k}"] = [draw(condition_value([*TAGS[k], "null"]))]
    if sometimes(draw, 7):
        k = draw(st.sampled_from(sorted(META)))
        p[f"meta_{k}"] = [draw(condition_value([*META[k], "null"]))]
    if sometimes(draw, 8):
        p["event"] = p.get("event") or [draw(st.sampled_from(EVENT_NAMES))]
        p["custom_metric_key"] = ["amount"]
        p["custom_metric_type"] = [draw(st.sampled_from(["integer", "float"]))]
    if sometimes(draw, 5):
        p["sort"] = [draw(st.sampled_from(SORTS))]
        p["direction"] = [draw(st.sampled_from(["asc", "desc"]))]
    if sometimes(draw, 6):
        p["limit"] = [str(draw(st.integers(1, 4)))]
        p["offset"] = [str(draw(st.integers(0, 3)))]
    if sometimes(draw, 7):
        p["search"] = [draw(st.sampled_from(SEARCHES))]
    if sometimes(draw, 3):
        p["include_avg_time_on_page"] = ["true"]
    if sometimes(draw, 4):
        p["start"] = [str(draw(st.sampled_from([600, 1800, 3600])))]
    return p

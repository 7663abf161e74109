"""Realistic traffic for the benchmarks: the lists, and hit payloads built from them.

The lists are curated by us: user-agent strings as current browsers send them (their format is
public fact), referrer hosts, paths and languages. run.py writes them as a Lua table (`lua_lists`)
for the wrk scripts; the locust scenario and the batch client use them from here.

    python bench/traffic.py lua > lists.lua     # what run.py feeds wrk via BENCH_LISTS
"""

from __future__ import annotations

import random
import sys
from datetime import UTC, datetime, timedelta

HOSTNAME = "bench.example.com"

# 40 user agents of browsers in use (Chrome, Firefox, Safari, Edge, Opera, Samsung Internet) on
# Windows, macOS, Linux, Android and iOS; all above the bot filter's version floor.
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.102 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.6668.100 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; moto g(60)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/127.0.6533.103 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_7_10 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/132.0 Mobile/15E148 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36 OPR/114.0.0.0",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Vivaldi/7.0.3495.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 YaBrowser/24.4.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; 2201116SG) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.6613.127 Mobile Safari/537.36",
]

# ~20 referrers; the empty ones are direct visits (the most common referrer of all).
REFERRERS = [
    "",
    "",
    "",
    "",
    "",
    "https://www.google.com/",
    "https://www.google.de/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://search.brave.com/",
    "https://www.ecosia.org/",
    "https://news.ycombinator.com/",
    "https://www.reddit.com/r/selfhosted/",
    "https://t.co/",
    "https://www.facebook.com/",
    "https://www.linkedin.com/",
    "https://github.com/",
    "https://www.youtube.com/",
    "https://mastodon.social/",
    "https://lobste.rs/",
    "https://chatgpt.com/",
    "https://blog.example.org/2024/analytics-roundup",
]

LANGUAGES = [
    "en-US,en;q=0.9",
    "de-DE,de;q=0.9,en;q=0.8",
    "fr-FR,fr;q=0.9",
    "en-GB,en;q=0.9",
    "es-ES,es;q=0.9",
    "ja-JP,ja;q=0.9",
    "pt-BR,pt;q=0.9",
    "nl-NL,nl;q=0.9,en;q=0.8",
]
SCREEN_WIDTHS = [390, 393, 412, 414, 768, 820, 1280, 1366, 1440, 1536, 1920, 2560]
EVENTS = ["signup", "download", "play", "add_to_cart", "newsletter"]


def _paths() -> list[str]:
    """~200 paths of a content site; run.py and Lua pick them Zipf-ish by rank."""
    top = [
        "/",
        "/pricing",
        "/blog",
        "/docs",
        "/about",
        "/contact",
        "/features",
        "/login",
        "/signup",
        "/docs/getting-started",
        "/docs/api",
        "/blog/announcing-v2",
        "/changelog",
    ]
    blog = [f"/blog/post-{i}" for i in range(1, 121)]
    docs = [f"/docs/section-{i}/page-{j}" for i in range(1, 9) for j in range(1, 9)]
    return top + blog + docs


PATHS = _paths()
# Zipf weights (s = 1): the front page gets ~15 %, the long tail a visit now and then.
ZIPF = [1.0 / (rank + 1) for rank in range(len(PATHS))]
UTM = [
    "",
    "",
    "",
    "",
    "",
    "",
    "?utm_source=newsletter&utm_medium=email&utm_campaign=nov",
    "?utm_source=twitter&utm_medium=social",
    "?gclid=abc123",
]

# First octets of public unicast space (skips 0, 10, 100 (CGN), 127, 169, 172, 192, 198, 224+).
_PUBLIC_FIRST = [o for o in range(1, 224) if o not in (0, 10, 100, 127, 169, 172, 192, 198)]


def random_ip(rng: random.Random) -> str:
    return f"{rng.choice(_PUBLIC_FIRST)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def visitor(rng: random.Random) -> dict:
    """A visitor keeps IP, UA, language, screen and referrer across its page views."""
    return {
        "ip": random_ip(rng),
        "user_agent": rng.choice(USER_AGENTS),
        "accept_language": rng.choice(LANGUAGES),
        "referrer": rng.choice(REFERRERS),
        "utm": rng.choice(UTM),
        "screen_width": rng.choice(SCREEN_WIDTHS),
    }


def hit(rng: random.Random, who: dict, when: datetime | None = None, event: bool = False) -> dict:
    """One realistic Pirsch hit (or event) item of visitor `who` on a Zipf-chosen path."""
    path = rng.choices(PATHS, ZIPF)[0]
    item = {
        "url": f"https://{HOSTNAME}{path}{who['utm']}",
        "ip": who["ip"],
        "user_agent": who["user_agent"],
        "accept_language": who["accept_language"],
        "referrer": who["referrer"],
        "title": path.strip("/").replace("/", " - ") or "Home",
        "screen_width": who["screen_width"],
        "screen_height": 900,
    }
    if when is not None:
        item["time"] = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    if event:
        item["event_name"] = rng.choice(EVENTS)
        item["event_duration"] = rng.randrange(0, 30)
        item["event_meta"] = {"plan": rng.choice(["free", "pro", "team"])}
    return item


def batch(
    rng: random.Random, pool: list[dict], size: int, now: datetime, spread_s: int = 3600
) -> list[dict]:
    """`size` hits of visitors from `pool`, times spread over the `spread_s` seconds before `now`."""
    return [
        hit(rng, rng.choice(pool), now - timedelta(seconds=rng.uniform(0, spread_s)))
        for _ in range(size)
    ]


def _lua_str(s: str) -> str:
    if '"' in s or "\\" in s or "\n" in s:
        raise ValueError(f"unsafe for the Lua/JSON templates: {s!r}")
    return f'"{s}"'


def lua_lists() -> str:
    """The lists as Lua globals, for bench/hit.lua and bench/batch.lua."""

    def table(name: str, items: list) -> str:
        body = ",\n  ".join(_lua_str(i) if isinstance(i, str) else repr(i) for i in items)
        return f"{name} = {{\n  {body}\n}}\n"

    return "".join(
        [
            f'HOSTNAME = "{HOSTNAME}"\n',
            table("USER_AGENTS", USER_AGENTS),
            table("REFERRERS", REFERRERS),
            table("LANGUAGES", LANGUAGES),
            table("SCREEN_WIDTHS", SCREEN_WIDTHS),
            table("PATHS", PATHS),
            table("UTM", UTM),
            table("PUBLIC_FIRST", _PUBLIC_FIRST),
        ]
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["lua"]:
        sys.stdout.write(lua_lists())
    else:
        rng = random.Random(1)
        print(hit(rng, visitor(rng), datetime.now(UTC)))

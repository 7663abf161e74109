"""Synthetic analytics data for the statistics benchmark, written straight into segment files.

    .venv/bin/python -m bench.stats_gen --out /tmp/trail-bench --page-views 1000000 --days 30
    # 100M: each day compacted once the next is written (uncompressed, the whole set would
    # take ~2 GB a day of disk until its compaction)
    .venv/bin/python -m bench.stats_gen --out /tmp/b100m --page-views 100000000 --compact

Writes `<out>/segments/{sessions,page_views,events}/site=<site>/day=<YYYY-MM-DD>/*.arrow` with
the real schema (trail.storage.schema), shaped the way the Rust session state machine writes them:
one +1 session row per state and a -1 copy of every state a later hit replaced, page views with
the gap to the previous hit, events whose state moves by 1 ms. Each day is split into 24 segment
files per table (one per hour of sealing), named like the WAL sealer's `w<worker>-g<gen>-<n>`.

Shape: sessions start on a day/night curve; pages per session geometric (mean ~2.5); paths and
titles Zipf over 2,000 pages; visitors return within a day (~1.2 sessions each); referrers,
countries (with regions/cities), browsers, OSes, screens and languages from weighted lists;
5% of sessions carry UTM tags; 12% fire an event with metadata; 10% of page views carry a tag.
Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from trail.storage.schema import EVENTS, PAGE_VIEWS, SESSIONS

SITE = "bench-site"
FIRST_DAY = date(2024, 3, 1)
FILES_PER_DAY = 24

COUNTRIES = [  # code, weight, [(region, city)]
    ("us", 30, [("California", "San Francisco"), ("New York", "New York"), ("Texas", "Austin")]),
    ("de", 14, [("Berlin", "Berlin"), ("Bavaria", "Munich"), ("Hamburg", "Hamburg")]),
    ("gb", 9, [("England", "London"), ("Scotland", "Edinburgh")]),
    ("fr", 7, [("Île-de-France", "Paris"), ("Auvergne-Rhône-Alpes", "Lyon")]),
    ("in", 7, [("Maharashtra", "Mumbai"), ("Karnataka", "Bengaluru")]),
    ("ca", 4, [("Ontario", "Toronto"), ("Quebec", "Montreal")]),
    ("nl", 4, [("North Holland", "Amsterdam")]),
    ("br", 4, [("São Paulo", "São Paulo")]),
    ("jp", 3, [("Tokyo", "Tokyo")]),
    ("es", 3, [("Madrid", "Madrid"), ("Catalonia", "Barcelona")]),
    ("pl", 2, [("Masovia", "Warsaw")]),
    ("se", 2, [("Stockholm", "Stockholm")]),
    ("au", 2, [("New South Wales", "Sydney")]),
    ("ch", 2, [("Zurich", "Zurich")]),
    ("it", 2, [("Lazio", "Rome")]),
    ("", 5, [("", "")]),
]
LANGUAGES = [("en", 50), ("de", 15), ("fr", 8), ("es", 6), ("ja", 3), ("pt", 4), ("", 14)]
REFERRERS = [  # referrer, referrer_name, channel, weight
    ("", "", "Direct", 45),
    ("https://www.google.com", "Google", "Organic Search", 25),
    ("https://www.bing.com", "Bing", "Organic Search", 3),
    ("https://duckduckgo.com", "DuckDuckGo", "Organic Search", 3),
    ("https://news.ycombinator.com", "Hacker News", "Organic Social", 4),
    ("https://www.reddit.com", "Reddit", "Organic Social", 4),
    ("https://t.co", "Twitter", "Organic Social", 3),
    ("https://github.com", "GitHub", "Referral", 5),
    ("https://chatgpt.com", "ChatGPT", "AI", 2),
    ("https://blog.example.org/post", "blog.example.org", "Referral", 4),
    ("", "Newsletter", "Email", 2),
]
UAS = [  # os, os_version, browser, browser_version, desktop, mobile, screen, weight
    ("Windows", "10", "Chrome", "120.0", True, False, "Full HD", 30),
    ("Windows", "10", "Edge", "120.0", True, False, "Full HD", 8),
    ("Windows", "10", "Firefox", "121.0", True, False, "HD", 5),
    ("Mac", "10.15", "Safari", "17.1", True, False, "WQHD", 8),
    ("Mac", "10.15", "Chrome", "120.0", True, False, "WQHD", 7),
    ("Linux", "", "Firefox", "121.0", True, False, "Full HD", 4),
    ("iOS", "17.1", "Safari", "17.1", False, True, "S", 18),
    ("Android", "14", "Chrome", "120.0", False, True, "S", 16),
    ("Android", "13", "Samsung Internet", "23.0", False, True, "M", 3),
    ("Chrome OS", "", "Chrome", "120.0", False, False, "HD", 1),
]
EVENT_NAMES = [
    ("signup", 30),
    ("download", 25),
    ("play video", 20),
    ("newsletter", 15),
    ("buy", 10),
]
SCREEN_WIDTHS = {"S": 390, "M": 768, "HD": 1366, "Full HD": 1920, "WQHD": 2560}
CAMPAIGNS = ["spring_sale", "launch", "newsletter_42", "retargeting"]


def _weights(items: list, index: int) -> np.ndarray:
    w = np.array([x[index] for x in items], dtype=np.float64)
    return w / w.sum()


def _paths(n: int) -> list[str]:
    top = ["/", "/pricing", "/docs", "/blog", "/about", "/signup", "/login", "/features"]
    rest = [f"/blog/post-{i}" if i % 3 else f"/docs/page-{i}" for i in range(n - len(top))]
    return top + rest


class Generator:
    def __init__(self, page_views: int, days: int, seed: int = 42, paths: int = 2000) -> None:
        self.rng = np.random.default_rng(seed)
        self.days = days
        self.pv_per_day = page_views // days
        self.paths = _paths(paths)
        zipf = 1.0 / np.arange(1, paths + 1) ** 1.1
        self.path_p = zipf / zipf.sum()
        self.geo = [(c, region, city) for c, _, places in COUNTRIES for region, city in places]
        geo_w = [w / len(places) for _, w, places in COUNTRIES for _ in places]
        self.geo_p = np.array(geo_w) / sum(geo_w)
        # Sessions start on a day/night curve (UTC), smoothly over the minutes of the day.
        minutes = np.arange(1440)
        curve = 0.35 + np.sin(np.pi * ((minutes / 60 - 4) % 24) / 24) ** 2
        self.minute_p = curve / curve.sum()

    def day(self, index: int) -> dict[str, pl.DataFrame]:
        rng = self.rng
        day_start = int(
            datetime.combine(
                FIRST_DAY + timedelta(days=index), datetime.min.time(), UTC
            ).timestamp()
            * 1000
        )
        n_sess = int(self.pv_per_day / 2.5)
        npv = np.minimum(rng.geometric(0.4, n_sess), 60)
        has_event = rng.random(n_sess) < 0.12
        n_visitors = max(int(n_sess / 1.2), 1)
        # Full 64-bit ids, like the SipHash output the ingestion path stores.
        visitor_pool = rng.integers(1, 2**64, n_visitors, dtype=np.uint64)
        vidx = rng.integers(0, n_visitors, n_sess)
        start = (
            day_start
            + rng.choice(1440, n_sess, p=self.minute_p) * 60_000
            + rng.integers(0, 60_000, n_sess)
        )
        # Session-level dimensions: a visitor keeps geo/UA/language across its sessions of the day.
        geo_i = rng.choice(len(self.geo), n_visitors, p=self.geo_p)[vidx]
        ua_i = rng.choice(len(UAS), n_visitors, p=_weights(UAS, 7))[vidx]
        lang_i = rng.choice(len(LANGUAGES), n_visitors, p=_weights(LANGUAGES, 1))[vidx]
        ref_i = rng.choice(len(REFERRERS), n_sess, p=_weights(REFERRERS, 3))
        utm = rng.random(n_sess) < 0.05
        camp_i = rng.integers(0, len(CAMPAIGNS), n_sess)
        sess = pl.DataFrame(
            {
                "visitor_id": visitor_pool[vidx],
                "session_id": rng.integers(1, 2**32, n_sess, dtype=np.int64).astype(np.uint32),
                "start_ms": start.astype(np.int64),
                "npv": npv.astype(np.int64),
                "nev": has_event.astype(np.int64),
                "event_at": (rng.integers(0, 1 << 30, n_sess) % npv).astype(np.int64),
                "event_i": rng.choice(len(EVENT_NAMES), n_sess, p=_weights(EVENT_NAMES, 1)),
                "geo_i": geo_i,
                "ua_i": ua_i,
                "lang_i": lang_i,
                "ref_i": ref_i,
                "utm": utm,
                "camp_i": camp_i,
            }
        )
        return self._rows(sess, rng)

    def _rows(self, sess: pl.DataFrame, rng: np.random.Generator) -> dict[str, pl.DataFrame]:
        # One row per hit: page views 0..npv-1, the event (if any) right after page view event_at.
        hits = sess.select(
            "visitor_id",
            "session_id",
            "start_ms",
            "npv",
            "event_at",
            "nev",
            k=pl.int_ranges(0, pl.col("npv") + pl.col("nev")),
        ).explode("k")
        n = hits.height
        gaps = np.minimum(rng.exponential(50_000, n), 1_500_000).astype(np.int64)
        path_i = rng.choice(len(self.paths), n, p=self.path_p)
        hits = hits.with_columns(
            is_event=(pl.col("nev") == 1) & (pl.col("k") == pl.col("event_at") + 1),
            gap=pl.Series(gaps),
            path_i=pl.Series(path_i),
        )
        # Page view ordinal before the event shift: hits after the event are page views k-1.
        first = pl.col("k") == 0
        hits = hits.with_columns(
            gap=pl.when(first).then(0).when(pl.col("is_event")).then(1).otherwise(pl.col("gap"))
        )
        key = ["visitor_id", "session_id"]
        hits = hits.with_columns(
            time=pl.col("start_ms") + pl.col("gap").cum_sum().over(key),
            views=(~pl.col("is_event")).cast(pl.Int64).cum_sum().over(key),
            events=pl.col("is_event").cast(pl.Int64).cum_sum().over(key),
            pv_path=pl.when(pl.col("is_event")).then(None).otherwise(pl.col("path_i")),
        )
        hits = hits.with_columns(
            exit_i=pl.col("pv_path").forward_fill().over(key),
            entry_i=pl.col("pv_path").first().over(key),
            last=pl.col("k") == pl.col("k").max().over(key),
        )
        paths = pl.Series(self.paths)
        titles = pl.Series(
            [f"{p.strip('/').replace('-', ' ').title() or 'Home'} | Example" for p in self.paths]
        )
        dims = self._dims(sess)
        states = hits.with_columns(
            version=(pl.col("k") + 1).cast(pl.UInt32),
            duration_seconds=((pl.col("time") - pl.col("start_ms")) // 1000).cast(pl.UInt32),
            is_bounce=(pl.col("views") == 1) & (pl.col("events") == 0),
            page_views=pl.col("views").cast(pl.UInt32),
            extended=pl.lit(0, pl.UInt32),
            entry_path=pl.lit(paths).gather(pl.col("entry_i")),
            exit_path=pl.lit(paths).gather(pl.col("exit_i")),
            entry_title=pl.lit(titles).gather(pl.col("entry_i")),
            exit_title=pl.lit(titles).gather(pl.col("exit_i")),
            start=pl.col("start_ms"),
        ).join(dims, on=key)
        # A state's cancel row (-1) is written when the next hit arrives: at the next hit's time.
        plus = states.with_columns(sign=pl.lit(1, pl.Int8), sealed=pl.col("time"))
        minus = states.with_columns(
            sign=pl.lit(-1, pl.Int8),
            sealed=pl.col("time") + pl.col("gap").shift(-1).over(key),
        ).filter(~pl.col("last"))
        sessions = pl.concat([plus, minus]).sort("sealed")
        pv = hits.filter(~pl.col("is_event")).with_columns(
            duration_seconds=(
                (pl.col("time") - pl.col("time").shift(1).over(key)).fill_null(0) // 1000
            ).cast(pl.UInt32),
        )
        pv = (
            pv.with_columns(
                path=pl.lit(paths).gather(pl.col("path_i")),
                title=pl.lit(titles).gather(pl.col("path_i")),
                tagged=pl.Series(rng.random(pv.height) < 0.1),
            )
            .with_columns(
                tag_keys=pl.when(pl.col("tagged"))
                .then(pl.lit(["author"]))
                .otherwise(pl.lit([], pl.List(pl.String))),
                tag_values=pl.when(pl.col("tagged"))
                .then(pl.lit(["alice"]))
                .otherwise(pl.lit([], pl.List(pl.String))),
                sealed=pl.col("time"),
            )
            .join(dims, on=key)
        )
        ev = hits.filter(pl.col("is_event")).join(sess.select(*key, "event_i"), on=key)
        names = pl.Series([e[0] for e in EVENT_NAMES])
        ev = ev.with_columns(
            duration_seconds=pl.lit(0, pl.UInt32),
            path=pl.lit(paths).gather(pl.col("exit_i")),
            title=pl.lit(titles).gather(pl.col("exit_i")),
            event_name=pl.lit(names).gather(pl.col("event_i")),
            event_meta_keys=pl.lit(["plan", "amount"]),
            event_meta_values=pl.concat_list(
                pl.when(pl.col("event_i") % 2 == 0).then(pl.lit("pro")).otherwise(pl.lit("free")),
                ((pl.col("session_id") % 90) + 10).cast(pl.String),
            ),
            sealed=pl.col("time"),
        ).join(dims, on=key)
        return {
            "sessions": _shape(sessions, SESSIONS),
            "page_views": _shape(pv, PAGE_VIEWS),
            "events": _shape(ev, EVENTS),
        }

    def _dims(self, sess: pl.DataFrame) -> pl.DataFrame:
        geo = pl.DataFrame(self.geo, schema=["country_code", "region", "city"], orient="row")
        ua = pl.DataFrame(
            [u[:7] for u in UAS],
            orient="row",
            schema=[
                "os",
                "os_version",
                "browser",
                "browser_version",
                "desktop",
                "mobile",
                "screen_class",
            ],
        )
        ref = pl.DataFrame(
            [r[:3] for r in REFERRERS],
            schema=["referrer", "referrer_name", "channel"],
            orient="row",
        )
        lang = pl.Series([x[0] for x in LANGUAGES])
        idx = pl.UInt32
        out = (
            sess.select(
                "visitor_id", "session_id", "geo_i", "ua_i", "ref_i", "lang_i", "utm", "camp_i"
            )
            .with_columns(
                pl.col(c).cast(idx) for c in ("geo_i", "ua_i", "ref_i", "lang_i", "camp_i")
            )
            .join(geo.with_row_index("geo_i"), on="geo_i")
            .join(ua.with_row_index("ua_i"), on="ua_i")
            .join(ref.with_row_index("ref_i"), on="ref_i")
            .with_columns(
                language=pl.lit(lang).gather(pl.col("lang_i")),
                camp=pl.lit(pl.Series(CAMPAIGNS)).gather(pl.col("camp_i")),
            )
            .drop("geo_i", "ua_i", "ref_i", "lang_i", "camp_i")
        )
        return out.with_columns(
            hostname=pl.lit("example.com"),
            # A typical width for the screen class (the schema stores both since issue 5).
            screen_width=pl.col("screen_class").replace_strict(
                SCREEN_WIDTHS, default=0, return_dtype=pl.UInt32
            ),
            utm_source=pl.when("utm").then(pl.lit("newsletter")).otherwise(pl.lit("")),
            utm_medium=pl.when("utm").then(pl.lit("email")).otherwise(pl.lit("")),
            utm_campaign=pl.when("utm").then(pl.col("camp")).otherwise(pl.lit("")),
            utm_content=pl.lit(""),
            utm_term=pl.lit(""),
        ).drop("utm", "camp")


def _shape(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    cols = []
    for c, t in schema.items():
        if c in ("time", "start"):
            cols.append(pl.col(c).cast(pl.Int64).cast(t))
        else:
            cols.append(pl.col(c).cast(t))
    return df.select(*cols, pl.col("sealed"))


def write_day(out: Path, index: int, frames: dict[str, pl.DataFrame], site: str = SITE) -> None:
    """Write rows into their UTC day's directory, one segment per (sealing hour, day)."""
    span = 86_400_000 // FILES_PER_DAY
    for table, df in frames.items():
        keyed = df.with_columns(
            chunk=pl.col("sealed") // span,
            day=pl.col("time").dt.date(),
        )
        for (chunk, day), part in keyed.partition_by(["chunk", "day"], as_dict=True).items():
            d = out / "segments" / table / f"site={site}" / f"day={day.isoformat()}"
            d.mkdir(parents=True, exist_ok=True)
            gen = (int(chunk) + 1) * span * 1_000_000
            name = f"w{int(chunk) % 2}-g{gen}-{index}.arrow"
            part.drop("sealed", "chunk", "day").write_ipc(d / name, compression="uncompressed")


def generate(
    out: Path, page_views: int, days: int, seed: int = 42, compact: bool = False
) -> dict[str, int]:
    """Write `days` days of rows; with `compact`, compact each day (trail.tasks.compaction, as the
    maintenance round does) as soon as the next day is written, since a session that starts
    before midnight writes rows into the next day."""
    shutil.rmtree(out / "segments", ignore_errors=True)
    g = Generator(page_views, days, seed)
    counts = {"sessions": 0, "page_views": 0, "events": 0}
    t0 = time.perf_counter()
    for i in range(days + 2 if compact else days):  # + the day the last one runs into
        if i < days:
            frames = g.day(i)
            write_day(out, i, frames)
            for t, df in frames.items():
                counts[t] += df.height
        if compact and i > 0:
            _compact(out, FIRST_DAY + timedelta(days=i - 1))
        print(f"day {min(i + 1, days)}/{days}: {counts['page_views']:,} page views, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    return counts


def _compact(out: Path, day: date) -> None:
    from trail.tasks import compaction

    for _ in range(2):  # the second pass rolls the sessions up again over compacted page views
        done = compaction.compact_day(out, day, force=True, grace=0)
        if done.get("failed_dirs"):
            raise RuntimeError(f"compacting {day}: {done}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--page-views", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--compact", action="store_true", help="compact each day once written")
    a = ap.parse_args()
    t0 = time.perf_counter()
    counts = generate(a.out, a.page_views, a.days, a.seed, a.compact)
    print(f"generated {counts} in {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    main()

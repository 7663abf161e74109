"""A GoatCounter CSV export (format version 2, gzipped) of generated traffic, and the speed of
`trail import goatcounter` on it.

    .venv/bin/python bench/goatcounter_gen.py --rows 1000000 --out /tmp/gc-1m.csv.gz
    .venv/bin/python bench/goatcounter_gen.py --rows 1000000 --out /tmp/gc-1m.csv.gz --runs 3

The traffic: visits of 1-8 page views (a few seconds to minutes apart) over `--days` days,
paths drawn Zipf-like from 300, 30 referrers (URLs, generated names, campaigns) and direct,
12 browser/system pairs, 40 locations, an event on 5% of the visits and 2% bot rows. Seeded:
the same arguments write the same file. With `--runs N` each run imports the file into a new
data directory with a new site (`trail import goatcounter` as a subprocess, as a user runs
it); each run prints its wall time, CPU time (user + sys) and peak RSS (the child's own rusage),
then the median, min and max of rows/s (rows of the file / wall time) are printed.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = ["2Path", "Title", "Event", "UserAgent", "Browser", "System", "Session", "Bot",
          "Referrer", "Referrer scheme", "Screen size", "Location", "FirstVisit", "Date"]  # fmt: skip
CLIENTS = [
    ("Chrome 120", "Windows 10", 1920), ("Chrome 121", "macOS 14.2", 1440),
    ("Firefox 125", "Windows 11", 2560), ("Firefox 124", "Linux", 1920),
    ("Safari 17.4", "macOS 14.4", 1680), ("Safari 17.4", "iOS 17.4", 390),
    ("Chrome 124", "Android 14", 412), ("Samsung Internet 24", "Android 13", 360),
    ("Edge 122", "Windows 10", 1366), ("Opera 109", "Windows 10", 1280),
    ("Chrome 119", "Chrome OS 15633", 1366), ("Safari 16.6", "iOS 16.6", 820),
]  # fmt: skip
REFERRERS = (
    [(f"www.{h}/", "h") for h in ("google.com", "bing.com", "duckduckgo.com", "reddit.com",
                                  "github.com", "twitter.com", "linkedin.com", "youtube.com")]
    + [(f"blog{i}.example.org/post/{i}", "h") for i in range(12)]
    + [(n, "g") for n in ("Hacker News", "Email", "Lobsters", "Slack")]
    + [(n, "c") for n in ("newsletter", "spring-sale", "partner")]
    + [("com.google.android.gm", "o"), ("org.telegram.messenger", "o"), ("Other", "g")]
)  # fmt: skip
LOCATIONS = ["US-CA", "US-NY", "US-TX", "DE", "DE-BY", "GB", "GB-ENG", "FR", "NL", "SE", "PL",
             "ES", "IT", "CA-ON", "BR-SP", "IN-MH", "JP-13", "AU-NSW", "KR-11", "CH", "AT", "BE",
             "DK", "FI", "NO", "IE", "PT", "CZ", "RO", "HU", "GR", "TR", "MX", "AR", "CL", "ZA",
             "NG", "EG", "SG", "NZ"]  # fmt: skip
PATHS = ["/"] + [f"/{s}/{i}" for s in ("blog", "docs", "shop") for i in range(100)][:299]


def generate(rows: int, days: int, seed: int) -> bytes:
    rng = random.Random(seed)
    weights = [1 / (i + 1) for i in range(len(PATHS))]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(HEADER)
    written = 0
    visit = 0
    while written < rows:
        visit += 1
        session = f"{rng.getrandbits(60):015x}-{rng.getrandbits(64):016x}"
        browser, system, width = rng.choice(CLIENTS)
        ref, scheme = rng.choice(REFERRERS) if rng.random() < 0.6 else ("", "")
        location = rng.choice(LOCATIONS)
        bot = "0" if rng.random() >= 0.02 else str(rng.choice([3, 4, 6, 150]))
        when = start + timedelta(seconds=rng.randrange(days * 86_400))
        views = min(1 + int(rng.expovariate(0.6)), 8, rows - written)
        for i in range(views):
            path = rng.choices(PATHS, weights)[0]
            out.writerow([path, f"Page {path}", "false", "", browser, system, session, bot,
                          ref if i == 0 else "", scheme if i == 0 else "", f"{width},0,1",
                          location, "true" if i == 0 else "false",
                          when.strftime("%Y-%m-%dT%H:%M:%SZ")])  # fmt: skip
            when += timedelta(seconds=rng.randrange(5, 400))
        written += views
        if written < rows and rng.random() < 0.05:
            out.writerow(["signup", f"Page {path}", "true", "", browser, system, session, bot, "",
                          "", f"{width},0,1", location, "false",
                          when.strftime("%Y-%m-%dT%H:%M:%SZ")])  # fmt: skip
            written += 1
    return gzip.compress(buf.getvalue().encode(), compresslevel=6)


def import_once(export: Path, rows: int) -> float:
    """rows/s of one `trail import goatcounter` into a new data directory."""
    from trail.storage.meta import MetaStore
    from trail.storage.models import Site

    with tempfile.TemporaryDirectory(prefix="gc-bench-") as tmp:
        data = Path(tmp) / "data"
        meta = MetaStore.open(data / "meta")
        site = meta.create_site(Site(id="", hostname="bench.example", subdomain="bench"))
        meta.close()
        began = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "trail", "import", "goatcounter", "--data-dir", str(data),
             "--site", site.id, str(export)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
        )  # fmt: skip
        assert child.stdout is not None
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)  # this child's own CPU time and peak RSS
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - began
        if child.returncode:
            raise SystemExit(f"trail import goatcounter exited with {child.returncode}")
        cpu = usage.ru_utime + usage.ru_stime
        print(out.rstrip(), file=sys.stderr)
        print(f"run: {seconds:.1f} s wall, {rows / seconds:,.0f} rows/s; CPU {usage.ru_utime:.1f} + "
              f"{usage.ru_stime:.1f} s, {rows / cpu:,.0f} rows/s of CPU; "
              f"max RSS {usage.ru_maxrss / 1024:,.0f} MiB")  # fmt: skip
    return rows / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="the .csv.gz to write (or reuse)")
    p.add_argument("--runs", type=int, default=0, help="import it this many times")
    args = p.parse_args()
    if not args.out.exists():
        began = time.monotonic()
        args.out.write_bytes(generate(args.rows, args.days, args.seed))
        print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {args.rows:,} rows) "
              f"in {time.monotonic() - began:.1f} s")  # fmt: skip
    if args.runs:
        speeds = [import_once(args.out, args.rows) for _ in range(args.runs)]
        print(f"import: median {statistics.median(speeds):,.0f} rows/s "
              f"(min {min(speeds):,.0f}, max {max(speeds):,.0f}; {args.runs} runs)")  # fmt: skip


if __name__ == "__main__":
    main()

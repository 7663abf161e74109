"""A Plausible CE CSV export (zip) of generated daily aggregates, and the speed of
`trail import plausible` on it.

    .venv/bin/python bench/plausible_gen.py --days 1096 --out /tmp/plausible-3y.zip
    .venv/bin/python bench/plausible_gen.py --days 1096 --out /tmp/plausible-3y.zip --runs 3

Per day: one visitors row, `--sources` sources rows (with UTM on a third), `--pages` pages rows
and as many entry and exit pages rows (a third of them), 60 locations, 4 devices, 15
browsers (with versions), 10 operating systems and 5 custom events; numbers drawn from a seeded
generator (the same arguments write the same file). With `--runs N` each run imports the file
into a new data directory with a new site (`trail import plausible` as a subprocess, as a user
runs it) and the median, min and max of rows/s (CSV rows of the export / wall time) are
printed.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADERS = {
    "visitors": "date,visitors,pageviews,bounces,visits,visit_duration",
    "sources": "date,source,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,"
    "pageviews,visitors,visits,visit_duration,bounces",
    "pages": "date,hostname,page,visits,visitors,pageviews,total_scroll_depth,"
    "total_scroll_depth_visits,total_time_on_page,total_time_on_page_visits",
    "entry_pages": "date,entry_page,visitors,entrances,visit_duration,bounces,pageviews",
    "exit_pages": "date,exit_page,visitors,visit_duration,exits,bounces,pageviews",
    "locations": "date,country,region,city,visitors,visits,visit_duration,bounces,pageviews",
    "devices": "date,device,visitors,visits,visit_duration,bounces,pageviews",
    "browsers": "date,browser,browser_version,visitors,visits,visit_duration,bounces,pageviews",
    "operating_systems": "date,operating_system,operating_system_version,visitors,visits,"
    "visit_duration,bounces,pageviews",
    "custom_events": "date,name,link_url,path,visitors,events",
}
REGIONS = [("US", "US-CA"), ("US", "US-NY"), ("DE", "DE-BE"), ("DE", "DE-BY"), ("GB", "GB-ENG"),
           ("FR", "FR-IDF"), ("NL", "NL-NH"), ("JP", "JP-13"), ("BR", "BR-SP"), ("IN", "IN-MH")]  # fmt: skip
BROWSERS = ["Chrome", "Safari", "Firefox", "Microsoft Edge", "Opera"]
SYSTEMS = ["Windows", "Mac", "iOS", "Android", "GNU/Linux"]


def generate(days: int, pages: int, sources: int, seed: int) -> tuple[bytes, int]:
    """The zip and its number of CSV rows."""
    rng = random.Random(seed)
    first = date(2023, 1, 1)
    last = first + timedelta(days=days - 1)
    suffix = f"{first:%Y%m%d}_{last:%Y%m%d}.csv"
    files = {name: io.StringIO() for name in HEADERS}
    for name, header in HEADERS.items():
        files[name].write(header + "\n")
    rows = 0

    def n(top: int) -> int:
        return rng.randrange(1, top)

    for i in range(days):
        d = first + timedelta(days=i)
        v = 500 + n(500)
        files["visitors"].write(f"{d},{v},{v * 3},{v // 2},{v + 50},{v * 90}\n")
        for k in range(sources):
            utm = ("newsletter", "email", f"campaign{k % 7}") if k % 3 == 0 else ("", "", "")
            files["sources"].write(
                f"{d},Source {k},,{utm[0]},{utm[1]},{utm[2]},,,{n(90)},{n(30)},{n(40)},{n(999)},{n(9)}\n"
            )
        for k in range(pages):
            files["pages"].write(
                f"{d},example.com,/page/{k},{n(40)},{n(30)},{n(90)},0,0,{n(999)},{n(9)}\n"
            )
        for k in range(pages // 3):
            files["entry_pages"].write(f"{d},/page/{k},{n(30)},{n(40)},{n(999)},{n(9)},{n(90)}\n")
            files["exit_pages"].write(f"{d},/page/{k},{n(30)},{n(999)},{n(40)},{n(9)},{n(90)}\n")
        for k in range(60):
            country, region = REGIONS[k % len(REGIONS)]
            files["locations"].write(
                f"{d},{country},{region},{2950159 + k},{n(30)},{n(40)},{n(999)},{n(9)},{n(90)}\n"
            )
        for device in ("Desktop", "Laptop", "Mobile", "Tablet"):
            files["devices"].write(f"{d},{device},{n(300)},{n(400)},{n(9999)},{n(99)},{n(900)}\n")
        for k in range(15):
            files["browsers"].write(
                f"{d},{BROWSERS[k % 5]},{100 + k},{n(90)},{n(99)},{n(999)},{n(9)},{n(300)}\n"
            )
        for k in range(10):
            files["operating_systems"].write(
                f"{d},{SYSTEMS[k % 5]},{k},{n(90)},{n(99)},{n(999)},{n(9)},{n(300)}\n"
            )
        for k in range(5):
            files["custom_events"].write(f"{d},Event {k},,,{n(20)},{n(40)}\n")
        rows += 1 + sources + pages + 2 * (pages // 3) + 60 + 4 + 15 + 10 + 5
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(f"imported_{name}_{suffix}", text.getvalue())
    return buf.getvalue(), rows


def import_once(export: Path, rows: int) -> float:
    """rows/s of one `trail import plausible` into a new data directory."""
    from trail.storage.meta import MetaStore
    from trail.storage.models import Site

    with tempfile.TemporaryDirectory(prefix="plausible-bench-") as tmp:
        data = Path(tmp) / "data"
        meta = MetaStore.open(data / "meta")
        site = meta.create_site(Site(id="", hostname="bench.example", subdomain="bench"))
        meta.close()
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "trail", "import", "plausible", "--data-dir", str(data),
             "--site", site.id, str(export)],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        seconds = time.monotonic() - began
        print(done.stdout.rstrip(), file=sys.stderr)
    return rows / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=1096)
    p.add_argument("--pages", type=int, default=300)
    p.add_argument("--sources", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="the .zip to write (or reuse)")
    p.add_argument("--runs", type=int, default=0, help="import it this many times")
    args = p.parse_args()
    data, rows = generate(args.days, args.pages, args.sources, args.seed)
    if not args.out.exists():
        args.out.write_bytes(data)
    print(
        f"{args.out}: {args.out.stat().st_size / 1e6:.1f} MB, {rows:,} CSV rows, {args.days} days"
    )
    if args.runs:
        speeds = [import_once(args.out, rows) for _ in range(args.runs)]
        print(f"import: median {statistics.median(speeds):,.0f} rows/s "
              f"(min {min(speeds):,.0f}, max {max(speeds):,.0f}; {args.runs} runs)")  # fmt: skip


if __name__ == "__main__":
    main()

"""TinyTrail screen buckets come from the stored width, exact at every bucket edge."""

from __future__ import annotations

import time
from pathlib import Path

from tests.server import TrailServer

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
DAY = "2026-11-20"


def test_screen_buckets_use_the_width(tmp_path: Path) -> None:
    s = TrailServer(tmp_path / "data", workers=1, env={"TRAIL_SEAL_INTERVAL_MS": "200"}).start()
    try:
        site, key = s.create_site()
        # One visitor per width; the screen classes (XS < 415 <= S < 600 ...) would put 390 and
        # 375 together and 768/769 together, the buckets must not.
        widths = [375, 390, 768, 769, 1024, 1025, 1440, 1441, None]
        hits = []
        for i, w in enumerate(widths):
            item = {"url": "https://example.com/", "ip": f"81.2.69.{i + 1}", "user_agent": CHROME,
                    "time": f"{DAY}T10:00:0{i}Z"}  # fmt: skip
            if w is not None:
                item["screen_width"] = w
            hits.append(item)
        assert s.call("POST", "/api/v1/hit/batch", hits, key=key).status == 200
        query = f"/api/v1/reports/devices?website_id={site}&start_date={DAY}&end_date={DAY}"
        deadline = time.monotonic() + 15
        while True:
            r = s.call("GET", query, **{"X-API-KEY": s.admin_key or ""})
            assert r.status == 200, r.body
            buckets = {b["bucket"]: b["visits"] for b in r.json()["data"]["screen_resolutions"]}
            if sum(buckets.values()) >= len(widths) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        s.stop()
    assert buckets == {"320-375": 1, "376-768": 2, "769-1024": 2, "1025-1440": 2, "1441+": 1,
                       "unknown": 1}  # fmt: skip

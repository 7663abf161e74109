"""Mixed realistic traffic for trail (locust, FastHttpUser): page views mostly, some events and
keep-alives (SiteTraffic users), and one dashboard reading statistics a few times a second.

Environment: BENCH_KEY (site access key pa_...), BENCH_ADMIN_KEY (tt_..., for statistics),
BENCH_SITE_ID, BENCH_USER_RATE (requests per second per SiteTraffic user; run.py sets it so the
total is half of the measured /hit peak), BENCH_STATS_RATE (statistics reads per second, default 2).

    BENCH_KEY=pa_... BENCH_ADMIN_KEY=tt_... BENCH_SITE_ID=... BENCH_USER_RATE=40 \\
      .venv/bin/locust -f bench/locustfile.py --headless -u 41 -r 41 -t 40s \\
      --host http://127.0.0.1:8000 --csv /tmp/mixed --only-summary
"""

from __future__ import annotations

import os
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from locust import constant_throughput, task
from locust.contrib.fasthttp import FastHttpUser

sys.path.insert(0, str(Path(__file__).resolve().parent))
import traffic

KEY = os.environ.get("BENCH_KEY", "")
ADMIN_KEY = os.environ.get("BENCH_ADMIN_KEY", "")
SITE_ID = os.environ.get("BENCH_SITE_ID", "")
USER_RATE = float(os.environ.get("BENCH_USER_RATE", "10"))
# dashboards: statistics reads per second in total (each read runs Polars in a worker and holds it)
STATS_RATE = float(os.environ.get("BENCH_STATS_RATE", "2"))
VISITORS_PER_USER = 50
JSON_HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}


class SiteTraffic(FastHttpUser):
    """One simulated stream of a site's traffic: a pool of visitors browsing."""

    wait_time = constant_throughput(USER_RATE)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.pool = [traffic.visitor(self.rng) for _ in range(VISITORS_PER_USER)]

    def _post(self, path: str, item: dict, name: str) -> None:
        self.client.post(path, data=orjson.dumps(item), headers=JSON_HEADERS, name=name)

    @task(85)
    def page_view(self) -> None:
        self._post("/api/v1/hit", traffic.hit(self.rng, self.rng.choice(self.pool)), "hit")

    @task(8)
    def event(self) -> None:
        self._post(
            "/api/v1/event", traffic.hit(self.rng, self.rng.choice(self.pool), event=True), "event"
        )

    @task(5)
    def keep_alive(self) -> None:
        who = self.rng.choice(self.pool)
        item = {k: who[k] for k in ("ip", "user_agent", "accept_language")}
        self._post("/api/v1/session", item, "session")


class Dashboard(FastHttpUser):
    """The site owner with a dashboard open: a few statistics reads per second."""

    fixed_count = 1
    wait_time = constant_throughput(STATS_RATE)

    def on_start(self) -> None:
        today = datetime.now(UTC).date()
        self.stats_query = f"id={SITE_ID}&from={today - timedelta(days=1)}&to={today}"

    @task
    def statistics(self) -> None:
        self.client.get(
            f"/api/v1/statistics/total?{self.stats_query}",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            name="statistics/total",
        )

"""TinyTrail's `all` period with storage = "clickhouse" starts at the site's first day in
ClickHouse, which holds every node's rows, not at the first day of the answering node's own data
directory (trail.services.tinytrail_reports.earliest_day)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from tests.clickhouse.traffic import ship_all
from tests.test_ingest_e2e import DAY
from trail.services.tinytrail_reports import earliest_day, parse_query
from trail.storage.meta import Site


def test_the_all_period_starts_at_the_first_day_in_clickhouse(
    traffic: dict[str, Any], copy: Path, tmp_path: Path
) -> None:
    url = f"chdb://{tmp_path / 'ch'}"
    ship_all(copy, url)
    site_id = traffic["site"]
    own = earliest_day(copy, site_id)
    assert own is not None and own <= date.fromisoformat(DAY)
    # Another node: none of the rows in its data directory, all of them in ClickHouse.
    other = tmp_path / "other node"
    other.mkdir()
    assert earliest_day(other, site_id) is None
    assert earliest_day(other, site_id, url) == own
    assert earliest_day(copy, site_id, url) == own
    assert earliest_day(other, "a site with no rows", url) is None
    site = Site(id=site_id, hostname="example.com", subdomain="example", timezone="UTC")
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    q = parse_query({"period": ["all"]}, site, other, now=now, clickhouse_url=url)
    assert (q.start, q.end) == (own, date(2026, 12, 1))
    q = parse_query({"period": ["all"]}, site, other, now=now)
    assert q.start == q.end == date(2026, 12, 1)  # what the node alone knows: nothing

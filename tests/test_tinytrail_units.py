"""Table-driven tests of TinyTrail's pure pieces: channels, content groups, periods, rate settings."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from trail.config import ConfigError, parse_rate
from trail.services.ratelimit import check_rate, state_key
from trail.services.tinytrail_reports import QueryError, compare_range, parse_query, period_range
from trail.stats.tinytrail_reports import coarse_channel, content_group_filter, content_group_of
from trail.storage.meta import Site


@pytest.mark.parametrize(
    ("ga4", "coarse"),
    [
        ("Organic Search", "Organic Search"), ("Paid Search", "Paid Search"),
        ("Paid Shopping", "Paid Search"), ("Organic Social", "Social"), ("Paid Social", "Social"),
        ("Organic Video", "Social"), ("Paid Video", "Social"), ("Email", "Email"),
        ("Direct", "Direct"), ("", "Direct"), ("Referral", "Referral"), ("AI", "Referral"),
        ("Cross-network", "Referral"), ("Display", "Referral"), ("Affiliates", "Referral"),
        ("Organic Shopping", "Referral"), ("SMS", "Referral"),
    ],
)  # fmt: skip
def test_coarse_channel_matches_the_rust_table(ga4: str, coarse: str) -> None:
    assert coarse_channel(ga4) == coarse


GROUPS = [
    {"name": "Blog", "pattern": "/blog/*"},
    {"name": "Docs", "pattern": "/docs"},
    {"name": "Blog", "pattern": "/news/*.html"},
]


@pytest.mark.parametrize(
    ("path", "group"),
    [
        ("/blog/a", "Blog"),
        ("/blog/a/b", "Blog"),
        ("/BLOG/x", "Blog"),
        ("/blog", None),
        ("/docs", "Docs"),
        ("/docs/x", None),
        ("/news/a.html", "Blog"),
        ("/news/ahtml", None),
        ("/", None),
    ],
)
def test_content_group_of(path: str, group: str | None) -> None:
    assert content_group_of(path, GROUPS) == group


def test_content_group_filter_joins_patterns_of_one_name() -> None:
    import polars as pl

    regex = content_group_filter(GROUPS, "Blog")
    assert regex is not None and content_group_filter(GROUPS, "Nope") is None
    paths = pl.Series(["/blog/x", "/news/y.html", "/docs", "/news/y.htm"])
    assert paths.str.contains(regex).to_list() == [True, True, False, False]


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("60/60", (60, 60_000)),
        ("10/10", (10, 10_000)),
        (" 5/1 ", (5, 1000)),
        ("0", None),
        ("off", None),
    ],
)
def test_parse_rate(value: str, parsed: tuple[int, int] | None) -> None:
    assert parse_rate("rate_limit_api", value) == parsed


@pytest.mark.parametrize("value", ["60", "60/", "/60", "0/60", "60/0", "a/b", "-1/5", "1/100000"])
def test_parse_rate_rejects(value: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_rate("rate_limit_api", value)
    assert e.value.setting == "rate_limit_api"


def test_rate_limits_come_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from trail.config import load

    cfg = load(
        env={"TRAIL_RATE_LIMIT_COLLECT": "0", "TRAIL_RATE_LIMIT_API": "100/30"},
        create_data_dir=False,
        flags={"data_dir": "/tmp"},
    )
    calls: list[tuple[str, int, int]] = []

    class Engine:
        def rate_limit(self, key: str, limit: int, window_ms: int) -> int:
            calls.append((key, limit, window_ms))
            return 1500 if len(calls) > 1 else 0

    ctx = SimpleNamespace(config=cfg, engine=Engine())
    assert check_rate(ctx, "collect", "1.2.3.4") is None and calls == []  # off
    assert check_rate(ctx, "api", "tt_secret") is None
    assert check_rate(ctx, "api", "tt_secret") == 2  # 1.5 s rounds up
    assert calls[0] == (state_key("api", "tt_secret"), 100, 30_000)
    assert "tt_secret" not in calls[0][0]  # secrets are never stored in the state env


TODAY = date(2026, 3, 19)


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("today", date(2026, 3, 19), TODAY), ("yesterday", date(2026, 3, 18), date(2026, 3, 18)),
        ("7d", date(2026, 3, 13), TODAY), ("30d", date(2026, 2, 18), TODAY),
        ("90d", date(2025, 12, 20), TODAY), ("12m", date(2025, 3, 20), TODAY),
        ("ytd", date(2026, 1, 1), TODAY), ("all", date(2025, 7, 1), TODAY),
    ],
)  # fmt: skip
def test_period_range(period: str, start: date, end: date) -> None:
    assert period_range(period, TODAY, date(2025, 7, 1)) == (start, end)


@pytest.mark.parametrize(
    ("compare", "start", "end", "previous"),
    [
        (
            "previous_period",
            date(2026, 2, 23),
            date(2026, 3, 1),
            (date(2026, 2, 16), date(2026, 2, 22)),
        ),
        ("previous_period", TODAY, TODAY, (date(2026, 3, 18), date(2026, 3, 18))),
        ("yoy", date(2024, 2, 29), date(2024, 3, 1), (date(2023, 2, 28), date(2023, 3, 1))),
    ],
)
def test_compare_range(compare: str, start: date, end: date, previous: tuple[date, date]) -> None:
    assert compare_range(compare, start, end) == previous


def test_parse_query_defaults_and_overrides(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    site = Site(id="s", hostname="x.com", subdomain="x", timezone="Europe/Berlin")
    now = datetime(2026, 3, 19, 23, 30, tzinfo=UTC)  # already March 20 in Berlin
    q = parse_query({}, site, tmp_path, now=now)
    assert (q.start, q.end, q.page, q.per_page, q.format) == (
        date(2026, 3, 14),
        date(2026, 3, 20),
        1,
        50,
        "json",
    )
    q = parse_query({"start_date": ["2026-01-05"], "period": ["30d"]}, site, tmp_path, now=now)
    assert (q.start, q.end) == (date(2026, 1, 5), date(2026, 3, 20))
    q = parse_query(
        {"end_date": ["2026-01-05"], "page": ["3"], "per_page": ["10"]}, site, tmp_path, now=now
    )
    assert (q.start, q.end, q.offset) == (date(2025, 12, 30), date(2026, 1, 5), 20)
    with pytest.raises(QueryError) as e:
        parse_query({"content_group": ["Blog"]}, site, tmp_path, now=now)
    assert e.value.field == "content_group"

"""Goals and funnels: the glob -> regex rule, the LMDB store, and their reports over `shop`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from segment_rows import SITE, SiteData
from shop import DAY, build_shop

from trail.stats import metrics as m
from trail.stats import reports
from trail.stats.filters import FilterError, parse_filter
from trail.stats.goals import funnel, funnel_steps, goal_stats, step_params
from trail.storage.goals import GoalStore, glob_to_regex
from trail.storage.meta import MetaStore

NOW = datetime(2024, 3, 20, tzinfo=UTC)


def q(frm: str = DAY, to: str = DAY, **params: str | list[str]):
    p = {"id": [SITE], "from": [frm], "to": [to]}
    p.update({k: v if isinstance(v, list) else [v] for k, v in params.items()})
    return parse_filter(p, now=NOW)


@pytest.fixture
def shop(site: SiteData) -> Path:
    return build_shop(site)


@pytest.mark.parametrize(
    ("glob", "regex", "matches", "misses"),
    [
        (
            "/path/*",
            "(?i)^/path/[^/]*$",
            ["/path/x", "/PATH/", "/path/a-b"],
            ["/path/x/y", "/path"],
        ),
        ("/path/**", "(?i)^/path/.*$", ["/path/x/y", "/path/"], ["/pathx", "/other/path/x"]),
        ("/a.b", r"(?i)^/a\.b$", ["/a.b", "/A.B"], ["/aXb", "/a.b/"]),
        (
            "/blog/*/comments",
            "(?i)^/blog/[^/]*/comments$",
            ["/blog/x/comments"],
            ["/blog/x/y/comments"],
        ),
        ("/checkout", "(?i)^/checkout$", ["/checkout"], ["/checkout/done"]),
        ("/x+(y)", r"(?i)^/x\+\(y\)$", ["/x+(y)"], ["/xx(y)"]),
    ],
)
def test_glob_to_regex(glob: str, regex: str, matches: list[str], misses: list[str]) -> None:
    assert glob_to_regex(glob) == regex
    # The regex runs in Polars (Rust regex), like the `pattern` filter.
    for path, want in [(p, True) for p in matches] + [(p, False) for p in misses]:
        assert pl.select(pl.lit(path).str.contains(regex)).item() is want, path
        assert bool(re.search(regex, path)) is want, path


def test_store_round_trip(tmp_path: Path) -> None:
    meta = MetaStore.open(tmp_path / "meta")
    store = GoalStore(meta.env)
    a = store.save_goal({"domain_id": "d1", "name": "b goal", "pattern": None})
    b = store.save_goal({"domain_id": "d1", "name": "a goal", "pattern": "(?i)^/x$"})
    store.save_goal({"domain_id": "d2", "name": "other"})
    assert [g["name"] for g in store.list_goals("d1")] == ["a goal", "b goal"]
    updated = store.save_goal({**a, "name": "c goal"})
    assert (updated["id"], updated["def_time"]) == (a["id"], a["def_time"])
    with pytest.raises(KeyError):
        store.save_goal({"id": b["id"], "domain_id": "d2", "name": "steal"})  # other domain
    with pytest.raises(KeyError):
        store.save_goal({"id": "nope", "domain_id": "d1", "name": "x"})
    assert store.delete_goal(b["id"]) and not store.delete_goal(b["id"])
    f = store.save_funnel({"domain_id": "d1", "name": "F", "steps": [
        {"name": "one", "filter": {"path": ["/"]}}, {"name": "two", "filter": {}}]})  # fmt: skip
    assert [(s["step"], s["name"], s["funnel_id"]) for s in f["steps"]] == [
        (0, "one", f["id"]),
        (1, "two", f["id"]),
    ]
    assert store.get_funnel(f["id"]) == f and store.list_funnels("d2") == []
    assert store.delete_site("d1") == 2 and store.list_goals("d1") == [] and store.list_goals("d2")
    meta.close()


def test_goal_stats(shop: Path) -> None:
    goals = [
        {"id": "g1", "name": "page a", "pattern": glob_to_regex("/a")},
        {"id": "g2", "name": "pro signup", "event_name": "signup", "event_meta_key": "plan",
         "event_meta_value": "pro"},
        {"id": "g3", "name": "anything", "pattern": glob_to_regex("/**")},
        {"id": "g4", "name": "revenue", "event_name": "signup", "custom_metric_key": "amount",
         "custom_metric_type": "integer"},
    ]  # fmt: skip
    got = {g["page_goal"]["id"]: g["stats"] for g in goal_stats(shop, q(), goals)}
    # "/a": v1 and v4/s2 viewed it: 2 visitors, 2 views, cr 2/5.
    assert (got["g1"]["visitors"], got["g1"]["views"], got["g1"]["cr"]) == (2, 2, 0.4)
    # signup with plan=pro: sessions of v1 (2 views) and v5 (1 view).
    assert (got["g2"]["visitors"], got["g2"]["views"], got["g2"]["cr"]) == (2, 3, 0.4)
    assert (got["g3"]["visitors"], got["g3"]["views"], got["g3"]["cr"]) == (5, 8, 1.0)
    # amounts 10 + 5 + 10 = 25 over 3 events.
    assert (got["g4"]["custom_metric_total"], got["g4"]["custom_metric_avg"]) == (
        25.0,
        pytest.approx(25 / 3),
    )
    ordered = [g["page_goal"]["id"] for g in goal_stats(shop, q(), goals)]
    assert ordered == ["g3", "g4", "g1", "g2"]  # visitors desc (5, 3, 2, 2), ties by name
    assert [g["page_goal"]["id"] for g in goal_stats(shop, q(search="PRO"), goals)] == ["g2"]


def test_funnel(shop: Path) -> None:
    definition = {"id": "f", "name": "signup funnel", "steps": [
        {"name": "home", "filter": {"path": ["/"]}},
        {"name": "signed up", "filter": {"event_name": ["signup"]}},
        {"name": "read a", "filter": {"path_pattern": ["/a"]}},
    ]}  # fmt: skip
    # Sessions with a "/" view: v1, v2, v4/s1, v5 (4 visitors); of those with signup: v1, v5;
    # of those with "/a": v1. -> 4, 2, 1.
    out = funnel(shop, q(country="us"), definition)  # other filters have no effect
    assert out["definition"] is definition
    assert [s["visitors"] for s in out["data"]] == [4, 2, 1]
    assert out["data"][1] == {"step": 2, "visitors": 2, "relative_visitors": 0.5, "previous_visitors": 4,
                              "relative_previous_visitors": 1.0, "dropped": 2, "drop_off": 0.5}  # fmt: skip
    # Steps are joined per session: v4 viewed "/" in s1 and "/a" in s2, which is no conversion.
    two = {"steps": [{"name": "a", "filter": {"path": ["/"], "event_name": ["download"]}},
                     {"name": "b", "filter": {"path": ["/a"]}}]}  # fmt: skip
    assert [s["visitors"] for s in funnel(shop, q(), two)["data"]] == [1, 0]
    entry = {"steps": [{"name": "a", "filter": {"entry_path": ["/"], "country": ["de", "us"]}},
                       {"name": "b", "filter": {"exit_path": ["/x"], "platform": "desktop"}}]}  # fmt: skip
    assert [s["visitors"] for s in funnel(shop, q(), entry)["data"]] == [2, 1]


def test_conformance_8_funnel_and_growth() -> None:
    steps = funnel_steps([3, 2, 1])
    assert [round(s["relative_visitors"], 3) for s in steps] == [1, 0.667, 0.333]
    assert [round(s["drop_off"], 3) for s in steps] == [0, 0.333, 0.5]
    assert [s["dropped"] for s in steps] == [0, 1, 1]
    assert funnel_steps([]) == [] and funnel_steps([0, 0])[1]["drop_off"] == 0.0
    assert (m.growth(100, 50), m.growth(50, 100), m.growth(0, 0), m.growth(7, 0)) == (
        1.0,
        -0.5,
        0.0,
        1.0,
    )


def test_conformance_8_growth_report(site: SiteData) -> None:
    # 2024-03-03: 2 visitors; 2024-03-10 (one week later): 4 -> visitors_growth (4 - 2) / 2 = 1.0.
    for v in range(2):
        site.visit(100 + v, 1, [("2024-03-03 10:00:00", "/")])
    for v in range(4):
        site.visit(v + 1, 1, [(f"{DAY} 10:00:00", "/")])
    site.write()
    g = reports.growth(site.data_dir, q(), now=NOW)
    assert (g["visitors_growth"], g["views_growth"], g["bounces_growth"]) == (1.0, 1.0, 0.0)
    back = reports.growth(site.data_dir, q("2024-03-03", "2024-03-03"), now=NOW)
    assert back["visitors_growth"] == 1.0  # previous week empty: prev 0 -> 1


def test_conformance_7_session_duration(site: SiteData) -> None:
    # Durations 28, 5, 0, 35, 2, 0 -> zeros excluded, (28 + 5 + 35 + 2) / 4 = 17.5 -> 18.
    for i, seconds in enumerate([28, 5, 0, 35, 2, 0]):
        hits = [(f"{DAY} 1{i}:00:00", "/")]
        if seconds:
            hits.append((f"{DAY} 1{i}:00:{seconds:02d}", "/next"))
        site.visit(i + 1, 1, hits)
    site.write()
    [day] = reports.session_duration(site.data_dir, q())
    assert day["average_time_spent_seconds"] == 18


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"path": [1]}, "path"),
        ({"tags": ["x"]}, "tags"),
        ({"platform": "tablet"}, "platform"),
        ({"path_regex": ["("]}, "pattern"),
        ({"nonsense": ["x"]}, "nonsense"),
    ],
)
def test_bad_step_filters(step: dict, field: str) -> None:
    with pytest.raises(FilterError) as e:
        parse_filter({**step_params(step), "from": [DAY], "to": [DAY]})
    assert e.value.field == field


def test_step_params() -> None:
    p = step_params({"path": ["/a", "!/b"], "event_name": ["x"], "tags": {"k": "v"},
                     "event_meta": {"m": ["1"]}, "path_pattern": ["/a/*", "/b/**"], "platform": "mobile",
                     "country": []})  # fmt: skip
    assert p == {"path": ["/a", "!/b"], "event": ["x"], "tag_k": ["v"], "meta_m": ["1"],
                 "pattern": ["(?:(?i)^/a/[^/]*$)|(?:(?i)^/b/.*$)"], "platform": ["mobile"]}  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="/ab.*+?()[]{}|^$\\-é", max_size=20))
def test_glob_regex_property(glob: str) -> None:
    """Any glob gives a regex both engines accept, matching the glob with its stars filled in."""
    regex = glob_to_regex(glob)
    sample = glob.replace("**", "/x/y").replace("*", "x")
    assert pl.select(pl.lit(sample).str.contains(regex)).item() is True
    assert re.search(regex, sample) is not None
    assert re.search(regex, sample + "/extra/") is None or glob.endswith("*")

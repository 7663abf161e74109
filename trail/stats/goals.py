"""Conversion goal and funnel reports over stored definitions (trail/storage/goals.py).

A goal is a filter (its regex `pattern`, event name and one metadata pair) run through the total
report; a funnel step is a filter too, built by the same parser the query string goes through.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from trail.stats import funnel_scan, rollup_goals
from trail.stats import metrics as m
from trail.stats.filters import FieldFilter, Filter, FilterError, parse_filter
from trail.stats.reports import total_for_rows, unfiltered_visitors
from trail.stats.sources import KEYS, Rows, custom_metrics, rows_for
from trail.storage.goals import glob_to_regex

# Funnel step filter fields that hold a list of values, and the query parameter each one is.
STEP_LISTS = {
    "path": "path", "entry_path": "entry_path", "exit_path": "exit_path", "language": "language",
    "country": "country", "region": "region", "city": "city", "referrer": "referrer",
    "referrer_name": "referrer_name", "os": "os", "os_version": "os_version",
    "browser": "browser", "browser_version": "browser_version", "screen_class": "screen_class",
    "utm_source": "utm_source", "utm_medium": "utm_medium", "utm_campaign": "utm_campaign",
    "utm_content": "utm_content", "utm_term": "utm_term", "event_name": "event",
    "event_meta_key": "event_meta_key", "tag": "tag", "hostname": "hostname",
    "channel": "channel",
}  # fmt: skip


def goal_filter(f: Filter, goal: dict[str, Any]) -> Filter:
    """The report filter plus the goal's own conditions."""
    fields = dict(f.fields)
    meta = dict(f.meta)
    if goal.get("event_name"):
        fields["event_name"] = FieldFilter(eq=(goal["event_name"],))
        if goal.get("event_meta_key") and goal.get("event_meta_value") is not None:
            meta[goal["event_meta_key"]] = FieldFilter(eq=(goal["event_meta_value"],))
    return replace(
        f,
        fields=fields,
        meta=meta,
        pattern=goal.get("pattern") or f.pattern,
        custom_metric_key=goal.get("custom_metric_key") or f.custom_metric_key,
        custom_metric_type=goal.get("custom_metric_type") or f.custom_metric_type,
    )


def goal_stats(data_dir: Path, f: Filter, goals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """/statistics/goals: each goal with visitors, views and cr in the period."""
    out = []
    for goal in goals:
        stats = rollup_goals.goal_totals(data_dir, f, goal)
        if stats is None:
            stats = _goal_totals(rows_for(data_dir, goal_filter(f, goal)))
        out.append({"page_goal": goal, "stats": stats})
    return ranked(f, out)


def ranked(f: Filter, out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Goals with their stats, searched by name, sorted (ties by name) and paged."""
    if f.search:
        needle = f.search.lower()
        out = [g for g in out if needle in g["page_goal"]["name"].lower()]
    field = f.sort if f.sort in ("visitors", "views", "cr") else "visitors"
    out.sort(key=lambda g: g["page_goal"]["name"])
    out.sort(key=lambda g: g["stats"][field], reverse=(f.direction or "desc") == "desc")
    return out[f.offset : f.offset + f.limit]


def _goal_totals(rows: Rows) -> dict[str, Any]:
    """visitors, views, cr and the custom metrics of the total report for a goal's filter.

    Under a page condition they are read as reports.total reads them, but without the
    bounces, a join over every session row of the window that this report does not show."""
    if not rows.f.page_level:
        t = total_for_rows(rows)
        return {k: t[k] for k in ("visitors", "views", "cr", "custom_metric_avg",
                                  "custom_metric_total")}  # fmt: skip
    queries = [rows.page_views(m.PAGE_VIEW_COLUMNS).select(m.page_view_metrics()),
               unfiltered_visitors(rows)]  # fmt: skip
    custom = custom_metrics(rows)
    if custom is not None:
        queries.append(custom)
    frames = pl.collect_all(queries)
    t = frames[0].row(0, named=True)
    cm: dict[str, Any] = frames[2].row(0, named=True) if custom is not None else {}
    visitors = int(t["visitors"] or 0)
    return {
        "visitors": visitors,
        "views": int(t["views"] or 0),
        "cr": m.rate(visitors, frames[1]["visitors"][0] or 0),
        "custom_metric_avg": float(cm.get("custom_metric_avg") or 0.0),
        "custom_metric_total": float(cm.get("custom_metric_total") or 0.0),
    }


def step_params(step_filter: dict[str, Any]) -> dict[str, list[str]]:
    """A funnel step's stored filter as query parameters; FilterError names a bad field."""
    if not isinstance(step_filter, dict):
        raise FilterError("filter", "must be an object")
    p: dict[str, list[str]] = {}
    for key, value in step_filter.items():
        if value is None or value == [] or value == {} or value == "":
            continue
        if key in STEP_LISTS:
            p[STEP_LISTS[key]] = _strings(key, value)
        elif key == "platform":
            p["platform"] = _strings(key, value)
        elif key in ("path_pattern", "path_regex"):
            regexes = [glob_to_regex(v) if key == "path_pattern" else v
                       for v in _strings(key, value)]  # fmt: skip
            p.setdefault("pattern", []).extend(regexes)
        elif key in ("tags", "event_meta"):
            if not isinstance(value, dict):
                raise FilterError(key, "must be an object of key-value pairs")
            prefix = "tag_" if key == "tags" else "meta_"
            for k, v in value.items():
                p[prefix + str(k)] = _strings(key, v)
        else:
            raise FilterError(key, "unknown funnel filter field")
    if len(p.get("pattern", [])) > 1:
        p["pattern"] = ["|".join(f"(?:{r})" for r in p["pattern"])]
    return p


def _strings(key: str, value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in items):
        raise FilterError(key, "must be a string or a list of strings")
    return items


def step_filter(f: Filter, step: dict[str, Any]) -> Filter:
    """The funnel step's conditions over the report's site and period (other filters dropped)."""
    params = step_params(step.get("filter") or {})
    parsed = parse_filter({**params, "from": ["2000-01-01"], "to": ["2000-01-01"]})
    base = f.without_dims()
    return replace(
        base,
        fields=parsed.fields,
        pattern=parsed.pattern,
        platform=parsed.platform,
        tags=parsed.tags,
        meta=parsed.meta,
        tag=parsed.tag,
        event_meta_key=parsed.event_meta_key,
    )


def _step_keys(rows: Rows) -> pl.LazyFrame:
    """(visitor_id, session_id) of the sessions that match the step's filter."""
    f = rows.f
    if f.page_level:
        return rows.page_views(KEYS).select(KEYS).unique()
    keys = rows.live_keys()
    if f.event_level:
        keys = keys.join(rows.event_keys(), on=KEYS, how="semi")
    return keys


def funnel(data_dir: Path, f: Filter, definition: dict[str, Any]) -> dict[str, Any]:
    """/statistics/funnel: visitors per step; each step keeps the sessions of the previous one.

    The page steps are decided in one read of the page views (trail.stats.funnel_scan); each
    other step reads its own sessions."""
    start, end = f.window()
    filters = [step_filter(f, step) for step in definition.get("steps", [])]

    def step_keys(step: Filter) -> pl.LazyFrame:
        return _step_keys(Rows(Path(data_dir), step, start, end))

    visitors = funnel_scan.funnel_visitors(Path(data_dir), filters, start, end, step_keys)
    return {"definition": definition, "data": funnel_steps(visitors)}


def funnel_steps(visitors: list[int]) -> list[dict[str, Any]]:
    """Per step: relative = visitors / step 1, dropped = prev - cur, drop_off = 1 - cur / prev."""
    out = []
    first = visitors[0] if visitors else 0
    for i, cur in enumerate(visitors):
        prev = visitors[i - 1] if i else 0
        out.append(
            {
                "step": i + 1,
                "visitors": cur,
                "relative_visitors": m.rate(cur, first) if first else 0.0,
                "previous_visitors": prev,
                "relative_previous_visitors": m.rate(prev, first) if i and first else 0.0,
                "dropped": prev - cur if i else 0,
                "drop_off": 1.0 - cur / prev if i and prev else 0.0,
            }
        )
    return out


def require_funnel_id(params: dict[str, list[str]]) -> str:
    funnel_id = next((v.strip() for v in params.get("funnel_id", []) if v.strip()), "")
    if not funnel_id:
        raise FilterError("funnel_id", "required")
    return funnel_id

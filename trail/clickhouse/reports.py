"""Reports as ClickHouse SQL: /statistics/total and the visitor series, for session-level filters.

trail's filter (trail.stats.filters.Filter) is compiled once into a WHERE clause over `sessions`
with bound parameters (`{name:Type}`, sent apart from the SQL text): column names come from
trail.storage.schema, never from the request, and every value is a parameter. The metrics are
trail's (trail.stats.metrics): visitors are the distinct visitor ids of rows with sign >= 0,
sessions `sum(sign)`, views `sum(page_views * sign)`, bounces `sum(is_bounce * sign)`.

Conditions that need page views or events (path, title, pattern, tags, event names and
metadata) and custom metrics are not compiled yet: `Unsupported` names the parameter.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from trail.stats import metrics as m
from trail.stats.buckets import bucket_label, bucket_start, series_starts
from trail.stats.filters import FieldFilter, Filter
from trail.storage.schema import SESSIONS

# Local date of a row -> start of its bucket (weeks start on Monday, like trail.stats.buckets).
_BUCKET = {
    "day": "toDate(time, {tz:String})",
    "week": "toMonday(toDate(time, {tz:String}))",
    "month": "toStartOfMonth(toDate(time, {tz:String}))",
    "year": "toStartOfYear(toDate(time, {tz:String}))",
}
_METRICS = (
    "uniqExactIf(visitor_id, sign >= 0) AS visitors, sum(sign) AS sessions, "
    "sum(page_views * sign) AS views, sum(is_bounce * sign) AS bounces"
)
_TIME = "DateTime64(3, 'UTC')"
_STRING_COLUMNS = {name for name, kind in SESSIONS.items() if str(kind) == "String"}
_PLATFORMS = {"desktop": "desktop", "mobile": "mobile", "unknown": "(NOT desktop AND NOT mobile)"}


class Unsupported(ValueError):
    """A filter this module cannot compile yet; `field` names the parameter."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field}: not compiled to ClickHouse SQL yet")
        self.field = field


class Where:
    """A WHERE clause and its parameters, built condition by condition."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: dict[str, Any] = {}
        self._bound = 0

    def bind(self, value: Any, kind: str) -> str:
        name = f"p{self._bound}"
        self._bound += 1
        self.params[name] = value
        return f"{{{name}:{kind}}}"

    @property
    def sql(self) -> str:
        return " AND ".join(self.parts) or "1"


def compile_filter(f: Filter, *, dims: bool = True) -> Where:
    """The conditions of `f` on session rows (without `dims`: only the site and window)."""
    _check_supported(f)
    start, end = f.window()
    w = Where()
    w.parts.append(f"site_id = {w.bind(f.site_id, 'String')}")
    w.parts.append(f"time >= {w.bind(start, _TIME)}")
    w.parts.append(f"time < {w.bind(end, _TIME)}")
    w.params["tz"] = f.tz.key
    if not dims:
        return w
    for column, ff in f.fields.items():
        _field(w, column, ff)
    positives = [_PLATFORMS[p] for p, negated in f.platform if not negated]
    w.parts.extend(f"NOT {_PLATFORMS[p]}" for p, negated in f.platform if negated)
    if positives:
        w.parts.append("(" + " OR ".join(positives) + ")")
    if f.visitor_id is not None:
        w.parts.append(f"visitor_id = {w.bind(f.visitor_id, 'UInt64')}")
    if f.session_id is not None:
        w.parts.append(f"session_id = {w.bind(f.session_id, 'UInt32')}")
    return w


def _field(w: Where, column: str, ff: FieldFilter) -> None:
    """Positives (eq, contains) OR together, negatives AND (trail.stats.predicates.field_expr)."""
    assert column in _STRING_COLUMNS  # _check_supported let only session columns through
    positives = [f"{column} = {w.bind(v, 'String')}" for v in ff.eq]
    positives += [f"position(lower({column}), {w.bind(v, 'String')}) > 0" for v in ff.contains]
    w.parts.extend(f"{column} != {w.bind(v, 'String')}" for v in ff.neq)
    w.parts.extend(f"position(lower({column}), {w.bind(v, 'String')}) = 0" for v in ff.not_contains)
    if positives:
        w.parts.append("(" + " OR ".join(positives) + ")")


def _check_supported(f: Filter) -> None:
    for column in f.fields:
        if column not in _STRING_COLUMNS:
            raise Unsupported(column)
    for name, value in (
        ("pattern", f.pattern),
        ("tag", f.tag or f.tags),
        ("meta", f.meta),
        ("event_meta_key", f.event_meta_key),
        ("custom_metric_key", f.custom_metric_key),
    ):
        if value:
            raise Unsupported(name)


def total(client: Any, database: str, f: Filter) -> dict[str, Any]:
    """/statistics/total, as trail.stats.reports.total answers it."""
    w = compile_filter(f)
    sql = f"SELECT {_METRICS} FROM {database}.sessions WHERE {w.sql}"
    row = client.query(sql, parameters=w.params).named_results()
    t = next(iter(row))
    out: dict[str, Any] = {k: int(t[k] or 0) for k in ("visitors", "views", "sessions", "bounces")}
    everyone = out["visitors"] if f.is_unfiltered else _visitors(client, database, f)
    out["bounce_rate"] = m.rate(out["bounces"], out["sessions"])
    out["cr"] = m.rate(out["visitors"], everyone)
    out["custom_metric_avg"] = 0.0
    out["custom_metric_total"] = 0.0
    return out


def _visitors(client: Any, database: str, f: Filter) -> int:
    w = compile_filter(f, dims=False)
    sql = f"SELECT uniqExactIf(visitor_id, sign >= 0) FROM {database}.sessions WHERE {w.sql}"
    return int(client.query(sql, parameters=w.params).result_rows[0][0])


def visitor(client: Any, database: str, f: Filter) -> list[dict[str, Any]]:
    """/statistics/visitor: one object per bucket of `f.scale`, empty buckets as zeros."""
    assert f.from_date is not None and f.to_date is not None
    starts = series_starts(f.from_date, f.to_date, f.scale)
    by_bucket = _series(client, database, compile_filter(f), f.scale, _METRICS)
    everyone = _series(
        client,
        database,
        compile_filter(f, dims=False),
        f.scale,
        "uniqExactIf(visitor_id, sign >= 0) AS visitors",
    )
    out = []
    for start in starts:
        r = by_bucket.get(start, {})
        item: dict[str, Any] = {"day": None, "week": None, "month": None, "year": None}
        item[f.scale] = bucket_label(start)
        for k in ("visitors", "views", "sessions", "bounces"):
            item[k] = int(r.get(k) or 0)
        item["bounce_rate"] = m.rate(item["bounces"], item["sessions"])
        item["cr"] = m.rate(item["visitors"], everyone.get(start, {}).get("visitors") or 0)
        item["custom_metric_avg"] = 0.0
        item["custom_metric_total"] = 0.0
        out.append(item)
    return out


def _series(client: Any, database: str, w: Where, scale: str, metrics: str) -> dict[date, Any]:
    sql = (
        f"SELECT {_BUCKET[scale]} AS bucket, {metrics} FROM {database}.sessions "
        f"WHERE {w.sql} GROUP BY bucket"
    )
    rows = client.query(sql, parameters=w.params).named_results()
    return {bucket_start(r["bucket"], scale): r for r in rows}

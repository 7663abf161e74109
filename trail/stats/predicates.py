"""Filter -> Polars predicates, per table. The only place where filter operators get their meaning."""

from __future__ import annotations

from functools import reduce

import polars as pl

from trail.stats.filters import FieldFilter, Filter
from trail.storage.schema import TABLES

# Columns a table can be filtered on directly; anything else is reached through a join.
_PAGE_ONLY = {"path", "title"}
_SESSION_ONLY = {"entry_path", "exit_path"}


def field_expr(value: pl.Expr, ff: FieldFilter) -> pl.Expr:
    """Positive conditions OR together, negated ones AND, and the two groups AND."""
    positives = [value == v for v in ff.eq]
    positives += [value.str.to_lowercase().str.contains(v, literal=True) for v in ff.contains]
    negatives = [value != v for v in ff.neq]
    negatives += [~value.str.to_lowercase().str.contains(v, literal=True) for v in ff.not_contains]
    parts = []
    if positives:
        parts.append(reduce(lambda a, b: a | b, positives))
    parts.extend(negatives)
    return _all(parts)


def dims_predicate(f: Filter, table: str, *, with_paths: bool = True) -> pl.Expr:
    """Every condition of `f` that `table`'s own columns can answer (without `with_paths`:
    not the page-level ones, path, title, pattern and tags).

    Session-level conditions (dimensions, entry/exit path) are equal on the +1 and -1 rows of
    one state, so applying them before collapsing keeps or drops whole pairs: it is exact.
    """
    columns = TABLES[table]
    parts = []
    for column, ff in f.fields.items():
        if column not in columns:
            continue
        if not with_paths and column in _PAGE_ONLY:
            continue
        parts.append(field_expr(pl.col(column), ff))
    if f.platform and "desktop" in columns:
        parts.append(platform_expr(f.platform))
    if f.visitor_id is not None:
        parts.append(pl.col("visitor_id") == f.visitor_id)
    if f.session_id is not None and "session_id" in columns:
        parts.append(pl.col("session_id") == f.session_id)
    if table == "page_views" and with_paths:
        parts.extend(page_parts(f))
    if table == "events":
        parts.extend(_event_parts(f))
        if with_paths:
            parts.extend(page_parts(f, "event_meta_keys", "event_meta_values"))
    return _all(parts)


def session_only_fields(f: Filter) -> bool:
    """Whether `f` has conditions that only session rows answer (entry/exit path)."""
    return any(c in f.fields for c in _SESSION_ONLY)


def platform_expr(platforms: tuple[tuple[str, bool], ...]) -> pl.Expr:
    exprs = {
        "desktop": pl.col("desktop"),
        "mobile": pl.col("mobile"),
        "unknown": ~pl.col("desktop") & ~pl.col("mobile"),
    }
    positives = [exprs[name] for name, negated in platforms if not negated]
    parts = [~exprs[name] for name, negated in platforms if negated]
    if positives:
        parts.append(reduce(lambda a, b: a | b, positives))
    return _all(parts)


def pair_value(keys: str, values: str, key: str) -> pl.Expr:
    """The value of `key` in parallel key/value list columns, "" when absent."""
    index = pl.col(keys).list.eval(pl.element() == key).list.arg_max()
    found = pl.col(values).list.get(index, null_on_oob=True).fill_null("")
    return pl.when(pl.col(keys).list.contains(key)).then(found).otherwise(pl.lit(""))


def page_parts(f: Filter, keys: str = "tag_keys", values: str = "tag_values") -> list[pl.Expr]:
    """Pattern and tag conditions (the `path` field is a column condition of dims_predicate).

    On events (`keys`/`values` = the event metadata) the same conditions read the event's own
    path and its metadata, which holds the page's tags (an event's metadata is its page's tags
    overridden by the event's own meta; Pirsch reads tag filters on events the same way)."""
    parts = []
    if f.pattern and "path" not in f.fields:
        parts.append(pl.col("path").str.contains(f.pattern))
    if f.tag:
        parts.append(pl.col(keys).list.contains(f.tag))
    for key, ff in f.tags.items():
        parts.append(field_expr(pair_value(keys, values, key), ff))
    return parts


def field_matches(ff: FieldFilter, value: str) -> bool:
    """field_expr for one Python value."""
    lowered = value.lower()
    positives = [value == v for v in ff.eq] + [v in lowered for v in ff.contains]
    if positives and not any(positives):
        return False
    return not (any(value == v for v in ff.neq) or any(v in lowered for v in ff.not_contains))


def empty_event_matches(f: Filter) -> bool:
    """Whether an event with an empty name and no metadata passes the event conditions.

    A negated event name (`event=!x`) is answered like Pirsch's LEFT JOIN of events: a session
    without any event in the window then reads as one such empty event."""
    ff = f.fields.get("event_name")
    if ff is None or not ff.neq or f.event_meta_key:
        return False
    return field_matches(ff, "") and all(field_matches(c, "") for c in f.meta.values())


def _event_parts(f: Filter) -> list[pl.Expr]:
    parts = []
    if f.event_meta_key:
        parts.append(pl.col("event_meta_keys").list.contains(f.event_meta_key))
    for key, ff in f.meta.items():
        parts.append(field_expr(pair_value("event_meta_keys", "event_meta_values", key), ff))
    return parts


def _all(parts: list[pl.Expr]) -> pl.Expr:
    return reduce(lambda a, b: a & b, parts) if parts else pl.lit(True)

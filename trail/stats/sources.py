"""Which rows a report reads (reference section 5, "Which rows"), with the filter applied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from trail.stats.filters import Filter
from trail.stats.predicates import dims_predicate, field_expr, session_only_fields
from trail.stats.scan import scan

KEYS = ["visitor_id", "session_id"]


@dataclass(frozen=True)
class Rows:
    """One site, one UTC window, one filter: the lazy row sets reports start from."""

    data_dir: Path
    f: Filter
    start: datetime
    end: datetime

    def unfiltered(self) -> Rows:
        """Same site and window, no other filter: the denominators of relative values and cr."""
        return Rows(self.data_dir, self.f.without_dims(), self.start, self.end)

    def sessions(self, columns: list[str], *, paths_on_entry: bool = False) -> pl.LazyFrame:
        """Session rows (uncollapsed, see metrics) matching the session-level filters.

        With `paths_on_entry`, a path/pattern filter selects sessions by entry path: for bounced
        sessions (only views of one path) that is the same as "sessions containing the page".
        """
        lf = self._scan("sessions", columns)
        lf = lf.filter(dims_predicate(self.f, "sessions"))
        if "exit_path" in self.f.fields:
            # The exit path changes during a session: only sessions whose live state matches count,
            # not visitors whose earlier, cancelled state had that exit.
            lf = lf.join(self.live_keys(), on=KEYS, how="semi")
        if paths_on_entry and "path" in self.f.fields:
            lf = lf.filter(field_expr(pl.col("entry_path"), self.f.fields["path"]))
        elif paths_on_entry and self.f.pattern:
            lf = lf.filter(pl.col("entry_path").str.contains(self.f.pattern))
        if self.f.event_level:
            lf = lf.join(self.event_keys(), on=KEYS, how="semi")
        return lf

    def page_views(self, columns: list[str], *, with_paths: bool = True) -> pl.LazyFrame:
        """Page-view rows matching the filter (paths, tags and dimensions)."""
        lf = self._scan("page_views", columns)
        lf = lf.filter(dims_predicate(self.f, "page_views", with_paths=with_paths))
        if session_only_fields(self.f):
            lf = lf.join(self.live_keys(), on=KEYS, how="semi")
        if self.f.event_level:
            lf = lf.join(self.event_keys(), on=KEYS, how="semi")
        return lf

    def live_keys(self) -> pl.LazyFrame:
        """(visitor_id, session_id) of sessions whose live state matches the session filters."""
        rows = self._scan("sessions", [*KEYS, "sign"]).filter(dims_predicate(self.f, "sessions"))
        rows = rows.group_by(KEYS).agg(pl.col("sign").cast(pl.Int64).sum())
        return rows.filter(pl.col("sign") > 0).select(KEYS)

    def events(self, columns: list[str]) -> pl.LazyFrame:
        lf = self._scan("events", columns)
        return lf.filter(dims_predicate(self.f, "events"))

    def event_keys(self) -> pl.LazyFrame:
        """Sessions that contain a matching event: an event filter selects whole sessions."""
        return self.events(KEYS).select(KEYS).unique()

    def _scan(self, table: str, columns: list[str]) -> pl.LazyFrame:
        return scan(
            self.data_dir,
            table,
            self.f.site_id,
            self.start,
            self.end,
            _needed(self.f, table, columns),
        )


def _needed(f: Filter, table: str, columns: list[str]) -> list[str]:
    """The asked-for columns plus those the filter reads."""
    from trail.storage.schema import TABLES

    extra = [c for c in f.fields if c in TABLES[table]]
    if f.platform:
        extra += ["desktop", "mobile"]
    if f.visitor_id is not None:
        extra.append("visitor_id")
    if f.session_id is not None and "session_id" in TABLES[table]:
        extra.append("session_id")
    if table == "page_views" and (f.tags or f.tag):
        extra += ["tag_keys", "tag_values"]
    if table == "page_views" and f.pattern:
        extra.append("path")
    if table == "sessions" and (f.pattern or "path" in f.fields):
        extra.append("entry_path")
    if table != "requests" and (
        f.event_level
        or "exit_path" in f.fields
        or (table == "page_views" and session_only_fields(f))
    ):
        extra += KEYS  # joined on
    if table == "events" and (f.meta or f.event_meta_key):
        extra += ["event_meta_keys", "event_meta_values"]
    return list(dict.fromkeys([*columns, *extra]))


def rows_for(data_dir: Path, f: Filter) -> Rows:
    """The rows of the filter's local-date range."""
    start, end = f.window()
    return Rows(Path(data_dir), f, start, end)


def metrics_by(rows: Rows, keys: list[pl.Expr], columns: list[str]) -> pl.LazyFrame:
    """visitors, views, sessions, bounces grouped by `keys` (expressions over `columns`).

    Sessions answer unless the filter needs page views (path, pattern, tags); then visitors,
    views and sessions come from page views and bounces from sessions by entry path.
    """
    from trail.stats import kernels
    from trail.stats import metrics as m

    f = rows.f
    if f.page_level and not f.event_level:
        pv = (
            rows.page_views([*m.PAGE_VIEW_COLUMNS, *columns])
            .group_by(keys)
            .agg(m.page_view_metrics())
        )
        sess = rows.sessions([*m.SESSION_COLUMNS, *columns], paths_on_entry=not (f.tags or f.tag))
        if f.tags or f.tag:
            sess = rows.sessions([*m.SESSION_COLUMNS, *columns, *KEYS])
            sess = sess.join(rows.page_views(KEYS).select(KEYS).unique(), on=KEYS, how="semi")
        names = [k.meta.output_name() for k in keys]
        return pv.join(sess.group_by(keys).agg(m.bounces()), on=names, how="left").with_columns(
            pl.col("bounces").fill_null(0)
        )
    # One kernel pass: Polars' per-group hash sets for distinct visitors cost seconds on tens of
    # millions of session rows.
    names = [k.meta.output_name() for k in keys]
    sess = rows.sessions([*KEYS, "sign", "page_views", "is_bounce", *columns]).select(
        *keys, *KEYS, "sign", "page_views", "is_bounce"
    )
    return kernels.session_metrics_by(sess, names).lazy()

"""Which rows a report reads (reference section 5, "Which rows"), with the filter applied.

The one place where a filter meets the tables. A filter's conditions are of four kinds, and
each table answers them the same way in every report:

- dimensions (country, browser, referrer, UTM, platform, ...): equal on every row of a session,
  so they are plain row predicates on every table;
- entry/exit path: conditions on the session: its entry page, and the exit page of its live
  state (the final state, when that lies in the window);
- page conditions (path, pattern, tags): a page view must match; a session (and every session
  row) passes when it has a matching page view in the window; an event is tested on its own
  path and its metadata (which holds its page's tags);
- event conditions (name, metadata): an event must match; a session (with its page views) passes
  when it has a matching event in the window ("filtering by an event returns the stats of whole
  sessions that contain the event"); `event=!x` also passes sessions without events (Pirsch's
  LEFT JOIN reads those as one empty event).

This is Pirsch's treatment of page-level filters on session-level reports (join the sessions to
the page views that match), applied to every report.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import polars as pl

from trail.stats.buckets import TimePart
from trail.stats.filters import Filter
from trail.stats.predicates import (
    dims_predicate,
    empty_event_matches,
    pair_value,
    session_only_fields,
)
from trail.stats.scan import scan
from trail.storage import tombstones
from trail.storage.schema import TABLES

KEYS = ["visitor_id", "session_id"]
WINDOW = "_window"  # the bucket column of Rows.by_bucket


@dataclass(frozen=True)
class Rows:
    """One site, one UTC window, one filter: the lazy row sets reports start from.

    With `bucket` (an expression over `time`, see by_bucket), each bucket is a window of its
    own for the page and event conditions: a row passes when its session has a matching page
    view (event) in the row's bucket, as if that bucket were asked alone."""

    data_dir: Path
    f: Filter
    start: datetime
    end: datetime
    bucket: pl.Expr | None = None

    def unfiltered(self) -> Rows:
        """Same site and window, no other filter: the denominators of relative values and cr."""
        return Rows(self.data_dir, self.f.without_dims(), self.start, self.end)

    def by_bucket(self, bucket: pl.Expr) -> Rows:
        """The same rows with page and event conditions held inside each bucket of `bucket`
        (an expression over `time`): the visitor report's days, weeks... and the session
        duration's days, each read as a window of its own (section 5, "visitor")."""
        if not (self.f.page_level or self.f.event_level):
            return self
        return replace(self, bucket=bucket.alias(WINDOW))

    def without_pages(self) -> Rows:
        """Same window and filter without its page and entry/exit conditions (path, pattern,
        tags, entry_path, exit_path): the page totals entry and exit pages list."""
        fields = {
            k: v for k, v in self.f.fields.items() if k not in ("path", "entry_path", "exit_path")
        }
        f = replace(self.f, fields=fields, pattern=None, tags={}, tag=None)
        return Rows(self.data_dir, f, self.start, self.end)

    # -- the three tables ----------------------------------------------------------------------

    def sessions(self, columns: list[str]) -> pl.LazyFrame:
        """Session rows (uncollapsed, see metrics) of the sessions that pass the filter."""
        lf = self._keyed("sessions", columns).filter(dims_predicate(self.f, "sessions"))
        if self.f.page_level:
            lf = lf.join(self.page_keys(), on=self._on, how="semi")
        return self._only(self._session_conditions(lf, events=True), columns)

    def page_views(self, columns: list[str], *, with_paths: bool = True) -> pl.LazyFrame:
        """Page views that match (without `with_paths`: all page views of the sessions that
        pass, whatever their page) of the sessions that pass the other conditions."""
        lf = self._keyed("page_views", columns)
        lf = lf.filter(dims_predicate(self.f, "page_views", with_paths=with_paths))
        return self._only(self._session_conditions(lf, events=True), columns)

    def events(self, columns: list[str]) -> pl.LazyFrame:
        """Events that match the event and page conditions (on the event's own path and
        metadata), of sessions that pass the entry/exit conditions."""
        lf = self._keyed("events", columns).filter(dims_predicate(self.f, "events"))
        return self._only(self._session_conditions(lf, events=False), columns)

    # -- sessions by condition -------------------------------------------------------------------

    def page_keys(self) -> pl.LazyFrame:
        """Sessions with a page view in the window (with `bucket`: their buckets holding one)
        that matches the page conditions."""
        lf = self._keyed("page_views", KEYS).filter(dims_predicate(self.f, "page_views"))
        return lf.select(self._on).unique()

    def event_keys(self) -> pl.LazyFrame:
        """Sessions with an event in the window (with `bucket`: their buckets holding one) that
        matches the event conditions."""
        lf = self._keyed("events", KEYS)
        lf = lf.filter(dims_predicate(self.f, "events", with_paths=False))
        return lf.select(self._on).unique()

    def live_keys(self) -> pl.LazyFrame:
        """Sessions whose live state (in the window; with `bucket`, the buckets holding it)
        matches the session-level conditions."""
        rows = self._keyed("sessions", [*KEYS, "sign"]).filter(dims_predicate(self.f, "sessions"))
        rows = rows.group_by(self._on).agg(pl.col("sign").cast(pl.Int64).sum())
        return rows.filter(pl.col("sign") > 0).select(self._on)

    def bounced_keys(self, columns: tuple[str, ...] = ()) -> pl.LazyFrame:
        """Sessions whose live state in the window bounced, with `columns` of that state (no
        filter: callers join; a cancel row copies its state, bounce included)."""
        rows = scan(self.data_dir, "sessions", self.f.site_id, self.start, self.end,
                    [*KEYS, "sign", "is_bounce", "version", *columns])  # fmt: skip
        live = live_states(rows.filter(pl.col("is_bounce") & (pl.col("sign") != 0)))
        return live.select(*KEYS, *columns)

    def _session_conditions(self, lf: pl.LazyFrame, *, events: bool) -> pl.LazyFrame:
        """`lf` (rows with KEYS) limited to sessions passing entry/exit and event conditions."""
        f = self.f
        if "exit_path" in f.fields:
            # The exit page changes during a session: its live state must match, not a state
            # that a later one cancelled.
            lf = lf.join(self.live_keys(), on=self._on, how="semi")
        elif "entry_path" in f.fields:
            entry = self._scan("sessions", KEYS).filter(dims_predicate(f, "sessions"))
            lf = lf.join(entry.select(KEYS).unique(), on=KEYS, how="semi")
        if events and f.event_level:
            on = self._on
            if empty_event_matches(f):
                every = scan(self.data_dir, "events", f.site_id, self.start, self.end,
                             [*KEYS, "time"] if self.bucket is not None else KEYS)  # fmt: skip
                if self.bucket is not None:
                    every = every.with_columns(self.bucket)
                unmatched = every.select(on).unique().join(self.event_keys(), on=on, how="anti")
                lf = lf.join(unmatched, on=on, how="anti")
            else:
                lf = lf.join(self.event_keys(), on=on, how="semi")
        return lf

    @property
    def _on(self) -> list[str]:
        """What page and event conditions join on: the session, and with `bucket` its bucket."""
        return KEYS if self.bucket is None else [WINDOW, *KEYS]

    def _keyed(self, table: str, columns: list[str]) -> pl.LazyFrame:
        """_scan, with the `bucket` column when there is one."""
        if self.bucket is None:
            return self._scan(table, columns)
        return self._scan(table, [*columns, "time"]).with_columns(self.bucket)

    def _only(self, lf: pl.LazyFrame, columns: list[str]) -> pl.LazyFrame:
        """Without the `bucket` column (and `time`, if it was read for it)."""
        return lf if self.bucket is None else lf.drop(WINDOW, *({"time"} - set(columns)))

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
    extra = [c for c in f.fields if c in TABLES[table]]
    if f.platform:
        extra += ["desktop", "mobile"]
    if f.visitor_id is not None:
        extra.append("visitor_id")
    if f.session_id is not None and "session_id" in TABLES[table]:
        extra.append("session_id")
    if table in ("page_views", "events") and f.pattern:
        extra.append("path")
    if table == "page_views" and (f.tags or f.tag):
        extra += ["tag_keys", "tag_values"]
    if table == "events" and (f.meta or f.event_meta_key or f.tags or f.tag):
        extra += ["event_meta_keys", "event_meta_values"]
    joined = f.event_level or session_only_fields(f) or (table == "sessions" and f.page_level)
    if table != "requests" and joined:
        extra += KEYS
    return list(dict.fromkeys([*columns, *extra]))


def live_states(sess: pl.LazyFrame) -> pl.LazyFrame:
    """The live state of each session among session rows (with KEYS, sign, version): a +1 row
    that no -1 row of the same version cancelled (compacted cancelled states have sign 0)."""
    cancelled = sess.filter(pl.col("sign") < 0).select([*KEYS, "version"])
    return sess.filter(pl.col("sign") > 0).join(cancelled, on=[*KEYS, "version"], how="anti")


def rows_for(data_dir: Path, f: Filter) -> Rows:
    """The rows of the filter's local-date range."""
    start, end = f.window()
    return Rows(Path(data_dir), f, start, end)


def core(rows: Rows) -> pl.LazyFrame:
    """One row: visitors, sessions, views, bounces for the filter (section 5 "Which rows").

    Page conditions read page views: visitors and sessions are distinct ids, views the rows,
    bounces the sessions among them whose live state bounced. Otherwise session rows
    (trail.stats.metrics)."""
    from trail.stats import metrics as m

    if rows.f.page_level:
        pv = rows.page_views(m.PAGE_VIEW_COLUMNS)
        return pl.concat([pv.select(m.page_view_metrics()), _bounces(rows, pv)],
                         how="horizontal")  # fmt: skip
    return rows.sessions(m.SESSION_COLUMNS).select(m.session_metrics())


def metrics_by(
    rows: Rows,
    keys: list[pl.Expr],
    columns: list[str],
    *,
    views: bool = False,
    windows: bool = False,
    part: TimePart | None = None,
) -> pl.LazyFrame:
    """visitors, views, sessions, bounces grouped by `keys` (expressions over `columns`).

    Read like `core`; with `views` always from page views (the time-of-day groupings: a page
    view's time, not its session's). With `windows`, `keys` are time buckets (over `time`) that
    each count as a window of their own (the visitor report's days, weeks...): read from page
    views, a session's bounce counts among the views of the bucket that holds its live state,
    as if each bucket were asked alone. `part`, when given, is `keys` (one) as arithmetic, which
    the counting kernel then computes itself."""
    from trail.stats import kernels
    from trail.stats import metrics as m

    names = [k.meta.output_name() for k in keys]
    if views and starts_hold_views(rows, columns):
        return _by_view_time(rows, keys, names, part)
    if rows.f.page_level or views:
        # with `windows`, the bucket of each bounced session's live state
        live = rows.bounced_keys(("time",) if windows else ())
        pv, bounced_keys = pl.collect_all([
            rows.page_views([*m.PAGE_VIEW_COLUMNS, *columns]).select(*keys, *KEYS),
            live.select(*keys, *KEYS) if windows else live.select(m.session_key()),
        ])  # fmt: skip
        if windows:  # the views of a bounced session in the bucket of its live state
            bounced = pv.join(bounced_keys, on=[*names, *KEYS], how="semi")
        else:
            bounced = pv.filter(m.session_key().is_in(bounced_keys["session_key"].implode()))
        # the sessions among a group's views that bounced: their distinct sessions
        bounces = kernels.view_counts(bounced, names).select(
            *names, pl.col("sessions").alias("bounces")
        )
        counted = kernels.view_counts(pv, names).join(bounces, on=names, how="left")
        return counted.with_columns(pl.col("bounces").fill_null(0).cast(pl.Int64)).lazy()
    # One kernel pass: Polars' per-group hash sets for distinct visitors cost seconds on tens of
    # millions of session rows.
    sess = rows.sessions([*KEYS, "sign", "page_views", "is_bounce", *columns]).select(
        *keys, *KEYS, "sign", "page_views", "is_bounce"
    )
    return kernels.session_metrics_by(sess, names).lazy()


def starts_hold_views(rows: Rows, columns: list[str]) -> bool:
    """Whether a bounced session with one page view can be counted at its `start` for groupings
    of the views' `time` (`columns`): no page condition (a session that passes passes with its
    view, whose dimensions are the session's) and no deletion in the window (which could have
    removed the view but kept the session's final state)."""
    if columns != ["time"] or rows.f.page_level:
        return False
    start, end = int(rows.start.timestamp() * 1000), int(rows.end.timestamp() * 1000)
    stones = tombstones.load(rows.data_dir, rows.f.site_id)
    return not any(tombstones.relevant(stones, t, start, end) for t in ("sessions", "page_views"))


def _by_view_time(
    rows: Rows, keys: list[pl.Expr], names: list[str], part: TimePart | None
) -> pl.LazyFrame:
    """metrics_by of the views' `time` parts (hours, weekdays, minutes) where starts_hold_views.

    Visitors, sessions and views: the counting kernel over the page views that pass. Bounces of
    a group: the sessions among its views whose final state in the window bounced. A session
    with one page view has that view at its start (the state machine writes the first view
    with the session's start time, its visitor, session and dimensions), so those are counted
    by their state's `start`, in the window; only the others (reloads) are looked up among the
    views, by the kernel (their keys are read only when there are any). Over session rows, a
    state and the row that cancels it share their time and columns, so per session the rows
    kept below sum `sign` to 1 exactly when its final state lies in the window and bounced
    with one page view (or, for the lookup, with more).

    Session rows are listed before page views: a worker seals a batch's session rows before
    its page views, so a view-less state of a batch being sealed is only read when that
    sealing outlasts the planning of both scans."""
    from trail.stats import kernels
    from trail.stats import metrics as m

    bounced = rows.sessions(["sign", "is_bounce", "page_views", "start"]).filter(
        pl.col("is_bounce") & (pl.col("sign") != 0)  # the others add 0
    )
    start_ms = pl.col("start").dt.epoch("ms")
    first, after = int(rows.start.timestamp() * 1000), int(rows.end.timestamp() * 1000)
    one = (pl.col("page_views") == 1) & (start_ms >= first) & (start_ms < after)
    sign = pl.col("sign").cast(pl.Int64)
    # per group of the start (the time of the one view): those with one view, and whether
    # any row is of a state with more
    single_q = (
        bounced.select(pl.col("start").alias("time"), "sign", "page_views", one.alias("one"))
        .group_by(keys)
        .agg(
            sign.filter(pl.col("one")).sum().alias("single"),
            (pl.col("page_views") > 1).sum().alias("more"),
        )
    )
    pv_q = rows.page_views([*m.PAGE_VIEW_COLUMNS, "time"])
    pv_q = pv_q.select(*KEYS, "time") if part is not None else pv_q.select(*keys, *KEYS)
    pv, single = pl.collect_all([pv_q, single_q])
    reloaded = kernels.NO_FLAGS
    if single["more"].sum():
        reloaded = (
            rows.sessions([*KEYS, "sign", "is_bounce", "page_views"])
            .filter(pl.col("is_bounce") & (pl.col("sign") != 0) & (pl.col("page_views") > 1))
            .group_by(KEYS)
            .agg(sign.sum())
            .filter(pl.col("sign") > 0)
            .select(KEYS)
            .collect()
        )
    if part is not None:
        counted = kernels.time_part_counts(pv, part, reloaded)
    else:
        counted = kernels.view_counts(pv, names, flagged=reloaded)
    return (
        counted.join(single.select(*names, "single"), on=names, how="left")
        .select(
            *names,
            "visitors",
            "sessions",
            "views",
            (pl.col("flagged") + pl.col("single").fill_null(0)).cast(pl.Int64).alias("bounces"),
        )
        .lazy()
    )


def _bounces(rows: Rows, pv: pl.LazyFrame) -> pl.LazyFrame:
    """One row, `bounces`: the sessions among the page views `pv` whose live state bounced."""
    from trail.stats import metrics as m

    bounced = pv.join(rows.bounced_keys(), on=KEYS, how="semi")
    return bounced.select(m.session_key().n_unique().cast(pl.Int64).alias("bounces"))


def custom_metrics(rows: Rows, keys: list[pl.Expr] | None = None) -> pl.LazyFrame | None:
    """custom_metric_avg and custom_metric_total over the matching events (per `keys`, which
    read event columns such as `time`), or None without an event name, custom_metric_key and
    custom_metric_type. Values that do not parse as the type are left out."""
    f = rows.f
    if not (f.custom_metric_key and f.custom_metric_type and "event_name" in f.fields):
        return None
    dtype = pl.Int64 if f.custom_metric_type == "integer" else pl.Float64
    value = pair_value("event_meta_keys", "event_meta_values", f.custom_metric_key)
    ev = rows.events(["event_meta_keys", "event_meta_values", "time"])
    values = ev.select(*(keys or []), value.cast(dtype, strict=False).alias("v"))
    aggs = [
        pl.col("v").mean().fill_null(0.0).cast(pl.Float64).alias("custom_metric_avg"),
        pl.col("v").sum().cast(pl.Float64).alias("custom_metric_total"),
    ]
    if keys:
        return values.group_by([k.meta.output_name() for k in keys]).agg(aggs)
    return values.select(aggs)

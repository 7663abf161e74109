"""The one definition of each metric, as Polars expressions over stored rows.

Session rows collapse with `sign` (reference section 1): a cancelled state appears as an identical
+1/-1 pair (or, once compacted, as one presence row with sign 0, see trail.tasks.compaction), so
over any set of rows selected by a row predicate each session nets 0 or 1, and `sum(x * sign)` is
the value of its live state. That makes sessions, views and bounces plain sums (no group-by per
session), which is what keeps 30-day totals fast. Visitors are the distinct `visitor_id` of rows
with sign >= 0 (every state, never a cancel row), so a session crossing midnight counts as a
visitor on both days while its views and bounces land on the day of its final state.
"""

from __future__ import annotations

import polars as pl

_SIGN = pl.col("sign").cast(pl.Int64)

# Columns the session metrics read.
SESSION_COLUMNS = ["visitor_id", "sign", "page_views", "is_bounce"]
# Columns the page-view metrics read.
PAGE_VIEW_COLUMNS = ["visitor_id", "session_id"]


def present() -> pl.Expr:
    """Session rows that show a visitor: every state (sign +1, or 0 for a compacted cancelled
    state), never a cancel row (-1)."""
    return pl.col("sign") >= 0


def visitors() -> pl.Expr:
    """Distinct visitors of session rows."""
    return pl.col("visitor_id").filter(present()).n_unique().alias("visitors")


def sessions() -> pl.Expr:
    """The sessions whose final state lies in the rows' window: each counts once, where its
    views and bounces land.

    Deliberately not Pirsch's distinct (visitor_id, session_id) of the rows with groups of
    sum(sign) <= 0 dropped: there a session that crosses midnight counts on both days but its
    views and bounces on one, so a day's bounce_rate can exceed 1 and the days of a range do not
    add up to the range. Visitors keep Pirsch's rule (every state shows its visitor)."""
    return _SIGN.sum().alias("sessions")


def views() -> pl.Expr:
    return (pl.col("page_views").cast(pl.Int64) * _SIGN).sum().alias("views")


def bounces() -> pl.Expr:
    return (pl.col("is_bounce").cast(pl.Int64) * _SIGN).sum().alias("bounces")


def session_metrics() -> list[pl.Expr]:
    """visitors, sessions, views, bounces over session rows."""
    return [visitors(), sessions(), views(), bounces()]


def session_key() -> pl.Expr:
    """One u64 per (visitor_id, session_id).

    Distinct counts over one u64 column are several times faster in Polars than over a struct of
    two; the odd multiplier spreads the u32 over all bits, so a collision needs two sessions of
    different visitors to hit the same 64-bit value (~1e-7 for millions of sessions).
    """
    spread = pl.col("session_id").cast(pl.UInt64) * pl.lit(0x9E3779B97F4A7C15, pl.UInt64)
    return (pl.col("visitor_id") ^ spread).alias("session_key")


def page_view_metrics() -> list[pl.Expr]:
    """visitors, sessions, views over page-view (or event) rows: each row is one view."""
    return [
        pl.col("visitor_id").n_unique().alias("visitors"),
        session_key().n_unique().alias("sessions"),
        pl.len().cast(pl.Int64).alias("views"),
    ]


def duration_sum() -> pl.Expr:
    """Sum of live sessions' durations (seconds)."""
    return (pl.col("duration_seconds").cast(pl.Int64) * _SIGN).sum()


def average_seconds(value: pl.Expr) -> pl.Expr:
    """round(avg) of the non-zero values (zeros are exits and bounces), banker's rounding."""
    nonzero = value.filter(value > 0)
    return nonzero.mean().round(0, mode="half_to_even").fill_null(0).cast(pl.Int64)


def rate(numerator: float, denominator: float) -> float:
    """A ratio whose zero denominator counts as 1 (bounce_rate, cr, relative values)."""
    return float(numerator) / max(float(denominator), 1.0)


def rate_expr(numerator: pl.Expr, denominator: pl.Expr | float) -> pl.Expr:
    den = denominator if isinstance(denominator, pl.Expr) else pl.lit(float(denominator))
    return numerator.cast(pl.Float64) / pl.max_horizontal(den.cast(pl.Float64), pl.lit(1.0))


def growth(current: float, previous: float) -> float:
    """(cur - prev) / prev; both 0 -> 0; prev 0 -> 1."""
    if previous == 0:
        return 0.0 if current == 0 else 1.0
    return (float(current) - float(previous)) / float(previous)

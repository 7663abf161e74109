"""Exact distinct counts over u64 ids and per-group statistics, by the Rust kernels.

Polars counts distinct u64 values with a hash table that falls out of cache at a few million
random ids; the inputs here are concatenated per-day runs that are already sorted, which the
Rust kernel (rust_core/src/kernels.rs) merges with a run-adaptive sort.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from trail import core
from trail.stats.buckets import TimePart


def distinct_count(arrays: list[np.ndarray]) -> int:
    """Number of distinct values over all `arrays` (uint64)."""
    parts = [np.ascontiguousarray(a, dtype=np.uint64) for a in arrays if len(a)]
    if not parts:
        return 0
    values = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return int(core.distinct_u64(values))


def search_sorted(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """numpy.searchsorted(sorted_ids, ids) (side "left") for uint64 ids, as uint32 (read-only;
    `sorted_ids` holds fewer than 2**31 ids, so a view as int32 keeps them). Each id is
    searched forward from the last one's position, so ids in ascending runs (a day's sorted ids,
    distinct ids) cost a few nearby reads each instead of a binary search over all of
    `sorted_ids` (~5x less at millions of ids); any order gives the same answer."""
    found = core.sorted_positions(
        np.ascontiguousarray(sorted_ids, dtype=np.uint64),
        np.ascontiguousarray(ids, dtype=np.uint64),
    )
    return np.frombuffer(found, dtype=np.uint32)


_NO_TIMES = np.zeros(0, dtype=np.int64)


def page_stats(pv: pl.LazyFrame, *, with_title: bool = True) -> pl.DataFrame:
    """Per path over page-view rows: visitors, sessions, views and the title of the latest view
    (the greatest `time`; of views sharing it, the greatest title, so the answer does not depend
    on the order rows are read in), like `group_by("path").agg(n_unique..., title of the
    max (time, title))` but without Polars' per-group hash sets (seconds at 10M rows).
    Groups are told apart by a 64-bit hash of the path; two paths would only merge on a hash
    collision (~1e-13 for thousands of paths)."""
    titles: list[str | pl.Expr] = (
        ["title", pl.col("time").dt.epoch("ms").alias("ms")] if with_title else []
    )
    df = pv.select(
        pl.col("path").hash().alias("key"), "visitor_id", "session_id", "path", *titles
    ).collect()
    if df.is_empty():
        schema = {"path": pl.String, "visitors": pl.Int64, "sessions": pl.Int64,
                  "views": pl.Int64, "title": pl.String}  # fmt: skip
        return pl.DataFrame(schema={k: v for k, v in schema.items() if k != "title" or with_title})
    keys = np.ascontiguousarray(df["key"].to_numpy(), dtype=np.uint64)
    visitors = np.ascontiguousarray(df["visitor_id"].to_numpy(), dtype=np.uint64)
    sessions = np.ascontiguousarray(df["session_id"].to_numpy(), dtype=np.uint32)
    times = np.ascontiguousarray(df["ms"].to_numpy(), dtype=np.int64) if with_title else _NO_TIMES
    _keys, first, last, rows, n_visitors, n_sessions, tie_groups, tie_rows = core.group_stats(
        keys, visitors, sessions, times
    )
    out = pl.DataFrame(
        {
            "path": df["path"].gather(first),
            "visitors": pl.Series(n_visitors, dtype=pl.Int64),
            "sessions": pl.Series(n_sessions, dtype=pl.Int64),
            "views": pl.Series(rows, dtype=pl.Int64),
        }
    )
    if not with_title:
        return out
    return out.with_columns(title=latest_titles(df["title"], last, tie_groups, tie_rows))


def latest_titles(
    titles: pl.Series, last: list[int], tie_groups: list[int], tie_rows: list[int]
) -> pl.Series:
    """The title of each group's latest row (`last`, from core.group_stats); where several rows
    share a group's greatest time (`tie_groups`/`tie_rows`), the greatest of their titles."""
    out = titles.gather(last)
    if not tie_rows:
        return out
    tied = (
        pl.DataFrame(
            {"g": pl.Series(tie_groups, dtype=pl.UInt32), "title": titles.gather(tie_rows)}
        )
        .group_by("g")
        .agg(pl.col("title").max())
    )
    return out.scatter(tied["g"], tied["title"])


def visitors_by(lf: pl.LazyFrame, columns: list[str]) -> pl.DataFrame:
    """Distinct visitor_id per combination of `columns` over rows with `visitor_id`,
    `session_id` and `columns` (the caller keeps only live rows), like
    `group_by(columns).agg(visitor_id.n_unique())`. Groups are told apart by a 64-bit hash of
    the combination (see page_stats)."""
    key = pl.col(columns[0]).hash() if len(columns) == 1 else pl.struct(columns).hash()
    df = lf.select(key.alias("key"), "visitor_id", "session_id", *columns).collect()
    if df.is_empty():
        return df.select(*columns).with_columns(visitors=pl.lit(0, pl.Int64)).clear()
    _keys, first, _last, _rows, n_visitors, *_ = core.group_stats(
        np.ascontiguousarray(df["key"].to_numpy(), dtype=np.uint64),
        np.ascontiguousarray(df["visitor_id"].to_numpy(), dtype=np.uint64),
        np.ascontiguousarray(df["session_id"].to_numpy(), dtype=np.uint32),
        _NO_TIMES,
    )
    out = df.select(columns)[first]
    return out.with_columns(visitors=pl.Series(n_visitors, dtype=pl.Int64))


def session_metrics_by(lf: pl.LazyFrame, columns: list[str]) -> pl.DataFrame:
    """visitors, sessions, views, bounces (trail.stats.metrics) per combination of `columns`
    over session rows with `visitor_id`, `session_id`, `sign`, `page_views`, `is_bounce` and
    `columns`, in one pass (see visitors_by for how groups are told apart)."""
    key = pl.col(columns[0]).hash() if len(columns) == 1 else pl.struct(columns).hash()
    df = lf.select(
        key.alias("key"),
        "visitor_id",
        "session_id",
        "sign",
        "page_views",
        pl.col("is_bounce").cast(pl.UInt8),  # numpy would copy a bool column to convert it
        *columns,
    ).collect()
    counts = ("visitors", "sessions", "views", "bounces")
    if df.is_empty():
        return df.select(*columns).with_columns(pl.lit(0, pl.Int64).alias(c) for c in counts)
    _keys, first, *metrics = core.session_metrics(
        np.ascontiguousarray(df["key"].to_numpy(), dtype=np.uint64),
        np.ascontiguousarray(df["visitor_id"].to_numpy(), dtype=np.uint64),
        np.ascontiguousarray(df["session_id"].to_numpy(), dtype=np.uint32),
        np.ascontiguousarray(df["sign"].to_numpy(), dtype=np.int8),
        np.ascontiguousarray(df["page_views"].to_numpy(), dtype=np.uint32),
        np.ascontiguousarray(df["is_bounce"].to_numpy(), dtype=np.uint8),
    )
    out = df.select(columns)[first]
    return out.with_columns(
        pl.Series(name, values, dtype=pl.Int64)
        for name, values in zip(counts, metrics, strict=True)
    )


def view_counts(
    pv: pl.DataFrame, names: list[str], *, flagged: pl.DataFrame | None = None
) -> pl.DataFrame:
    """visitors, sessions (distinct ids) and views (rows) per `names` group of page views, by
    the counting kernel; small integer groups (an hour) are their own key, others are told
    apart by a 64-bit hash (see page_stats). With `flagged` (visitor_id, session_id of some
    sessions), also `flagged`: how many of those sessions each group's views hold."""
    counts = ("visitors", "sessions", "views", *(("flagged",) if flagged is not None else ()))
    if pv.is_empty():
        return pv.select(names).with_columns(pl.lit(0, pl.Int64).alias(c) for c in counts)
    if len(names) == 1 and pv.schema[names[0]].is_integer():
        # its own key: an integer column read as u64 (a reinterpretation, not a conversion)
        key = pv[names[0]].cast(pl.Int64).to_numpy().view(np.uint64)
    else:
        hashed = pl.col(names[0]).hash() if len(names) == 1 else pl.struct(names).hash()
        key = pv.select(hashed).to_series().to_numpy()
    visitors = np.ascontiguousarray(pv["visitor_id"].to_numpy(), dtype=np.uint64)
    sessions = np.ascontiguousarray(pv["session_id"].to_numpy(), dtype=np.uint32)
    key = np.ascontiguousarray(key, dtype=np.uint64)
    if flagged is None:
        _keys, first, _last, views, n_visitors, n_sessions, *_ = core.group_stats(
            key, visitors, sessions, _NO_TIMES
        )
        values: tuple[list[int], ...] = (n_visitors, n_sessions, views)
    else:
        _keys, first, views, n_visitors, n_sessions, n_flagged = core.group_counts(
            key,
            visitors,
            sessions,
            np.ascontiguousarray(flagged["visitor_id"].to_numpy(), dtype=np.uint64),
            np.ascontiguousarray(flagged["session_id"].to_numpy(), dtype=np.uint32),
        )
        values = (n_visitors, n_sessions, views, n_flagged)
    return pv.select(names)[first].with_columns(
        pl.Series(name, v, dtype=pl.Int64) for name, v in zip(counts, values, strict=True)
    )


# No flagged sessions (view_counts, time_part_counts).
NO_FLAGS = pl.DataFrame(schema={"visitor_id": pl.UInt64, "session_id": pl.UInt32})


def time_part_counts(pv: pl.DataFrame, part: TimePart, flagged: pl.DataFrame) -> pl.DataFrame:
    """view_counts by a time part of each view's `time` (pv: visitor_id, session_id, time),
    computed by the kernel from the epoch milliseconds; `flagged` as there."""
    names = [part.name]
    counts = ("visitors", "sessions", "views", "flagged")
    if pv.is_empty():
        return pl.DataFrame(schema={part.name: pl.Int64, **dict.fromkeys(counts, pl.Int64)})
    keys, _first, views, visitors, sessions, n_flagged = core.time_part_counts(
        np.ascontiguousarray(pv["time"].dt.epoch("ms").to_numpy(), dtype=np.int64),
        np.ascontiguousarray(pv["visitor_id"].to_numpy(), dtype=np.uint64),
        np.ascontiguousarray(pv["session_id"].to_numpy(), dtype=np.uint32),
        np.ascontiguousarray(flagged["visitor_id"].to_numpy(), dtype=np.uint64),
        np.ascontiguousarray(flagged["session_id"].to_numpy(), dtype=np.uint32),
        part.shift,
        part.unit,
        part.add,
        part.modulus,
    )
    values = (visitors, sessions, views, n_flagged)
    return pl.DataFrame(
        {names[0]: pl.Series(keys, dtype=pl.Int64)}
        | {c: pl.Series(v, dtype=pl.Int64) for c, v in zip(counts, values, strict=True)}
    )


def _pairing_arrays(
    pv: pl.DataFrame, ms: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """visitor_id, session_id, time (ms; `ms` when given) and duration_seconds as the kernels
    take them."""
    times = pv["time"].dt.epoch("ms").to_numpy() if ms is None else ms
    return (
        np.ascontiguousarray(pv["visitor_id"].to_numpy(), dtype=np.uint64),
        np.ascontiguousarray(pv["session_id"].to_numpy(), dtype=np.uint32),
        np.ascontiguousarray(times, dtype=np.int64),
        np.ascontiguousarray(pv["duration_seconds"].to_numpy(), dtype=np.uint32),
    )


_Chunks = list[np.ndarray]


def _pairing_chunks(pv: pl.DataFrame) -> tuple[_Chunks, _Chunks, _Chunks, _Chunks]:
    """_pairing_arrays as lists of per-chunk arrays (one chunk per file a scan read): views of
    Polars' buffers, not a copy of 10M rows per column into one array."""
    cols = pv.select("visitor_id", "session_id", pl.col("time").dt.epoch("ms"), "duration_seconds")
    lengths = {tuple(len(c) for c in cols[name].get_chunks()) for name in cols.columns}
    if len(lengths) > 1:  # columns chunked differently: one chunk each
        cols = cols.rechunk()

    def chunks(name: str, dtype: type) -> _Chunks:
        return [np.ascontiguousarray(c.to_numpy(), dtype=dtype) for c in cols[name].get_chunks()]

    return (
        chunks("visitor_id", np.uint64),
        chunks("session_id", np.uint32),
        chunks("time", np.int64),
        chunks("duration_seconds", np.uint32),
    )


# The order of one session's page views at one instant, after their time: the time on page
# pairs each view with the next in this order (trail.clickhouse.reports_sessions._spent orders
# its window the same way), and session/details lists them in it (trail.stats.sessions). The
# duration comes first: a report that reads only the times and durations (the average time on
# page per day) depends on which view is first at an instant only through its duration.
TIE_ORDER = ("duration_seconds", "path", "title", "tag_keys", "tag_values")
# Times handed to the kernels as ms * 2**_RANK_BITS + the view's rank at its instant.
_RANK_BITS = 20


def _tie_broken(pv: pl.DataFrame, ms: np.ndarray, tied: list[tuple[int, int]]) -> np.ndarray:
    """The times `ms` (pv's, in ms) scaled by 2**_RANK_BITS, plus, for the views of the `tied`
    sessions (two views at one instant), the view's rank at its instant by TIE_ORDER: the
    pairing of the kernels then follows that order. The rank reads the TIE_ORDER columns up to
    the first one `pv` lacks: views equal in those are interchangeable for the caller's answer
    when `pv` holds every column the answer reads, and the ones before it in TIE_ORDER."""
    cols: list[str] = []
    for c in TIE_ORDER:
        if c not in pv.columns:
            break
        cols.append(c)
    keys = pl.DataFrame(
        tied, schema={"visitor_id": pl.UInt64, "session_id": pl.UInt32}, orient="row"
    )
    rank = pl.struct(cols).rank("dense").over("visitor_id", "session_id", "ms") - 1
    ranked = (
        pv.select("visitor_id", "session_id", *cols)
        .with_columns(pl.Series("ms", ms), pl.int_range(pl.len(), dtype=pl.UInt32).alias("i"))
        .join(keys, on=["visitor_id", "session_id"], how="semi")
        .select("i", pl.min_horizontal(rank, 2**_RANK_BITS - 1).cast(pl.Int64).alias("rank"))
    )
    out = ms.astype(np.int64) << _RANK_BITS
    out[ranked["i"].to_numpy()] += ranked["rank"].to_numpy()
    return out


def times_on_page_of(pv: pl.DataFrame, ms: np.ndarray) -> np.ndarray:
    """The time on page (uint32 seconds) of each view of `pv` (visitor_id, session_id,
    duration_seconds and the TIE_ORDER columns its caller's answer reads) at times `ms`: the
    duration of the next view of the same session in time order, views of one instant in
    TIE_ORDER, 0 for its last view. One pass of the Rust kernel where Polars would sort every
    view by session and time; a second one when some session has two views at one instant."""
    visitors, sessions, ms, durations = _pairing_arrays(pv, ms)
    spent, tied = core.times_on_page(visitors, sessions, ms, durations)
    if tied:
        spent, _ = core.times_on_page(visitors, sessions, _tie_broken(pv, ms, tied), durations)
    return np.frombuffer(spent, dtype=np.uint32)


def with_time_on_page(pv: pl.DataFrame) -> pl.DataFrame:
    """`pv` (page views with visitor_id, session_id, time, duration_seconds and the TIE_ORDER
    columns the caller's answer reads) with `time_on_page` (times_on_page_of)."""
    if pv.is_empty():
        return pv.with_columns(pl.lit(0, pl.Int64).alias("time_on_page"))
    spent = times_on_page_of(pv, pv["time"].dt.epoch("ms").to_numpy())
    seconds = pl.Series("time_on_page", spent, dtype=pl.UInt32)
    return pv.with_columns(seconds.cast(pl.Int64))


def time_on_page_by_bucket(pv: pl.DataFrame, breaks: list[int]) -> pl.DataFrame:
    """`bucket` (index in `breaks`, ascending ms), `total` (seconds) and `n` (views with a
    non-zero time): with_time_on_page summed by the bucket of each view's own time, in the
    kernel, without a per-view column (the columns of `pv` as there)."""
    if pv.is_empty() or not breaks:
        return pl.DataFrame(schema={"bucket": pl.Int64, "total": pl.Int64, "n": pl.Int64})
    totals, counts, tied = core.time_on_page_by_bucket_chunks(*_pairing_chunks(pv), breaks)
    if tied:
        v, s, t, d = _pairing_arrays(pv)
        scaled = [b << _RANK_BITS for b in breaks]
        totals, counts, _ = core.time_on_page_by_bucket(v, s, _tie_broken(pv, t, tied), d, scaled)
    return pl.DataFrame(
        {"bucket": range(len(breaks)), "total": totals, "n": counts},
        schema={"bucket": pl.Int64, "total": pl.Int64, "n": pl.Int64},
    )

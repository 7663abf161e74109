"""Funnel visitors with the page steps of a funnel decided together in one read of the views.

A funnel's step k counts the distinct visitors of the sessions that pass steps 1..k (each step a
filter, see trail.stats.goals). A step whose conditions page view rows answer alone (a page
condition such as path, pattern or tags, with dimensions, but no entry/exit path or event
condition) passes the sessions with a matching page view in the window. Read step by step, each
such step scanned the page views again, listed its distinct sessions with a hash table and
joined the previous step's (~1 s CPU for three path steps at 10M page views). Here the page
views matching any page step are read once (once per set of columns the steps read), each with
a bitmask of the page steps it matches; the masks are ORed per session, and a session passes
page steps 1..k when its mask holds all their bits. Other steps keep their own session sets,
intersected in step order.

Grouping by session sorts the (visitor, session) pairs of the matching views: compacted days are
sorted by session (trail.tasks.compaction), so the concatenated scan is a few sorted runs and
NumPy's stable sort (a merge sort that finds runs) costs little; any order gives the same answer
(sessions that cross midnight, unsorted segments of the live day).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import reduce
from pathlib import Path

import numpy as np
import polars as pl

from trail.stats.filters import Filter
from trail.stats.predicates import dims_predicate, session_only_fields
from trail.stats.scan import scan
from trail.stats.sources import _needed

KEYS = ["visitor_id", "session_id"]
# The smallest mask that holds a bit per page step (a funnel has at most 20 steps).
_MASK_TYPES = {8: (np.uint8, pl.UInt8), 16: (np.uint16, pl.UInt16), 32: (np.uint32, pl.UInt32)}
MAX_PAGE_STEPS = max(_MASK_TYPES)

# The sessions (visitor_id, session_id) that pass one step that is not a page step.
StepKeys = Callable[[Filter], pl.LazyFrame]


def page_step(f: Filter) -> bool:
    """Whether page view rows alone decide which sessions pass the step `f`."""
    return f.page_level and not f.event_level and not session_only_fields(f)


class Sessions:
    """The sessions with a page view matching some page step: sorted distinct (visitor, session)
    pairs and the ORed mask of the steps their views match."""

    def __init__(self, visitors: np.ndarray, sessions: np.ndarray, masks: np.ndarray) -> None:
        self.visitors = visitors
        self.sessions = sessions
        self.masks = masks

    def holding(self, required: int) -> np.ndarray:
        """Which sessions match every page step of the bits `required`."""
        need = self.masks.dtype.type(required)
        return (self.masks & need) == need

    def visitors_holding(self, required: int) -> int:
        """Distinct visitors of the sessions holding `required` (visitors are sorted)."""
        return _distinct_sorted(self.visitors[self.holding(required)])

    def frame(self, required: int) -> pl.DataFrame:
        keep = self.holding(required)
        return pl.DataFrame(
            {"visitor_id": self.visitors[keep], "session_id": self.sessions[keep]},
            schema={"visitor_id": pl.UInt64, "session_id": pl.UInt32},
        )


def funnel_visitors(
    data_dir: Path, filters: list[Filter], start: datetime, end: datetime, step_keys: StepKeys
) -> list[int]:
    """Distinct visitors per funnel step (`filters`, in order): the sessions of step k pass steps
    1..k. `step_keys` gives the sessions of a step that is not a page step."""
    bits = {i: 1 << n for n, i in enumerate(i for i, f in enumerate(filters) if page_step(f))}
    if len(bits) > MAX_PAGE_STEPS:
        bits = {}
    pages = page_sessions(data_dir, [(filters[i], b) for i, b in bits.items()], start, end)
    visitors = []
    kept: pl.DataFrame | None = None  # sessions of the steps so far that are not in `required`
    required = 0  # page steps so far whose sessions are not yet in `kept`
    for i, f in enumerate(filters):
        if i in bits:
            required |= bits[i]
        else:
            keys = step_keys(f)
            if kept is not None:
                keys = keys.join(kept.lazy(), on=KEYS, how="semi")
            if required:
                keys = keys.join(pages.frame(required).lazy(), on=KEYS, how="semi")
            kept, required = keys.collect(), 0
        if kept is None:
            visitors.append(pages.visitors_holding(required))
        elif required:
            both = pages.frame(required).join(kept, on=KEYS, how="semi")
            visitors.append(both["visitor_id"].n_unique())
        else:
            visitors.append(kept["visitor_id"].n_unique())
    return visitors


def page_sessions(
    data_dir: Path, steps: list[tuple[Filter, int]], start: datetime, end: datetime
) -> Sessions:
    """The sessions with a page view in [start, end) matching some of `steps` (a page step and
    its bit; all of one site), each with the bits of the steps its views match."""
    dtype, mask_type = _MASK_TYPES[min(n for n in _MASK_TYPES if len(steps) <= n)]
    if not steps:
        return Sessions(np.zeros(0, np.uint64), np.zeros(0, np.uint32), np.zeros(0, dtype))
    # Steps reading the same columns share a scan. The scan tests a condition on one column
    # against each dictionary value of the files rather than each row, and then decodes the
    # ids of matching views only; an OR across columns would be tested row by row.
    groups: dict[tuple[str, ...], list[tuple[Filter, int]]] = {}
    for f, bit in steps:
        groups.setdefault(tuple(_needed(f, "page_views", KEYS)), []).append((f, bit))
    frames = []
    for columns, group in groups.items():
        matches = [dims_predicate(f, "page_views") for f, _ in group]
        bits = [
            pl.when(match).then(pl.lit(bit, mask_type)).otherwise(pl.lit(0, mask_type))
            for match, (_, bit) in zip(matches, group, strict=True)
        ]
        mask = (
            reduce(lambda a, b: a | b, bits) if len(group) > 1 else pl.lit(group[0][1], mask_type)
        )
        frames.append(
            scan(data_dir, "page_views", group[0][0].site_id, start, end, list(columns))
            .filter(reduce(lambda a, b: a | b, matches))
            .select(*KEYS, mask.alias("mask"))
        )
    views = pl.concat(frames).collect()
    return _by_session(
        np.ascontiguousarray(views["visitor_id"].to_numpy(), dtype=np.uint64),
        np.ascontiguousarray(views["session_id"].to_numpy(), dtype=np.uint32),
        np.ascontiguousarray(views["mask"].to_numpy(), dtype=dtype),
    )


def _by_session(visitors: np.ndarray, sessions: np.ndarray, masks: np.ndarray) -> Sessions:
    """The masks of the views ORed per (visitor, session), sorted by visitor, then session."""
    # Adjacent views of one session first: a compacted day holds each session's views together.
    visitors, sessions, masks = _runs(visitors, sessions, masks)
    order = np.argsort(visitors, kind="stable")
    # (rank of the visitor, session) as one exact u64, built in place, to sort by both
    key = visitors[order]
    if len(key):
        new_visitor = key[1:] != key[:-1]
        key[0] = 0
        np.cumsum(new_visitor, out=key[1:])
        key <<= np.uint64(32)
        key |= sessions[order]
    order = order[np.argsort(key, kind="stable")]
    return Sessions(*_runs(visitors[order], sessions[order], masks[order]))


def _runs(
    visitors: np.ndarray, sessions: np.ndarray, masks: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One row per run of equal adjacent (visitor, session), with the run's masks ORed."""
    if not len(visitors):
        return visitors, sessions, masks
    first = np.ones(len(visitors), dtype=bool)
    np.not_equal(visitors[1:], visitors[:-1], out=first[1:])
    first[1:] |= sessions[1:] != sessions[:-1]
    starts = np.flatnonzero(first)
    return visitors[starts], sessions[starts], np.bitwise_or.reduceat(masks, starts)


def _distinct_sorted(values: np.ndarray) -> int:
    return int(np.count_nonzero(values[1:] != values[:-1])) + 1 if len(values) else 0

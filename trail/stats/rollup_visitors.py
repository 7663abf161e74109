"""Distinct visitors per group of dimension combinations over many days, counted exactly.

Every breakdown of a dashboard load groups the same combinations of one set of dimensions
(trail.storage.dim_rollups) over the same closed days, differently. Deduplicating the visitors
of a group across days is a sort of all their ids (~2.3M per set at 10M page views a month,
~100 ms), so it is done once per set and set of closed days on a machine (`SetIndex`, kept
for the other workers and the next start by trail.stats.index_files): the distinct visitors
of the closed days, each with its only combination, or marked as having several, whose
(visitor, combination) pairs are kept. A group's visitors are then those whose only combination
lies in the group (a sum over combinations) plus the distinct visitors among the pairs mapped
to groups (the pairs are sorted by visitor, so a linear pass counts them: the Rust kernel
run_group_counts, ~0.1 s for the ~20M pairs of the source set at 100M page views a month,
where sorting the mapped pairs took ~0.4 s). The days without a rollup (the live day) are added per request: each of their
(visitor, group) pairs counts unless the closed days already gave that visitor that group.
Building an index costs a few counts by the counting kernel over the days' lists (~0.2-0.6 s
against ~0.1 s at 10M page views a month); counting the kernel's way for a set's first requests
was tried and cost more over three dashboard loads (bench/RESULTS-dashboard.md).
tests/stats/test_dim_rollups.py compares the counts with Python sets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import polars as pl

from trail import core
from trail.stats import index_files, kernels
from trail.storage import memory


@dataclass(frozen=True)
class SetIndex:
    """Who had which combination of one set over some closed days."""

    row_combo: np.ndarray  # per row of the days' tables (in order): its combination
    n_combos: int
    ids: np.ndarray  # the days' sorted distinct visitor ids
    combo_of: np.ndarray  # per visitor of `ids`: its only combination, -1 when several
    single_counts: np.ndarray  # per combination: the visitors it is the only one of
    multi_visitors: np.ndarray  # (visitor index, combination) of visitors with several
    multi_combos: np.ndarray


def distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values. A stable sort (radix for integers) and a comparison of
    neighbours: np.unique hashes, several times slower on millions of keys made of runs."""
    values = np.sort(values, kind="stable")
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


def positions(deltas: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Delta-coded lists (each list's first value as is) back to their values (int64)."""
    total = np.cumsum(deltas, dtype=np.int64)
    starts = np.cumsum(lens) - lens
    nonempty = lens > 0
    # each list restarts: subtract what the lists before it summed to
    before = np.zeros(len(lens), dtype=np.int64)
    s = starts[nonempty]
    before[nonempty] = total[s] - deltas[s].astype(np.int64)
    return total - np.repeat(before, lens)


def index_for(
    key: tuple,
    tables: list[pl.DataFrame],
    deltas: list[Callable[[], np.ndarray]],
    ids: Callable[[], list[np.ndarray]],
    union: Callable[[], np.ndarray],
    columns: list[str],
    shared_in: Path | None = None,
) -> SetIndex:
    """The SetIndex of closed days (their tables, deltas and id lists; `union`: their sorted
    distinct ids), remembered by `key` (the identity of the days' files and the set), and
    shared with the machine's other processes in `shared_in` (trail.stats.index_files);
    the deltas and the id lists are read only to build it."""
    hit = memory.KEPT.get(("set index", key))
    if hit is not memory.MISSING:
        return hit  # type: ignore[no-any-return]

    def build() -> dict[str, np.ndarray]:
        g = _global_of(key[1:], ids, union())
        return _arrays(_build(tables, [read() for read in deltas], g, columns))

    arrays = build() if shared_in is None else index_files.shared(shared_in, key, build)
    index = SetIndex(**{k: v for k, v in arrays.items() if k != "n_combos"},
                     ids=union(), n_combos=int(arrays["n_combos"][0]))  # fmt: skip
    # kept under the statistics' memory budget, its ids (the union's) counted with the union
    own = sum(a.nbytes for a in arrays.values())
    memory.KEPT.put(("set index", key), index, own)
    return index


def _arrays(index: SetIndex) -> dict[str, np.ndarray]:
    """What is kept of an index (its ids are the union's, kept once); combinations as int16
    when they fit."""
    out = {f.name: getattr(index, f.name) for f in fields(index) if f.name != "ids"}
    out["n_combos"] = np.array([index.n_combos])
    if index.n_combos < np.iinfo(np.int16).max:
        out["combo_of"] = index.combo_of.astype(np.int16)
        out["multi_combos"] = index.multi_combos.astype(np.int16)
    return out


def _global_of(key: tuple, ids: Callable[[], list[np.ndarray]], union: np.ndarray) -> GlobalIds:
    """Each day's ids as indexes into `union` (shared by the sets of the same days), kept under
    the statistics' memory budget, its union counted with the union."""
    return memory.KEPT.get_or_make(
        ("global ids", key),
        lambda: global_ids(ids(), union),
        lambda found: found.index.nbytes + found.day_starts.nbytes,
    )


@dataclass(frozen=True)
class GlobalIds:
    index: np.ndarray  # per id of the days (concatenated): its index in `union` (int32)
    day_starts: np.ndarray  # where each day's ids start in `index`
    union: np.ndarray


def global_ids(ids: list[np.ndarray], union: np.ndarray) -> GlobalIds:
    """GlobalIds of days' sorted id lists whose sorted distinct union is `union`."""
    starts = np.cumsum([0, *[len(d) for d in ids]])
    values = np.concatenate(ids) if ids else np.zeros(0, np.uint64)
    # each day's run ascends: a forward search from the last position (a binary search each
    # over the ~23M ids of 30 days at 100M page views a month took ~7 s per set)
    index = kernels.search_sorted(union, values).view(np.int32)
    return GlobalIds(index, starts[:-1], union)


def _build(
    tables: list[pl.DataFrame], deltas: list[np.ndarray], g: GlobalIds, columns: list[str]
) -> SetIndex:
    table = pl.concat([t.select(*columns, "visitors") for t in tables])
    row_combo = table.select(pl.struct(columns).rank("dense") - 1).to_series().to_numpy()
    row_combo = row_combo.astype(np.int64)
    n_combos = int(row_combo.max()) + 1 if len(row_combo) else 0
    lens = table["visitors"].to_numpy().astype(np.int64)
    day_lens = np.array([t["visitors"].sum() for t in tables], dtype=np.int64)
    pos = positions(np.concatenate(deltas) if deltas else np.zeros(0, np.uint32), lens)
    visitor = g.index[np.repeat(g.day_starts, day_lens) + pos]
    combo = np.repeat(row_combo, lens)
    n = len(g.union)
    # A visitor seen once (one day, one combination) needs no sorting: most of them.
    seen = np.bincount(visitor, minlength=n)
    once = seen[visitor] == 1
    combo_of = np.full(n, -1, dtype=np.int32)
    combo_of[visitor[once]] = combo[once]
    bits = max(n_combos - 1, 1).bit_length()
    pairs = distinct((visitor[~once].astype(np.int64) << bits) | combo[~once])
    v, c = (pairs >> bits).astype(np.int32), (pairs & ((1 << bits) - 1)).astype(np.int32)
    alone = np.ones(len(v), dtype=bool)  # the visitor's only distinct combination
    alone[1:] &= v[1:] != v[:-1]
    alone[:-1] &= v[:-1] != v[1:]
    combo_of[v[alone]] = c[alone]
    has = combo_of >= 0
    return SetIndex(
        row_combo=row_combo,
        n_combos=n_combos,
        ids=g.union,
        combo_of=combo_of,
        single_counts=np.bincount(combo_of[has], minlength=n_combos),
        multi_visitors=v[~alone],
        multi_combos=c[~alone],
    )


def count(
    index: SetIndex | None, closed_groups: np.ndarray, n_groups: int,
    open_ids: list[np.ndarray], open_positions: list[np.ndarray], open_groups: list[np.ndarray],
) -> np.ndarray:  # fmt: skip
    """Distinct visitors per group: of the closed days (`closed_groups`: the group of each of
    the index's rows) and of open days (per day: its ids, the positions of its rows' visitors
    flat, and the group of each position)."""
    counts = np.zeros(n_groups, dtype=np.int64)
    combo_group = np.zeros(0, dtype=np.int64)
    if index is not None and index.n_combos:
        combo_group = np.zeros(index.n_combos, dtype=np.int64)
        combo_group[index.row_combo] = closed_groups
        counts += np.bincount(combo_group, weights=index.single_counts, minlength=n_groups).astype(
            np.int64
        )
        # the visitors with several combinations, each once per group of its combinations
        multi = core.run_group_counts(
            np.ascontiguousarray(index.multi_visitors), np.ascontiguousarray(index.multi_combos),
            combo_group,
            n_groups,
        )  # fmt: skip
        counts += np.array(multi, dtype=np.int64)
    if not open_ids:
        return counts
    ids = np.concatenate([d[p] for d, p in zip(open_ids, open_positions, strict=True)])
    groups = np.concatenate(open_groups).astype(np.int64)
    order = np.lexsort((groups, ids))
    ids, groups = ids[order], groups[order]
    first = np.ones(len(ids), dtype=bool)
    first[1:] = (ids[1:] != ids[:-1]) | (groups[1:] != groups[:-1])
    ids, groups = ids[first], groups[first]
    new = np.ones(len(ids), dtype=bool)
    if index is not None and len(index.ids):
        at = np.minimum(kernels.search_sorted(index.ids, ids), len(index.ids) - 1)
        found = index.ids[at] == ids
        combo = np.where(found, index.combo_of[at], -1)
        single = found & (combo >= 0)
        new[single] = combo_group[combo[single]] != groups[single]
        several = found & (combo < 0)
        had = core.runs_have(
            np.ascontiguousarray(index.multi_visitors), np.ascontiguousarray(index.multi_combos),
            combo_group,
            np.ascontiguousarray(at[several], dtype=np.int64),
            np.ascontiguousarray(groups[several], dtype=np.int64),
        )  # fmt: skip
        new[several] = ~np.frombuffer(had, dtype=bool)
    counts += np.bincount(groups[new], minlength=n_groups)
    return counts

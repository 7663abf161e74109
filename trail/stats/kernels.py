"""Exact distinct counts over u64 ids, in Rust when the extension has the kernel.

Polars counts distinct u64 values with a hash table that falls out of cache at a few million
random ids; the inputs here are concatenated per-day runs that are already sorted, which the
Rust kernel (rust_core/src/kernels.rs) merges with a run-adaptive sort. numpy is the fallback
for an extension built before the kernel existed; both are exact.
"""

from __future__ import annotations

import numpy as np

from trail import core


def distinct_count(arrays: list[np.ndarray]) -> int:
    """Number of distinct values over all `arrays` (uint64)."""
    parts = [np.ascontiguousarray(a, dtype=np.uint64) for a in arrays if len(a)]
    if not parts:
        return 0
    values = parts[0] if len(parts) == 1 else np.concatenate(parts)
    if core.distinct_u64 is not None:
        return int(core.distinct_u64(values.tobytes()))
    # np.unique hashes in numpy 2.x and is several times slower than sorting here.
    ordered = np.sort(values)
    return int(1 + np.count_nonzero(ordered[1:] != ordered[:-1]))

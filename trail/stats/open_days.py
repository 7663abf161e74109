"""What the reports remember of a day read from rows (the live day, a day not compacted yet).

A window that ends today combines the closed days' rollups with the open day's rows, described
the way compaction would describe them (trail.storage.rollups.summarize, dim_rollups.build_table,
page_rollups.per_path); so are the slices of the UTC days at the ends of a window that is not made
of whole UTC days (trail.storage.rollups.window_parts). A dashboard load asks ~20 reports over
the same window at once, so the description is made once per set of files and remembered: by the identity of the open day's
visible files (path, inode, mtime, size) in the tables it reads and of the site's tombstone
file. A new segment, a compaction or a deletion changes that identity, and the next report
describes the day again. A description is kept only if the identity did not change while it was
made (the files are replaced by rename, never rewritten in place), and reports that ask for the
same description at the same time wait for the first one instead of making it again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from trail.storage import layout, memory
from trail.storage.daydir import read_day

T = TypeVar("T")


class _Making:
    """The reports asking for one description at the same time: the first makes it, the others
    wait and take it, kept or not (it may not fit the budget: trail.storage.memory)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.value: Any = memory.MISSING


_making: dict[tuple[Any, ...], _Making] = {}
_lock = threading.Lock()


def identity(
    data_dir: Path, site_id: str, tables: tuple[str, ...], days: tuple[date, ...]
) -> tuple:
    """The visible files of `days` in `tables` and the site's tombstone file, as stamps."""
    stamps: list[tuple[str, int, int, int]] = []
    for table in tables:
        for day in days:
            listing = read_day(layout.day_dir(data_dir, table, site_id, day))
            for f in [*listing.arrow, *listing.parquet]:
                st = os.stat(f)
                stamps.append((f, st.st_ino, st.st_mtime_ns, st.st_size))
    try:
        st = os.stat(layout.tombstone_file(data_dir, site_id))
        stamps.append(("tombstones", st.st_ino, st.st_mtime_ns, st.st_size))
    except FileNotFoundError:
        pass
    return tuple(stamps)


def remembered(key_of: Callable[[], tuple[Any, ...]], make: Callable[[], T]) -> T:
    """make(), or what it returned for the same key: `key_of()` names what it describes and the
    identity of the files it reads (see identity), before and after make() ran."""
    try:
        key = key_of()
    except FileNotFoundError:
        return make()  # a file went away while listed (a compaction): describe what is there
    with _lock:
        making = _making.setdefault(key, _Making())
        making.users += 1
    try:
        with making.lock:
            if making.value is not memory.MISSING:
                return making.value  # type: ignore[no-any-return]
            hit = memory.KEPT.get(("open day", key))
            if hit is not memory.MISSING:
                return hit  # type: ignore[no-any-return]
            value = make()
            try:
                same = key == key_of()
            except FileNotFoundError:
                same = False
            if same:  # read from rows: dearer to make again than any rollup part
                memory.KEPT.put(("open day", key), value, dear=True)
                making.value = value
            return value
    finally:
        with _lock:
            making.users -= 1
            if not making.users:
                _making.pop(key, None)


def of_day(
    kind: str, data_dir: Path, site_id: str, tables: tuple[str, ...], day: date,
    make: Callable[[], T], span: tuple[datetime, datetime] | None = None,
) -> T:  # fmt: skip
    """make() over one open day's files in `tables` (or over the slice `span` of the day, at an
    end of a window that is not made of whole UTC days), remembered (see remembered)."""
    return remembered(
        lambda: (kind, span, str(data_dir), site_id,
                 identity(data_dir, site_id, tables, (day,))),
        make,
    )  # fmt: skip


def clear() -> None:
    memory.KEPT.drop("open day")

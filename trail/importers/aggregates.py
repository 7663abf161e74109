"""Importing another tool's daily aggregates (Plausible, Fathom) into a site's imported tables
(trail.storage.imported), the same from the CLI and from the maintenance process's import jobs.

An import reads the archive twice: the first pass checks every file, line and value and writes
nothing, so a bad export changes nothing; the second writes. Each format module
(trail.importers.plausible, trail.importers.fathom) turns the archive into `Chunk`s: the rows of
every imported table for one calendar month of the export's range (or less, at its ends), which
`imported.replace` swaps in whole. Replacing by range makes an import idempotent: running it
again, or after it was killed halfway, leaves the same rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from trail.importers.archive import ImportFormatError, Member, open_zip
from trail.storage import imported

KINDS = ("plausible", "fathom")
# Rows of imported tables held before they are written (see _Batch).
BATCH_ROWS = 250_000


@dataclass
class Source:
    """One recognised CSV file of an export: what it holds and the days it covers."""

    member: Member
    name: str  # the format's name for the file's content ("visitors", "Pages", ...)
    header: list[str]
    first: date
    last: date
    sorted: bool = True  # rows come in date order (found by the checking pass)


@dataclass
class Plan:
    """What an archive holds, found from its names and headers before any row is read."""

    kind: str
    sources: list[Source]
    first: date
    last: date
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # the format's own facts

    @property
    def total_bytes(self) -> int:
        return sum(s.member.size for s in self.sources)


@dataclass
class Chunk:
    """The rows of some imported tables for the days first..last, to replace those days."""

    first: date
    last: date
    tables: dict[str, pl.DataFrame]
    source_rows: int = 0  # CSV rows read for it


@dataclass
class Summary:
    kind: str
    first: date
    last: date
    files: int
    source_rows: int
    stored_rows: dict[str, int]
    bytes: int
    seconds: float
    notes: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "files": self.files,
            "source_rows": self.source_rows,
            "stored_rows": self.stored_rows,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
        }


class Cancelled(Exception):
    """The import job was cancelled while it ran."""


def module(kind: str) -> ModuleType:
    """The format module of `kind`."""
    if kind == "plausible":
        from trail.importers import plausible

        return plausible
    if kind == "fathom":
        from trail.importers import fathom

        return fathom
    raise ValueError(f"unknown import type {kind!r}")


def inspect(kind: str, path: Path | str) -> Plan:
    """Check an archive completely (names, headers, every row) without writing; its plan.
    ImportFormatError names what is wrong."""
    fmt = module(kind)
    with open_zip(str(path)) as archive:
        plan: Plan = fmt.plan(archive)
        for _ in fmt.chunks(archive, plan, [0], keep=False):
            pass
    return plan


# (phase: "checking" or "writing", CSV rows of the phase so far, bytes read in the phase, bytes
# the phase reads in all)
Progress = Callable[[str, int, int, int], None]


def run(
    kind: str,
    path: Path | str,
    data_dir: Path | str,
    site_id: str,
    progress: Progress | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Summary:
    """Import the archive at `path` into the site's imported tables (checked first: nothing is
    written when any file is bad)."""
    began = time.monotonic()
    fmt = module(kind)
    with open_zip(str(path)) as archive:
        plan: Plan = fmt.plan(archive)
        total = plan.total_bytes
        for phase in ("checking", "writing"):
            counter = [0]
            rows = 0
            batch = _Batch(data_dir, site_id)
            for chunk in fmt.chunks(archive, plan, counter, keep=phase == "writing"):
                if cancelled is not None and cancelled():
                    raise Cancelled
                if phase == "writing":
                    batch.add(chunk)
                rows += chunk.source_rows
                if progress is not None:
                    progress(phase, rows, counter[0], total)
            batch.flush()
    return Summary(
        kind,
        plan.first,
        plan.last,
        len(plan.sources),
        rows,
        dict(sorted(batch.stored.items())),
        plan.total_bytes,
        time.monotonic() - began,
        plan.notes,
    )


class _Batch:
    """Consecutive chunks of the same tables, written with one `imported.replace` per table:
    each replace commits a manifest (with its fsyncs), so a month at a time would spend most of
    an import's time there. A batch is written when it holds `BATCH_ROWS` rows."""

    def __init__(self, data_dir: Path | str, site_id: str) -> None:
        self.data_dir = data_dir
        self.site_id = site_id
        self.chunks: list[Chunk] = []
        self.rows = 0
        self.stored: dict[str, int] = {}

    def add(self, chunk: Chunk) -> None:
        if self.chunks:
            last = self.chunks[-1]
            follows = last.last + timedelta(days=1) == chunk.first
            if not follows or sorted(last.tables) != sorted(chunk.tables):
                self.flush()
        self.chunks.append(chunk)
        self.rows += sum(f.height for f in chunk.tables.values())
        if self.rows >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.chunks:
            return
        first, last = self.chunks[0].first, self.chunks[-1].last
        for table in self.chunks[0].tables:
            frame = pl.concat([c.tables[table] for c in self.chunks])
            n = imported.replace(self.data_dir, self.site_id, table, first, last, frame)
            self.stored[table] = self.stored.get(table, 0) + n
        self.chunks, self.rows = [], 0


# -- helpers of the format modules -------------------------------------------------------------


def months(first: date, last: date) -> list[tuple[date, date]]:
    """first..last cut at month boundaries, in order."""
    out = []
    lo = first
    while lo <= last:
        nxt = (lo.replace(day=28) + timedelta(days=4)).replace(day=1)
        hi = min(last, nxt - timedelta(days=1))
        out.append((lo, hi))
        lo = nxt
    return out


def month_of(day: date) -> tuple[int, int]:
    return day.year, day.month


class Sums:
    """Counts summed per (table, date, dimension value), turned into the tables' frames."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[date, str], list[int]]] = {}

    def add(self, table: str, day: date, key: str, counts: tuple[int, ...]) -> None:
        rows = self.tables.setdefault(table, {})
        have = rows.get((day, key))
        if have is None:
            rows[(day, key)] = list(counts)
        else:
            for i, n in enumerate(counts):
                have[i] += n

    def frames(self, tables: list[str]) -> dict[str, pl.DataFrame]:
        """A frame for each of `tables` (empty when nothing was added: the days are cleared)."""
        return {t: frame(t, self.tables.get(t, {})) for t in tables}


def frame(table: str, rows: dict[tuple[date, str], list[int]]) -> pl.DataFrame:
    """The rows of one imported table as a frame of its columns."""
    columns = imported.TABLES[table]
    dim = imported.dimension(table)
    counts = [c for c in columns[1:] if c != dim]
    keys = sorted(rows)
    data: dict[str, Any] = {"date": pl.Series("date", [k[0] for k in keys], pl.Date())}
    if dim is not None:
        data[dim] = pl.Series(dim, [k[1] for k in keys], pl.String())
    for i, name in enumerate(counts):
        data[name] = pl.Series(name, [rows[k][i] for k in keys], pl.Int64())
    return pl.DataFrame(data).select(columns)


def check_range(source: Source, day: date, line: int) -> None:
    if not source.first <= day <= source.last:
        raise ImportFormatError(
            f"{day} is outside the file's range {source.first}..{source.last}",
            source.member.base,
            line,
            "date",
        )

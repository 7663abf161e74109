"""Imported statistics: daily aggregates from another analytics tool (Plausible, Fathom), per site.

Imports do not produce page views or sessions; they produce one row per day (and dimension value)
with counts, in the tables Pirsch keeps for the same purpose (pirsch-analytics/pirsch,
`pkg/db/schema/0026_imported.up.sql`: `imported_<name>`, columns `client_id, date, <dimension>,
<counts>`; the client id is the site here). `TABLES` names each table and its columns in order:
`date` (a `datetime.date`, the day in the source's own calendar), the dimension (a string, "" for
unknown), then the counts (integers 0 <= n < 2**32, stored as UInt32 as Pirsch does).

Interface (used by the importers and by the statistics):

- `replace(data_dir, site_id, table, first, last, rows) -> int` replaces the table's rows of the
  days first..last (inclusive) by `rows` (an iterable of dicts or a Polars DataFrame with exactly
  the table's columns) and returns how many rows it stored. Importing the same range again
  replaces it. ValueError naming the column for a missing, unknown or badly typed column, a
  negative or too large count, or a date outside first..last.
- `read(data_dir, site_id, table, first=None, last=None) -> polars.DataFrame`: the rows of those
  days (None: unbounded), ordered by date, with the table's columns.
- `delete(data_dir, site_id, first=None, last=None) -> int`: removes the rows of every table in
  the range (None: unbounded); returns how many rows went.
- `has_any(data_dir, site_id) -> bool`: whether the site holds any imported row.
- `ranges(data_dir, site_id) -> dict[str, tuple[date, date]]`: per table with rows, its first and
  last day.
- `fingerprint(data_dir, site_id) -> int`: changes with every replace or delete (result caches).

Deleting a site removes its imported files with the rest of its data (layout.remove_site_data).

Storage, under the data directory and apart from `segments/` (so compaction, exports, deletion
of collected rows and the site listing never see these files):

    <data_dir>/imported/site=<id>/manifest.json
    <data_dir>/imported/site=<id>/<table>-<YYYY-MM>-<generation>.parquet

One Parquet file per (table, month) holds that month's rows. The manifest names the live file of
each (table, month) with its first and last day and row count; it is the only thing a reader
trusts. A writer (under the site's lock) writes new month files under fresh names, fsyncs them,
then renames a new manifest into place, so a reader sees the old or the new set of files, never a
mix, even when a replace spans several months or a delete spans every table. Files the new
manifest no longer names are removed after a grace period (a reader holding the old manifest can
still open them); a reader that finds a file gone anyway reloads the manifest and retries.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from trail.storage import layout
from trail.storage.daydir import fsync_dir, write_atomic

MANIFEST = "manifest.json"
_LOCK = ".lock"
# Files a new manifest stopped naming stay this long for readers of the old one.
GRACE_S = 600.0
_MAX_COUNT = 2**32

COUNTS = ("visitors", "views", "sessions", "bounces", "session_duration")

# Short name -> columns, after Pirsch's imported_<name> tables (dimension column names as there).
TABLES: dict[str, tuple[str, ...]] = {
    "visitors": ("date", "visitors", "views", "sessions", "bounces", "session_duration"),
    "page": ("date", "path", "visitors", "views", "sessions", "bounces"),
    "entry_page": ("date", "entry_path", "visitors", "sessions"),
    "exit_page": ("date", "exit_path", "visitors", "sessions"),
    "referrer": ("date", "referrer", "visitors", "sessions", "bounces"),
    "utm_source": ("date", "utm_source", "visitors"),
    "utm_medium": ("date", "utm_medium", "visitors"),
    "utm_campaign": ("date", "utm_campaign", "visitors"),
    "country": ("date", "country_code", "visitors"),
    "region": ("date", "region", "visitors"),
    "city": ("date", "city", "visitors"),
    "language": ("date", "language", "visitors"),
    "browser": ("date", "browser", "visitors"),
    "os": ("date", "os", "visitors"),
    "device": ("date", "category", "visitors"),
}


def dimension(table: str) -> str | None:
    """The dimension column of a table (None for `visitors`, which has none)."""
    dim = TABLES[table][1]
    return None if dim in COUNTS else dim


def schema(table: str) -> dict[str, pl.DataType]:
    """The Polars schema of a table's rows."""
    return {
        c: pl.Date() if c == "date" else pl.UInt32() if c in COUNTS else pl.String()
        for c in TABLES[table]
    }


# -- paths and the manifest -------------------------------------------------------------------


def site_dir(data_dir: Path | str, site_id: str) -> Path:
    """`imported/site=<id>`; layout.SiteIdError for an id that fails `layout.is_site_id`."""
    return layout.imported_dir(data_dir, site_id)


@dataclass(frozen=True)
class Month:
    file: str
    first: date
    last: date
    rows: int


@dataclass
class Manifest:
    generation: int = 0
    # table -> "YYYY-MM" -> its live file
    tables: dict[str, dict[str, Month]] = field(default_factory=dict)
    # file name -> when the manifest stopped naming it (unix seconds)
    retired: dict[str, float] = field(default_factory=dict)

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        try:
            raw = orjson.loads((directory / MANIFEST).read_bytes())
        except FileNotFoundError:
            return cls()
        tables = {
            t: {
                m: Month(
                    v["file"],
                    date.fromisoformat(v["first"]),
                    date.fromisoformat(v["last"]),
                    v["rows"],
                )
                for m, v in months.items()
            }
            for t, months in raw.get("tables", {}).items()
        }
        return cls(int(raw.get("generation", 0)), tables, dict(raw.get("retired", {})))

    def write(self, directory: Path) -> None:
        body = {
            "generation": self.generation,
            "tables": {
                t: {
                    m: {
                        "file": v.file,
                        "first": v.first.isoformat(),
                        "last": v.last.isoformat(),
                        "rows": v.rows,
                    }
                    for m, v in sorted(months.items())
                }
                for t, months in sorted(self.tables.items())
                if months
            },
            "retired": self.retired,
        }
        write_atomic(directory / MANIFEST, orjson.dumps(body))


@contextmanager
def _locked(directory: Path) -> Iterator[Manifest]:
    """The site's manifest, under the lock every writer of the site's imported files takes."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / _LOCK, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield Manifest.read(directory)
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _months(first: date, last: date) -> list[str]:
    keys, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return keys


# -- validation -------------------------------------------------------------------------------


def _check_table(table: str) -> tuple[str, ...]:
    try:
        return TABLES[table]
    except KeyError:
        raise ValueError(f"table: unknown imported table {table!r}") from None


def _frame(table: str, rows: Iterable[Mapping[str, Any]] | pl.DataFrame) -> pl.DataFrame:
    """`rows` as a DataFrame of the table's schema; ValueError naming the first bad column."""
    columns = _check_table(table)
    types = schema(table)
    if isinstance(rows, pl.DataFrame):
        _check_names(columns, rows.columns)
        return pl.DataFrame([_column(rows.get_column(c), types[c]) for c in columns])
    values: dict[str, list[Any]] = {c: [] for c in columns}
    for i, row in enumerate(rows):
        _check_names(columns, list(row), f" (row {i})")
        for c in columns:
            values[c].append(row[c])
    return pl.DataFrame([_series(c, types[c], values[c]) for c in columns])


def _check_names(columns: tuple[str, ...], given: list[str], where: str = "") -> None:
    for c in columns:
        if c not in given:
            raise ValueError(f"{c}: missing column{where}")
    for c in given:
        if c not in columns:
            raise ValueError(f"{c}: unknown column{where}")


def _column(column: pl.Series, dtype: pl.DataType) -> pl.Series:
    """A DataFrame column checked and cast at once (the element-wise check is for small inputs)."""
    name = column.name
    if column.null_count():
        raise ValueError(f"{name}: null in row {column.is_null().arg_true()[0]}")
    ok = (
        column.dtype == pl.Date or column.dtype == pl.String
        if name == "date"
        else column.dtype.is_integer()
        and (column.len() == 0 or (column.min() >= 0 and column.max() < _MAX_COUNT))  # type: ignore[operator]
        if name in COUNTS
        else column.dtype == pl.String
    )
    if not ok or (name == "date" and column.dtype == pl.String):
        return _series(name, dtype, column.to_list())  # names the first bad value
    return column.cast(dtype)


def _series(name: str, dtype: pl.DataType, values: list[Any]) -> pl.Series:
    if name == "date":
        return pl.Series(name, [_day(v) for v in values], pl.Date())
    if name in COUNTS:
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < _MAX_COUNT:
                raise ValueError(f"{name}: expected an integer 0 <= n < 2**32, got {v!r}")
        return pl.Series(name, values, dtype)
    for v in values:
        if not isinstance(v, str):
            raise ValueError(f"{name}: expected a string, got {v!r}")  # noqa: TRY004 (one error type for bad rows)
    return pl.Series(name, values, dtype)


def _day(value: Any) -> date:
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"date: expected a date (YYYY-MM-DD), got {value!r}")


# -- writing ----------------------------------------------------------------------------------


def replace(
    data_dir: Path | str,
    site_id: str,
    table: str,
    first: date,
    last: date,
    rows: Iterable[Mapping[str, Any]] | pl.DataFrame,
) -> int:
    """Replace the table's rows of the site for first..last (inclusive) by `rows`; the number of
    rows stored. Atomic and crash-safe: readers see the old rows or the new ones."""
    if last < first:
        raise ValueError(f"last: {last} is before first {first}")
    new = _frame(table, rows)
    outside = new.filter(~pl.col("date").is_between(first, last))
    if outside.height:
        raise ValueError(f"date: {outside['date'][0]} is outside {first}..{last}")
    directory = site_dir(data_dir, site_id)
    with _locked(directory) as manifest:
        _stage(directory, manifest, table, first, last, new)
        _commit(directory, manifest)
    return new.height


def delete(
    data_dir: Path | str, site_id: str, first: date | None = None, last: date | None = None
) -> int:
    """Remove the site's imported rows of first..last (None: unbounded) in every table; how many
    rows went."""
    directory = site_dir(data_dir, site_id)
    if not (directory / MANIFEST).exists():
        return 0
    with _locked(directory) as manifest:
        before = _row_count(manifest)
        for table, months in list(manifest.tables.items()):
            if not months:
                continue
            lo = min(m.first for m in months.values())
            hi = max(m.last for m in months.values())
            lo, hi = max(lo, first or lo), min(hi, last or hi)
            if lo <= hi:
                _stage(directory, manifest, table, lo, hi, pl.DataFrame(schema=schema(table)))
        _commit(directory, manifest)
        return before - _row_count(manifest)


def _stage(
    directory: Path, manifest: Manifest, table: str, first: date, last: date, new: pl.DataFrame
) -> None:
    """Write the new files of every month of first..last into `manifest` (not committed yet)."""
    months = manifest.tables.setdefault(table, {})
    generation = manifest.generation + 1
    for key in _months(first, last):
        old = months.get(key)
        kept = (
            _read_file(directory / old.file, table) if old else pl.DataFrame(schema=schema(table))
        )
        kept = kept.filter(~pl.col("date").is_between(first, last))
        added = new.filter(pl.col("date").dt.strftime("%Y-%m") == key)
        rows = pl.concat([kept, added]).sort("date", maintain_order=True)
        if old:
            manifest.retired[old.file] = time.time()
            del months[key]
        if rows.height:
            name = f"{table}-{key}-{generation}.parquet"
            _write_parquet(directory / name, rows)
            months[key] = Month(name, rows["date"].min(), rows["date"].max(), rows.height)  # type: ignore[arg-type]


def _commit(directory: Path, manifest: Manifest) -> None:
    manifest.generation += 1
    now = time.time()
    expired = [name for name, at in manifest.retired.items() if now - at > GRACE_S]
    for name in expired:
        del manifest.retired[name]
    manifest.write(directory)
    named = {m.file for months in manifest.tables.values() for m in months.values()}
    for name in os.listdir(directory):
        # Expired files, and files of a writer that crashed before its manifest was renamed.
        if name.endswith(".parquet") and name not in named and name not in manifest.retired:
            try:
                os.unlink(directory / name)
            except FileNotFoundError:
                pass


def _write_parquet(path: Path, rows: pl.DataFrame) -> None:
    tmp = path.with_name(layout.temp_name(path.name))
    rows.write_parquet(tmp, compression="zstd", statistics=True)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _row_count(manifest: Manifest) -> int:
    return sum(m.rows for months in manifest.tables.values() for m in months.values())


# -- reading ----------------------------------------------------------------------------------


def read(
    data_dir: Path | str,
    site_id: str,
    table: str,
    first: date | None = None,
    last: date | None = None,
) -> pl.DataFrame:
    """The table's rows of the site for first..last (None: unbounded), ordered by date."""
    _check_table(table)
    if not layout.is_site_id(site_id):
        return pl.DataFrame(schema=schema(table))
    directory = site_dir(data_dir, site_id)
    for _ in range(3):
        months = Manifest.read(directory).tables.get(table, {})
        files = [
            directory / m.file
            for m in months.values()
            if (first is None or m.last >= first) and (last is None or m.first <= last)
        ]
        try:
            frames = [_read_file(f, table) for f in sorted(files)]
        except FileNotFoundError:
            continue  # the manifest changed under us and the grace period ran out: read it again
        break
    else:
        raise OSError(f"imported files of site {site_id} keep changing")
    rows = pl.concat(frames) if frames else pl.DataFrame(schema=schema(table))
    if first is not None:
        rows = rows.filter(pl.col("date") >= first)
    if last is not None:
        rows = rows.filter(pl.col("date") <= last)
    return rows.sort("date", maintain_order=True)


def _read_file(path: Path, table: str) -> pl.DataFrame:
    return pl.read_parquet(path).select(TABLES[table]).cast(schema(table))  # type: ignore[arg-type]


def has_any(data_dir: Path | str, site_id: str) -> bool:
    """Whether the site holds any imported row."""
    if not layout.is_site_id(site_id):
        return False
    return any(Manifest.read(site_dir(data_dir, site_id)).tables.values())


def ranges(data_dir: Path | str, site_id: str) -> dict[str, tuple[date, date]]:
    """Per table with rows: its first and last day."""
    if not layout.is_site_id(site_id):
        return {}
    tables = Manifest.read(site_dir(data_dir, site_id)).tables
    return {
        t: (min(m.first for m in months.values()), max(m.last for m in months.values()))
        for t, months in sorted(tables.items())
        if months
    }


def fingerprint(data_dir: Path | str, site_id: str) -> int:
    """A number that changes with every replace or delete of the site's imported rows (the
    manifest's generation; 0 when there is none)."""
    if not layout.is_site_id(site_id):
        return 0
    return Manifest.read(site_dir(data_dir, site_id)).generation

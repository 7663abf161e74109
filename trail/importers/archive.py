"""Reading another tool's export zip safely: its members checked before any is read, each CSV
streamed row by row, every problem named by file, line and column.

A zip says how large each member unpacks to, and `zipfile` never reads past that size (a member
that holds more fails its CRC check), so the declared sizes are checked before reading: at most
`MAX_MEMBERS` members, `MAX_UNPACKED_BYTES` in all, and no member larger than 1 MiB that unpacks
to more than `MAX_RATIO` times its packed size (CSV exports pack 5-30 times; a zip bomb packs
hundreds of times). Encrypted members and members that fail their CRC are refused.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath
from typing import IO

# The largest upload the API takes (the zip as sent).
MAX_UPLOAD_BYTES = int(os.environ.get("TRAIL_IMPORT_MAX_BYTES", str(512 << 20)))
# What all members may unpack to, together.
MAX_UNPACKED_BYTES = int(os.environ.get("TRAIL_IMPORT_MAX_UNPACKED_BYTES", str(8 << 30)))
MAX_RATIO = 200
RATIO_FLOOR = 1 << 20  # smaller members may pack as well as they like
MAX_MEMBERS = 1000
MAX_COUNT = 2**32  # counts are stored as UInt32 (trail.storage.imported)
# The longest CSV field (a page path) read; csv's own default is 128 KiB.
MAX_FIELD = 64 << 10


class ImportFormatError(ValueError):
    """An export that cannot be imported: what is wrong and where (file, line, column)."""

    def __init__(self, problem: str, file: str = "", line: int = 0, column: str = "") -> None:
        where = ", ".join(
            p
            for p in (file, f"line {line}" if line else "", f"column {column!r}" if column else "")
            if p
        )
        super().__init__(f"{where}: {problem}" if where else problem)
        self.problem = problem
        self.file = file
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Member:
    """A CSV member of the archive: its name in the zip and its base name."""

    name: str
    base: str
    packed: int
    size: int


def open_zip(source: str | os.PathLike[str] | IO[bytes]) -> zipfile.ZipFile:
    """The archive; ImportFormatError when it is not a readable zip."""
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
        raise ImportFormatError(f"not a zip archive ({e})") from None


def csv_members(archive: zipfile.ZipFile) -> list[Member]:
    """The CSV files of the archive, after the size checks of the module doc. Folders, and the
    files macOS adds (`__MACOSX/`, `._*`, `.DS_Store`), are skipped; any other file that is not a
    `.csv` is an error."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ImportFormatError(f"holds {len(infos)} files, at most {MAX_MEMBERS} are read")
    members: list[Member] = []
    total = 0
    for info in infos:
        path = PurePosixPath(info.filename)
        if info.is_dir() or "__MACOSX" in path.parts or path.name.startswith("._"):
            continue
        if path.name == ".DS_Store":
            continue
        if info.flag_bits & 0x1:
            raise ImportFormatError("encrypted files cannot be read", info.filename)
        if path.suffix.lower() != ".csv":
            raise ImportFormatError("not a CSV file of the export", info.filename)
        total += info.file_size
        if total > MAX_UNPACKED_BYTES:
            raise ImportFormatError(
                f"the files unpack to more than {MAX_UNPACKED_BYTES} bytes", info.filename
            )
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise ImportFormatError(
                f"unpacks to {info.file_size} bytes from {info.compress_size} "
                f"(more than {MAX_RATIO} times): refused as a zip bomb",
                info.filename,
            )
        members.append(Member(info.filename, path.name, info.compress_size, info.file_size))
    if not members:
        raise ImportFormatError("holds no CSV file")
    return members


class _Counted(io.RawIOBase):
    """A member's bytes, counted as they are read (progress in bytes)."""

    def __init__(self, raw: IO[bytes], counter: list[int]) -> None:
        self.raw = raw
        self.counter = counter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.counter[0] += n
        return n

    def close(self) -> None:
        self.raw.close()
        super().close()


def open_csv(
    archive: zipfile.ZipFile, member: Member, counter: list[int] | None = None
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header of a member (names stripped) and an iterator over its data rows as (line,
    cells); blank lines are skipped, a row with another number of fields is an error.
    `counter[0]` grows by the bytes read."""
    lines = _lines(archive, member, counter if counter is not None else [0])
    first = next(lines, None)
    if first is None:
        raise ImportFormatError("empty file (no header line)", member.base, 1)
    return [h.strip() for h in first[1]], lines


def _lines(
    archive: zipfile.ZipFile, member: Member, counter: list[int]
) -> Iterator[tuple[int, list[str]]]:
    try:
        with archive.open(member.name) as raw:
            text = io.TextIOWrapper(
                io.BufferedReader(_Counted(raw, counter), 1 << 16),
                encoding="utf-8-sig",
                newline="",
            )
            reader = csv.reader(text)
            width = -1
            for cells in reader:
                if not cells or cells == [""]:
                    continue
                if width < 0:
                    width = len(cells)
                elif len(cells) != width:
                    raise ImportFormatError(
                        f"{len(cells)} fields, the header has {width}", member.base, reader.line_num
                    )
                yield reader.line_num, cells
    except csv.Error as e:
        raise ImportFormatError(f"not valid CSV ({e})", member.base) from None
    except UnicodeDecodeError:
        raise ImportFormatError("not UTF-8 text", member.base) from None
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise ImportFormatError(f"damaged in the zip ({e})", member.base) from None


def check_columns(
    member: Member, header: list[str], required: tuple[str, ...], known: frozenset[str]
) -> None:
    """ImportFormatError naming the first missing or unknown column."""
    for name in required:
        if name not in header:
            raise ImportFormatError("missing column", member.base, 1, name)
    for name in header:
        if name not in known:
            raise ImportFormatError("unknown column", member.base, 1, name)
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise ImportFormatError("repeated column", member.base, 1, dup)


csv.field_size_limit(MAX_FIELD)


# -- values ------------------------------------------------------------------------------------


def count(value: str, file: str, line: int, column: str) -> int:
    """A non-negative whole number (an empty cell is 0)."""
    text = value.strip()
    if not text:
        return 0
    if text.isdigit() and text.isascii():
        out = int(text)
        if out < MAX_COUNT:
            return out
        raise ImportFormatError(f"larger than {MAX_COUNT - 1}: {value}", file, line, column)
    raise ImportFormatError(f"not a whole number >= 0: {value!r}", file, line, column)


def number(value: str, file: str, line: int, column: str) -> float:
    """A non-negative decimal number (an empty cell is 0)."""
    text = value.strip()
    if not text:
        return 0.0
    try:
        out = float(text)
    except ValueError:
        out = -1.0
    if not out >= 0 or out == float("inf"):
        raise ImportFormatError(f"not a number >= 0: {value!r}", file, line, column)
    return out


def day(value: str, file: str, line: int, column: str = "date") -> date:
    """A YYYY-MM-DD date."""
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ImportFormatError(f"not a date (YYYY-MM-DD): {value!r}", file, line, column)

"""Reading export archives (trail.importers.archive): what is refused before a row is read."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from import_exports import VISITORS_HEADER, bomb, write, zip_of

from trail.importers import aggregates
from trail.importers.archive import MAX_MEMBERS, ImportFormatError, count, day, number

NAME = "imported_visitors_20240101_20240101.csv"


def _damaged() -> bytes:
    data = bytearray(zip_of({NAME: f"{VISITORS_HEADER}\n" + "2024-01-01,1,1,1,1,1\n" * 2000}))
    at = data.index(b"PK\x01\x02")  # the central directory's entry of the member
    data[at + 16] ^= 0xFF  # its CRC-32 no longer matches the data
    return bytes(data)


CASES = [
    (b"PK\x03\x04 this is not a zip", "not a zip archive"),
    (b"", "not a zip archive"),
    (bomb(), f"{NAME}: unpacks to {(64 << 20) + len(VISITORS_HEADER) + 1} bytes from"),
    (zip_of({}), "holds no CSV file"),
    (zip_of({f"x{i}.csv": "" for i in range(MAX_MEMBERS + 1)}),
     f"holds {MAX_MEMBERS + 1} files, at most {MAX_MEMBERS} are read"),
    (_damaged(), f"{NAME}: damaged in the zip"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), CASES, ids=[m[:30] for _, m in CASES])
def test_refused_archives(tmp_path: Path, data: bytes, message: str) -> None:
    archive = write(tmp_path / "a.zip", data)
    with pytest.raises(ImportFormatError) as e:
        aggregates.inspect("plausible", archive)
    assert str(e.value).startswith(message), str(e.value)


def test_macos_extras_are_skipped(tmp_path: Path) -> None:
    files = {
        f"export/{NAME}": f"{VISITORS_HEADER}\n2024-01-01,1,1,1,1,1\n",
        "__MACOSX/export/._imported_visitors_20240101_20240101.csv": "junk",
        "export/.DS_Store": "junk",
    }
    plan = aggregates.inspect("plausible", write(tmp_path / "a.zip", zip_of(files)))
    assert [s.member.base for s in plan.sources] == [NAME]


def test_stored_members_and_crlf_lines(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(NAME, f"\ufeff{VISITORS_HEADER}\r\n2024-01-01,4,5,1,4,30\r\n\r\n")
    summary = aggregates.run("plausible", write(tmp_path / "a.zip", buf.getvalue()), tmp_path, "s")
    assert summary.source_rows == 1 and summary.stored_rows == {"visitors": 1}


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0), ("42", 42), ("", 0), (" 7 ", 7), ("4294967295", 2**32 - 1)]
)
def test_counts(text: str, value: int) -> None:
    assert count(text, "f.csv", 2, "visitors") == value


@pytest.mark.parametrize("text", ["-1", "1.5", "1e3", "x", "4294967296", "١٢"])
def test_bad_counts(text: str) -> None:
    with pytest.raises(ImportFormatError, match=r"f\.csv, line 2, column 'visitors'"):
        count(text, "f.csv", 2, "visitors")


@pytest.mark.parametrize(
    ("text", "ok"), [("12.5", True), ("0", True), ("nan", False), ("-2", False), ("inf", False)]
)
def test_numbers(text: str, ok: bool) -> None:
    if ok:
        assert number(text, "f.csv", 3, "rate") == float(text)
    else:
        with pytest.raises(ImportFormatError, match="line 3, column 'rate'"):
            number(text, "f.csv", 3, "rate")


@pytest.mark.parametrize("text", ["2024-1-01", "2024-02-30", "20240101", "2024-01-01T00:00"])
def test_bad_days(text: str) -> None:
    with pytest.raises(ImportFormatError, match="not a date"):
        day(text, "f.csv", 4)

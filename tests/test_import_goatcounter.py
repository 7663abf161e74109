"""`trail import goatcounter` (docs/import.md): GoatCounter CSV exports written here in the real
format (version 2) from known traffic, imported through the CLI into the data directory of a
running server, which must answer what the traffic implies; reruns, an import killed halfway,
and bad files (refused, nothing written)."""

from __future__ import annotations

import csv
import gzip
import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.server import TrailServer
from trail.importers.goatcounter import blocks, record_end, row_problem
from trail.importers.progress import ImportProgress
from trail.storage import layout
from trail.storage.meta import MetaStore
from trail.storage.models import Site

HEADER = ["2Path", "Title", "Event", "UserAgent", "Browser", "System", "Session", "Bot",
          "Referrer", "Referrer scheme", "Screen size", "Location", "FirstVisit", "Date"]  # fmt: skip
ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
RANGE = {"from": "2026-11-02", "to": "2026-11-04"}


@dataclass
class Visit:
    """One GoatCounter session: its client and its hits (time, path, title, event?)."""

    session: str
    browser: str = ""
    system: str = ""
    user_agent: str = ""
    referrer: str = ""
    scheme: str = ""
    width: int = 0
    location: str = ""
    bot: int = 0

    def rows(self, hits: list[tuple[str, str, str, bool]]) -> list[list[str]]:
        out = []
        for i, (when, path, title, event) in enumerate(hits):
            first = i == 0
            out.append([path, title, "true" if event else "false", self.user_agent,
                        self.browser, self.system, self.session, str(self.bot),
                        self.referrer if first else "", self.scheme if first else "",
                        f"{self.width},0,1", self.location, "true" if first else "false",
                        when])  # fmt: skip
        return out


def known_rows() -> list[list[str]]:
    """The traffic the expected answers below follow from."""
    chrome = Visit("0a1b2c3d4e5f607-8091a2b3c4d5e6f7", "Chrome 120", "Windows 10",
                   referrer="www.google.com/search", scheme="h", width=1920, location="US-CA")  # fmt: skip
    firefox = Visit("1a1b2c3d4e5f607-8091a2b3c4d5e6f7", "Firefox 125", "Linux",
                    referrer="Hacker News", scheme="g", width=1280, location="DE")  # fmt: skip
    safari = Visit("2a1b2c3d4e5f607-8091a2b3c4d5e6f7", "Safari 17.4", "iOS 17.4", width=390,
                   location="FR")  # fmt: skip
    bot = Visit("3a1b2c3d4e5f607-8091a2b3c4d5e6f7", "Chrome 120", "Linux", bot=7)
    android = Visit("4a1b2c3d4e5f607-8091a2b3c4d5e6f7", user_agent=ANDROID_UA,
                    referrer="newsletter", scheme="c", width=412, location="GB")  # fmt: skip
    return [
        *chrome.rows([("2026-11-02T10:00:00Z", "/", "Home", False),
                      ("2026-11-02T10:02:00Z", "/docs?page=2", "Docs", False),
                      ("2026-11-02T10:03:00Z", "download", "Docs", True),
                      ("2026-11-02T10:05:00Z", "/pricing", "Pricing", False)]),
        *firefox.rows([("2026-11-02T11:00:00Z", "/", "Home", False)]),
        # A reload (one page: a bounce), then 59 minutes later a second session.
        *safari.rows([("2026-11-03T09:00:00Z", "/docs", "Docs", False),
                      ("2026-11-03T09:01:00Z", "/docs", "Docs", False),
                      ("2026-11-03T10:00:00Z", "/", "Home", False)]),
        *bot.rows([("2026-11-03T12:00:00Z", "/", "Home", False),
                   ("2026-11-03T12:00:01Z", "/admin", "Admin", False)]),
        *android.rows([("2026-11-04T08:00:00Z", "/", "Home", False),
                       ("2026-11-04T08:00:30Z", "signup", "Home", True),
                       ("2026-11-04T08:01:00Z", "/pricing", "Pricing", False)]),
    ]  # fmt: skip


def write_export(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    """A GoatCounter export as its CSV writer writes it (Go's encoding/csv), gzipped for .gz."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    data = buf.getvalue().encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def run_import(
    data_dir: Path, site: str, file: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trail", "import", "goatcounter", "--data-dir", str(data_dir),
         "--site", site, *extra, str(file)],
        check=False, capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def answers(server: TrailServer, site: str, **extra: str) -> dict[str, Any]:
    params = {**RANGE, **extra}
    return {
        name: server.stats(name, site, **params)
        for name in ("total", "visitor", "page", "referrer", "country", "platform", "events",
                     "browser", "os", "screen", "page/entry", "page/exit")
    }  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    data_dir = tmp_path_factory.mktemp("goatcounter") / "data"
    data_dir.mkdir()
    s = TrailServer(data_dir, workers=1).start()
    yield s
    assert s.stop() == 0


def pick(rows: list[dict[str, Any]], key: str, *fields: str) -> dict[str, tuple[Any, ...]]:
    return {r[key]: tuple(r[f] for f in fields) for r in rows}


def test_known_traffic_answers_what_it_implies(server: TrailServer, tmp_path: Path) -> None:
    site, _ = server.create_site("gc.example")
    export = write_export(tmp_path / "goatcounter-export.csv.gz", known_rows())
    done = run_import(server.data_dir, site, export)
    assert done.returncode == 0, done.stderr
    summary = " ".join(done.stdout.split())
    assert "13 rows read, 2 bot rows skipped 9 page views 2 events 5 sessions" in summary
    assert "3 days (2026-11-02..2026-11-04 UTC)" in summary
    got = answers(server, site)
    total = got["total"]
    assert (total["visitors"], total["views"], total["sessions"], total["bounces"]) == (4, 9, 5, 3)
    days = {r["day"][:10]: (r["visitors"], r["views"], r["sessions"], r["bounces"])
            for r in got["visitor"]}  # fmt: skip
    assert days == {"2026-11-02": (2, 4, 2, 1), "2026-11-03": (1, 3, 2, 2),
                    "2026-11-04": (1, 2, 1, 0)}  # fmt: skip
    assert pick(got["page"], "path", "visitors", "views") == {
        "/": (4, 4), "/docs": (2, 3), "/pricing": (2, 2)}  # fmt: skip
    assert pick(got["page/entry"], "path", "entries") == {"/": (4,), "/docs": (1,)}
    assert pick(got["page/exit"], "path", "exits") == {"/": (2,), "/pricing": (2,), "/docs": (1,)}
    assert pick(got["referrer"], "referrer_name", "referrer", "visitors", "bounces") == {
        "": ("", 1, 2),
        "Google": ("https://www.google.com/search", 1, 0),
        "Hacker News": ("", 1, 1),
        "newsletter": ("", 1, 0),
    }
    assert pick(got["country"], "country_code", "visitors") == {
        "us": (1,), "de": (1,), "fr": (1,), "gb": (1,)}  # fmt: skip
    # GoatCounter records a region as its ISO 3166-2 code; reports name it as collected rows do.
    regions = server.stats("region", site, **RANGE)
    named = [(r["country_code"], r["region"], r["visitors"]) for r in regions if r["region"]]
    assert named == [("us", "California", 1)]
    platform = got["platform"]
    assert (platform["platform_desktop"], platform["platform_mobile"]) == (2, 2)
    assert pick(got["events"], "name", "count", "visitors") == {
        "download": (1, 1), "signup": (1, 1)}  # fmt: skip
    assert pick(got["browser"], "browser", "visitors") == {
        "Chrome": (2,), "Firefox": (1,), "Safari": (1,)}  # fmt: skip
    assert pick(got["os"], "os", "visitors") == {
        "Windows": (1,), "Linux": (1,), "iOS": (1,), "Android": (1,)}  # fmt: skip
    # The imported rows answer filters like live ones: the mobile visitors' pages.
    mobile = server.stats("page", site, **RANGE, platform="mobile")
    assert pick(mobile, "path", "visitors", "views") == {
        "/": (2, 2), "/docs": (1, 2), "/pricing": (1, 1)}  # fmt: skip

    again = run_import(server.data_dir, site, export)
    assert again.returncode == 0, again.stderr
    assert answers(server, site) == got


def test_killed_halfway_then_rerun_gives_the_same(server: TrailServer, tmp_path: Path) -> None:
    rows = many_days(45)
    export = write_export(tmp_path / "long.csv.gz", rows)
    whole, _ = server.create_site("whole.example")
    done = run_import(server.data_dir, whole, export)
    assert done.returncode == 0, done.stderr
    want = answers(server, whole, **{"from": "2026-09-01", "to": "2026-10-31"})

    cut, _ = server.create_site("cut.example")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trail", "import", "goatcounter", "--data-dir",
         str(server.data_dir), "--site", cut, str(export)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # Killed once the first day's part is on disk: days are written one by one, so the import
    # is still going (45 days of writing are left).
    sessions = layout.site_dir(server.data_dir, "sessions", cut)
    while proc.poll() is None and not any(sessions.glob("day=*/*.parquet")):
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    partial = answers(server, cut, **{"from": "2026-09-01", "to": "2026-10-31"})
    assert partial["total"]["views"] < want["total"]["views"]

    done = run_import(server.data_dir, cut, export)
    assert done.returncode == 0, done.stderr
    assert answers(server, cut, **{"from": "2026-09-01", "to": "2026-10-31"}) == want


def test_sessions_split_into_many_buckets_give_the_same(
    server: TrailServer, tmp_path: Path
) -> None:
    # The file is read in batches and its sessions built bucket by bucket: with buckets of
    # 512 bytes of CSV (dozens of them here) the rows must be those of one bucket.
    export = write_export(tmp_path / "buckets.csv", [*many_days(20), *known_rows()])
    window = {"from": "2026-09-01", "to": "2026-11-30"}
    one, _ = server.create_site("one-bucket.example")
    done = run_import(server.data_dir, one, export, "--json")
    assert done.returncode == 0, done.stderr
    many, _ = server.create_site("many-buckets.example")
    split = run_import(server.data_dir, many, export, "--json",
                       env={"TRAIL_IMPORT_BUCKET_BYTES": "512"})  # fmt: skip
    assert split.returncode == 0, split.stderr
    keys = ("rows", "bots", "page_views", "events", "sessions", "days", "tables")
    got, want = orjson.loads(split.stdout), orjson.loads(done.stdout)
    assert {k: got[k] for k in keys} == {k: want[k] for k in keys}
    assert want["rows"] == 13 + 20 * 7 and want["page_views"] == 9 + 20 * 5
    assert answers(server, many, **window) == answers(server, one, **window)

    def sessions(site: str) -> list[str]:  # visitor ids are keyed by the site: left out
        listed = server.stats("session/list", site, **{"from": "2026-09-10", "to": "2026-09-11"})
        return sorted(orjson.dumps({**s, "visitor_id": 0}, option=orjson.OPT_SORT_KEYS).decode()
                      for s in listed)  # fmt: skip

    assert len(sessions(one)) == 6 and sessions(many) == sessions(one)


def test_a_bad_row_after_the_first_batch_writes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    site = new_site(data_dir)
    rows = known_rows() * 12_000  # 156,000 rows, 16 MB: the bad last one is past the first block
    rows[-1] = [*rows[-1][:13], "yesterday"]
    export = write_export(tmp_path / "late.csv", rows)
    assert export.stat().st_size > 12 << 20  # the first block read is 8 MiB
    done = run_import(data_dir, site, export)
    assert done.returncode == 1
    assert "line 156001: column Date: 'yesterday' is not an RFC 3339 time" in done.stderr
    assert not (data_dir / "segments").exists()


def many_days(n: int) -> list[list[str]]:
    """Three visits a day for n days from 2026-09-10: two pages, one event, one bounce."""
    rows: list[list[str]] = []
    start = datetime(2026, 9, 10, 8, tzinfo=UTC)
    for d in range(n):
        for v in range(3):
            t = start + timedelta(days=d, hours=v)
            visit = Visit(f"{d:04x}{v:02x}-ffff", "Firefox 125", "Windows 10", width=1440,
                          location="NL", referrer=f"blog{v}.example/post", scheme="h")  # fmt: skip
            hits = [(t, "/", "Home", False)]
            if v:
                hits += [(t + timedelta(seconds=40), f"/p{d % 7}", "Page", False),
                         (t + timedelta(seconds=50), "click", "Page", True)]  # fmt: skip
            rows += visit.rows(
                [(w.strftime("%Y-%m-%dT%H:%M:%SZ"), p, ti, e) for w, p, ti, e in hits]
            )
    return rows


# -- bad files: refused, nothing written --------------------------------------------------------


def new_site(data_dir: Path) -> str:
    meta = MetaStore.open(data_dir / "meta")
    try:
        return meta.create_site(Site(id="", hostname="bad.example", subdomain="bad")).id
    finally:
        meta.close()


def good_rows() -> list[list[str]]:
    return known_rows()[:6]


def truncated_gzip(path: Path) -> Path:
    data = gzip.compress(write_export(path.with_suffix(".tmp"), good_rows()).read_bytes())
    path.write_bytes(data[: len(data) // 2])
    return path


def bad_row(index: int, column: int, value: str) -> list[list[str]]:
    rows = good_rows()
    rows[index][column] = value
    return rows


def a_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("export.csv", "x")
    return path


BAD_FILES = [
    # (file name, how to write it, what the message must say)
    ("header.csv", lambda p: write_export(p, good_rows(), ["Path", *HEADER[1:]]),
     "line 1: not the header of a GoatCounter CSV export"),
    ("v1.csv", lambda p: write_export(p, good_rows(), ["1Path", *HEADER[1:]]),
     "line 1: a GoatCounter export of format version 1; this reads version 2"),
    ("date.csv.gz", lambda p: write_export(p, bad_row(3, 13, "2026-11-02 10:05")),
     "line 5: column Date: '2026-11-02 10:05' is not an RFC 3339 time"),
    ("future.csv", lambda p: write_export(p, bad_row(0, 13, "2999-01-01T00:00:00Z")),
     "line 2: column Date: '2999-01-01T00:00:00Z' is in the future"),
    ("columns.csv", lambda p: write_export(p, [*good_rows()[:2], good_rows()[2][:12]]),
     "line 4: 12 columns, a version 2 export has 14"),
    ("event.csv", lambda p: write_export(p, bad_row(1, 2, "maybe")),
     "line 3: column Event: 'maybe' is not true or false"),
    ("truncated.csv.gz", truncated_gzip, "the gzip stream ends early (a truncated file)"),
    ("export.zip", a_zip, "a zip archive, not a GoatCounter export"),
    ("missing.csv", lambda p: p, "no such file"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "write", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_are_refused_and_change_nothing(
    tmp_path: Path, name: str, write: Any, message: str
) -> None:
    data_dir = tmp_path / "data"
    site = new_site(data_dir)
    file = write(tmp_path / name)
    done = run_import(data_dir, site, file)
    assert done.returncode == 1
    last = done.stderr.splitlines()[-1]
    assert last.startswith("trail: import goatcounter: ") and message in last, done.stderr
    assert not (data_dir / "segments").exists()


def test_a_file_larger_than_the_limit_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    site = new_site(data_dir)
    file = write_export(tmp_path / "big.csv.gz", known_rows())
    done = subprocess.run(
        [sys.executable, "-m", "trail", "import", "goatcounter", "--data-dir", str(data_dir),
         "--site", site, str(file)],
        check=False, capture_output=True, text=True, timeout=120,
        env={**os.environ, "TRAIL_IMPORT_MAX_BYTES": "1000"},
    )  # fmt: skip
    assert done.returncode == 1 and "unpacks to more than 1,000 bytes" in done.stderr
    assert not (data_dir / "segments").exists()


# -- the parts ----------------------------------------------------------------------------------


ROWS = [
    # (row, problem or None)
    (["/", "", "false", "", "", "", "s", "0", "", "", "0,0,1", "", "true", "2020-12-01T00:07:10Z"],
     None),
    (["/", "", "1", "", "", "", "s", "", "", "", "", "", "0", "2020-12-01T01:07:10.5+01:00"], None),
    (["/", "", "false", "", "", "", "s", "x", "", "", "", "", "true", "2020-12-01T00:07:10Z"],
     "column Bot: 'x' is not a number"),
    (["/", "", "false", "", "", "", "s", "0", "", "", "", "", "yes", "2020-12-01T00:07:10Z"],
     "column FirstVisit: 'yes' is not true or false"),
    (["/", "", "false", "", "", "", "s", "0", "", "", "", "", "true", "2020-02-30T00:07:10Z"],
     "column Date: '2020-02-30T00:07:10Z' is not a valid time"),
    (["/", "", "false", "", "", "", "s", "0", "", "", "", "", "true", "1969-12-31T23:59:59Z"],
     "column Date: '1969-12-31T23:59:59Z' is before 1970"),
    (["/"] * 15, "15 columns, a version 2 export has 14"),
]  # fmt: skip


@pytest.mark.parametrize(("row", "problem"), ROWS)
def test_row_problems(row: list[str], problem: str | None) -> None:
    assert row_problem(row) == problem


def test_progress_writes_plain_lines_off_a_terminal() -> None:
    out = io.StringIO()
    p = ImportProgress("import goatcounter", out, every=0.0)
    p.begin("read", 1000)
    p.advance(250, 0, 250)
    p.begin("write", 4)
    p.step("sessions 2026-11-02", 10, 2_000_000)
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("import goatcounter:  25% read") and "ETA" in lines[0]
    assert lines[1].startswith("import goatcounter:  25% sessions 2026-11") and "2.0 MB" in lines[1]
    assert "10 rows" in lines[1]


@pytest.mark.parametrize(
    ("buf", "end"),
    [
        (b"a,b\nc,d\n", 7),
        (b"a,b\nc,d", 3),  # the last record goes on in the next read
        (b'a,"b\nc",d\n', 9),  # a quoted newline is not the end
        (b'a,"b\nc', -1),
        (b'a,"say ""hi""\n",x\ne', 17),  # doubled quotes keep the count even
        (b"", -1),
    ],
)
def test_blocks_end_where_a_record_ends(buf: bytes, end: int) -> None:
    assert record_end(buf) == end


def test_blocks_hold_every_byte_after_the_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trail.importers import goatcounter

    rows = known_rows() * 3
    rows[4][1] = 'a title\nover "two" lines'
    export = write_export(tmp_path / "quoted.csv", rows)
    monkeypatch.setattr(goatcounter, "BLOCK_BYTES", 64)
    pieces = list(blocks(export))
    assert len(pieces) > 10
    body = export.read_bytes().partition(b"\n")[2]
    assert b"".join(pieces) == body
    assert all(p.count(b'"') % 2 == 0 for p in pieces)

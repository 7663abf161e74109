"""`trail export` and `trail import trail` on data directories written directly (no server):
their errors, idempotent re-imports, zips, an interrupted import, and the progress line."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.stats.segment_rows import SiteData
from trail.export import Progress
from trail.importers import trail_export
from trail.stats import reports
from trail.stats.filters import parse_filter
from trail.stats.scan import scan
from trail.storage import layout, tombstones
from trail.storage.meta import MetaStore
from trail.storage.models import Site

FROM, TO = "2024-03-10", "2024-03-12"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trail", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def new_site(data_dir: Path, hostname: str, timezone: str = "UTC") -> str:
    meta = MetaStore.open(data_dir / "meta")
    try:
        site = meta.create_site(Site(id="", hostname=hostname, subdomain=hostname.split(".")[0],
                                     timezone=timezone))  # fmt: skip
    finally:
        meta.close()
    return site.id


def with_rows(data_dir: Path, site_id: str) -> None:
    """Sessions across UTC midnight, reloads, events, tags: sealed segments."""
    d = SiteData(data_dir, site_id)
    d.visit(11, 1, [("2024-03-10 23:58:00", "/"), ("2024-03-10 23:59:30", "/blog"),
                    ("2024-03-11 00:12:00", "/docs")],
            events={1: ("signup", {"plan": "pro"})}, tags={0: {"author": "ann"}},
            country_code="de", browser="Firefox")  # fmt: skip
    d.visit(12, 1, [("2024-03-11 10:00:00", "/")], referrer="https://news.example/")
    d.visit(13, 4, [("2024-03-12 08:00:00", "/pricing"), ("2024-03-12 08:00:40", "/pricing")],
            utm_source="newsletter", mobile=True, desktop=False)  # fmt: skip
    d.write()


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, str]:
    data = tmp_path / "a"
    site = new_site(data, "a.example")
    with_rows(data, site)
    return data, site


def export_cli(data: Path, site: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("export", "--data-dir", str(data), "--site", site, "--from", FROM, "--to", TO,
                   "--out", str(out), *extra)  # fmt: skip


def answers(data: Path, site: str) -> dict[str, Any]:
    """A few reports over the range: totals, per day, pages, sessions."""
    f = parse_filter({"id": [site], "from": [FROM], "to": [TO]})
    return {
        "total": reports.total(data, f),
        "visitor": reports.visitor(data, f),
        "page": reports.page(data, f),
        "hours": reports.hours(data, f),
        "sessions": reports.session_duration(data, f),
    }


def test_export_writes_files_and_a_summary(source: tuple[Path, str], tmp_path: Path) -> None:
    data, site = source
    done = export_cli(data, site, tmp_path / "out", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"exported a.example ({site}) {FROM}..{TO} (UTC)")
    assert "rows/s" in done.stdout and done.stderr == ""  # no progress line without a terminal
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["events.csv", "manifest.json", "page_views.csv", "session_presence.csv",
                     "sessions.csv"]  # fmt: skip
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    rows = {k: v["rows"] for k, v in manifest["tables"].items()}
    assert rows == {"page_views": 6, "sessions": 3, "session_presence": 3, "events": 1}
    assert manifest["site"] == {"id": site, "hostname": "a.example", "subdomain": "a",
                                "timezone": "UTC"}  # fmt: skip
    assert manifest["range"] == {"from": FROM, "to": TO, "timezone": "UTC",
                                 "start": "2024-03-10T00:00:00.000Z",
                                 "end": "2024-03-13T00:00:00.000Z"}  # fmt: skip
    assert {"name": "visitor_id", "type": "u64"} in manifest["tables"]["sessions"]["columns"]


def test_export_errors(source: tuple[Path, str], tmp_path: Path) -> None:
    data, site = source
    done = export_cli(data, "no-such-site", tmp_path / "o1")
    assert done.returncode == 1 and "--site: unknown site no-such-site" in done.stderr
    done = run_cli("export", "--data-dir", str(data), "--site", site, "--from", "2024-02-30",
                   "--to", TO, "--out", str(tmp_path / "o2"))  # fmt: skip
    assert done.returncode == 2 and "--from: invalid date, expected YYYY-MM-DD" in done.stderr
    done = run_cli("export", "--data-dir", str(data), "--site", site, "--from", TO,
                   "--to", FROM, "--out", str(tmp_path / "o3"))  # fmt: skip
    assert done.returncode == 2 and "--from: must not be after --to" in done.stderr
    done = export_cli(data, site, tmp_path / "o4", "--format", "xlsx")
    assert done.returncode == 2 and "invalid choice" in done.stderr
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    done = export_cli(data, site, busy)
    assert done.returncode == 1 and "is not empty (use --force" in done.stderr
    done = export_cli(data, site, busy, "--force")
    assert done.returncode == 0, done.stderr
    assert (busy / "notes.txt").read_text() == "mine" and (busy / "manifest.json").exists()
    empty = tmp_path / "nodata"
    empty.mkdir()
    done = export_cli(empty, site, tmp_path / "o5")
    assert done.returncode == 1 and "holds no trail data" in done.stderr
    assert not (empty / "meta").exists()  # an export never creates anything in a data dir
    for name in ("o1", "o2", "o3", "o4", "o5"):
        assert not (tmp_path / name).exists()


def test_site_by_hostname(source: tuple[Path, str], tmp_path: Path) -> None:
    data, _ = source
    assert export_cli(data, "A.example", tmp_path / "out").returncode == 0


def test_import_round_trip_is_idempotent(source: tuple[Path, str], tmp_path: Path) -> None:
    data, site = source
    assert export_cli(data, site, tmp_path / "out").returncode == 0
    target = tmp_path / "b"
    b = new_site(target, "b.example")
    for attempt in range(2):
        done = run_cli("import", "trail", "--data-dir", str(target), "--site", b, "--json",
                       str(tmp_path / "out"))  # fmt: skip
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["rows"]["page_views"] == 6
        assert (summary["replaced_rows"] > 0) == (attempt == 1)
        assert answers(target, b) == answers(data, site)
    # The site's own export into itself changes nothing.
    before = answers(data, site)
    done = run_cli("import", "trail", "--data-dir", str(data), "--site", site,
                   str(tmp_path / "out"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "imported a.example" in done.stdout
    assert answers(data, site) == before


def test_import_of_a_zip_and_csv(source: tuple[Path, str], tmp_path: Path) -> None:
    data, site = source
    assert export_cli(data, site, tmp_path / "out", "--format", "csv").returncode == 0
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in (tmp_path / "out").iterdir():
            z.write(p, p.name)
        z.writestr("../evil.txt", "never written")
    target = tmp_path / "b"
    b = new_site(target, "b.example")
    done = run_cli("import", "trail", "--data-dir", str(target), "--site", b, str(archive))
    assert done.returncode == 0, done.stderr
    assert answers(target, b) == answers(data, site)
    assert not (tmp_path / "evil.txt").exists()


def test_import_errors_write_nothing(source: tuple[Path, str], tmp_path: Path) -> None:
    data, site = source
    out = tmp_path / "out"
    assert export_cli(data, site, out).returncode == 0
    target = tmp_path / "b"
    b = new_site(target, "b.example")

    def run(path: Path, site_ref: str = b) -> subprocess.CompletedProcess[str]:
        return run_cli("import", "trail", "--data-dir", str(target), "--site", site_ref,
                       str(path))  # fmt: skip

    done = run(out, "nope")
    assert done.returncode == 1 and "--site: unknown site nope" in done.stderr
    (tmp_path / "empty").mkdir()
    done = run(tmp_path / "empty")
    assert done.returncode == 1 and "no manifest.json" in done.stderr
    done = run(tmp_path / "missing")
    assert done.returncode == 1 and "does not exist" in done.stderr

    def altered(name: str, change: Any) -> Path:
        copy = tmp_path / name
        shutil.copytree(out, copy)
        manifest = json.loads((copy / "manifest.json").read_text())
        change(manifest)
        (copy / "manifest.json").write_text(json.dumps(manifest))
        return copy

    newer = altered("newer", lambda m: m.update(schema_version=2))
    done = run(newer)
    assert done.returncode == 1 and "schema version 2, written by a newer trail" in done.stderr
    short = altered("short", lambda m: m["tables"]["page_views"].update(rows=7))
    done = run(short)
    assert done.returncode == 1 and "page_views.parquet holds 6 rows, the manifest says 7" in (
        done.stderr
    )
    narrow = altered("narrow", lambda m: m["range"].update(end="2024-03-12T00:00:00.000Z"))
    done = run(narrow)
    assert done.returncode == 1 and "rows outside the export's range" in done.stderr
    assert not (target / "segments").exists()
    # Deleted statistics of the target would hide imported rows: refused.
    tombstones.add(target, b, layout.TABLES, 0, 2**62)
    done = run(out)
    assert done.returncode == 1 and "--site: statistics of the target site were deleted" in (
        done.stderr
    )
    assert not (target / "segments").exists()


def test_an_interrupted_import_finishes_when_run_again(
    source: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, site = source
    assert export_cli(data, site, tmp_path / "out").returncode == 0
    target = tmp_path / "b"
    b = new_site(target, "b.example")
    real = trail_export.write_day
    calls = []

    def failing(*args: Any) -> Any:
        calls.append(args[1:4])
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(trail_export, "write_day", failing)
    with pytest.raises(KeyboardInterrupt):
        trail_export.import_export(target, b, tmp_path / "out")
    monkeypatch.setattr(trail_export, "write_day", real)
    trail_export.import_export(target, b, tmp_path / "out")
    assert answers(target, b) == answers(data, site)
    start, end = datetime(2024, 3, 10, tzinfo=UTC), datetime(2024, 3, 13, tzinfo=UTC)
    for table in ("sessions", "page_views", "events"):
        got = scan(target, table, b, start, end).collect()
        want = scan(data, table, site, start, end).collect()
        if table == "sessions":  # collapsed: cancelled pairs are presence rows
            assert got["sign"].cast(pl.Int64).sum() == want["sign"].cast(pl.Int64).sum()
        else:
            assert got.sort("time").equals(want.sort("time")), table


def test_import_keeps_other_rows_of_the_target(source: tuple[Path, str], tmp_path: Path) -> None:
    data, site = source
    assert export_cli(data, site, tmp_path / "out").returncode == 0
    target = tmp_path / "b"
    b = new_site(target, "b.example")
    own = SiteData(target, b)
    own.visit(99, 1, [("2024-03-11 12:00:00", "/own")])
    own.write()
    trail_export.import_export(target, b, tmp_path / "out")
    start, end = datetime(2024, 3, 10, tzinfo=UTC), datetime(2024, 3, 13, tzinfo=UTC)
    views = scan(target, "page_views", b, start, end).collect()
    assert sorted(views["path"].to_list()) == ["/", "/", "/blog", "/docs", "/own", "/pricing",
                                               "/pricing"]  # fmt: skip
    f = parse_filter({"id": [b], "from": [FROM], "to": [TO]})
    assert reports.total(target, f)["sessions"] == 4


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_on_a_terminal() -> None:
    term = Terminal()
    p = Progress("export", 2, term)
    p.step("page_views 2024-03-10", 1234, 5_000_000)
    p.draw("x", force=True)
    p.close()
    text = term.getvalue()
    assert "\rexport [############............]" in text and "1,234 rows" in text
    assert "5.0 MB" in text and text.endswith("\r\x1b[K")
    quiet = io.StringIO()
    Progress("export", 2, quiet).step("x", 1, 1)
    assert quiet.getvalue() == ""


def test_same_rows_in_both_formats(source: tuple[Path, str], tmp_path: Path) -> None:
    from trail.export import SiteInfo, export

    data, site = source
    info = SiteInfo(site, "a.example")
    first, last = date(2024, 3, 10), date(2024, 3, 12)
    a = export(data, info, first, last, "parquet", tmp_path / "p")
    c = export(data, info, first, last, "csv", tmp_path / "c")
    assert {k: v["rows"] for k, v in a.manifest["tables"].items()} == {
        k: v["rows"] for k, v in c.manifest["tables"].items()
    }
    again = export(data, info, first, last, "parquet", tmp_path / "p2")
    for one, two in zip(a.files, again.files, strict=True):  # deterministic
        assert one.read_bytes() == two.read_bytes(), one.name
    src = trail_export.open_export(tmp_path / "c", tmp_path / "scratch")
    for stem, lf in src.frames.items():
        assert lf.collect().equals(pl.read_parquet(tmp_path / "p" / f"{stem}.parquet")), stem
    # A time zone moves the window: local dates of Auckland start 13 h before UTC's.
    nz = export(data, replace(info, timezone="Pacific/Auckland"), first, last, "parquet",
                tmp_path / "nz")  # fmt: skip
    assert nz.manifest["range"]["start"] == "2024-03-09T11:00:00.000Z"


def test_an_export_reads_the_same_before_and_after_compaction(
    source: tuple[Path, str], tmp_path: Path
) -> None:
    """Sealed segments (cancel rows collapsed by the export) and compacted parts (collapsed
    by compaction, read as they are) export the same rows."""
    from trail.export import FILES, SiteInfo, export
    from trail.tasks.compaction import compact_day

    data, site = source
    info = SiteInfo(site, "a.example")
    first, last = date(2024, 3, 10), date(2024, 3, 12)
    export(data, info, first, last, "parquet", tmp_path / "fresh")
    for day in (10, 11, 12):
        summary = compact_day(data, date(2024, 3, day), force=True, grace=0)
        assert summary["compacted_dirs"] >= 1 and not summary["failed_dirs"], summary
    export(data, info, first, last, "parquet", tmp_path / "compacted")
    for stem in FILES:
        fresh = pl.read_parquet(tmp_path / "fresh" / f"{stem}.parquet")
        compacted = pl.read_parquet(tmp_path / "compacted" / f"{stem}.parquet")
        keys = ["visitor_id", "session_id", "time", "sign" if "sign" in fresh.columns else "path"]
        assert fresh.sort(keys).equals(compacted.sort(keys)), stem

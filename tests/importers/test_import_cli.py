"""`trail import plausible|fathom` as a real subprocess, next to a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from import_exports import Plausible, days, fathom_zip, write

from tests.server import TrailServer
from trail.storage import imported


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TrailServer, str]]:
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    data_dir.mkdir()
    server = TrailServer(data_dir, workers=1).start()
    site, _ = server.create_site("cli-import.example")
    yield server, site
    assert server.stop() == 0


def trail(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trail", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_plausible_import_and_rerun(running: tuple[TrailServer, str], tmp_path: Path) -> None:
    server, site = running
    export = Plausible(days(date(2022, 11, 25), 50)).build()
    archive = write(tmp_path / "plausible.zip", export.zip())
    args = ("import", "plausible", "--data-dir", str(server.data_dir), "--site", site)
    done = trail(*args, str(archive))
    assert done.returncode == 0, done.stderr
    assert (
        f"imported plausible 2022-11-25..2023-01-13 into cli-import.example ({site})" in done.stdout
    )
    assert "5 files, 450 rows" in done.stdout
    first = {t: imported.read(server.data_dir, site, t) for t in imported.TABLES}
    assert first["visitors"].height == 50
    assert first["city"]["city"].unique().to_list() == ["Berlin"]  # GeoNames id 2950159

    again = trail(*args, "--json", str(archive))
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["site"] == site and summary["stored_rows"]["visitors"] == 50
    assert all(imported.read(server.data_dir, site, t).equals(first[t]) for t in first)
    assert server.call("GET", "/health").status == 200


def test_fathom_import(running: tuple[TrailServer, str], tmp_path: Path) -> None:
    server, _ = running
    site, _ = server.create_site("cli-fathom.example")
    archive = write(tmp_path / "fathom.zip", fathom_zip())
    done = trail("import", "fathom", "--data-dir", str(server.data_dir), "--site",
                 "cli-fathom.example", str(archive))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "spread evenly over its 7 days" in done.stdout
    assert imported.read(server.data_dir, site, "visitors")["visitors"].sum() == 70


def test_errors(running: tuple[TrailServer, str], tmp_path: Path) -> None:
    server, site = running
    bad = write(tmp_path / "bad.zip", fathom_zip({"Browsers.csv": "Browser,Visitors\nChrome,x\n"}))
    done = trail("import", "fathom", "--data-dir", str(server.data_dir), "--site", site, str(bad))
    assert done.returncode == 1
    assert "Browsers.csv, line 2, column 'Visitors': not a whole number >= 0: 'x'" in done.stderr
    done = trail("import", "fathom", "--data-dir", str(server.data_dir), "--site", "nope", str(bad))
    assert done.returncode == 1 and "--site: unknown site nope" in done.stderr
    big = write(tmp_path / "big.zip", Plausible(days(date(2022, 1, 1), 20)).build().zip())
    done = trail(
        "import", "plausible", "--data-dir", str(server.data_dir), "--site", site, str(big),
        env={"TRAIL_IMPORT_MAX_UNPACKED_BYTES": "2000"},
    )  # fmt: skip
    assert done.returncode == 1 and "the files unpack to more than 2000 bytes" in done.stderr
    missing = trail("import", "plausible", "--data-dir", str(server.data_dir), "--site", site,
                    str(tmp_path / "absent.zip"))  # fmt: skip
    assert missing.returncode == 1 and "absent.zip" in missing.stderr

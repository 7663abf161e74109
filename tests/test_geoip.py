"""GeoIP without setup: `trail geoip update` against a loopback HTTP server, workers reloading a
new database while they serve, the override, and the monthly refresh. Nothing here reaches the
internet: every URL is http://127.0.0.1:<port>/..."""

from __future__ import annotations

import gzip
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.server import TrailServer
from trail import geoip
from trail.config import load

FIXTURE = Path(__file__).resolve().parent.parent / "rust_core" / "tests" / "data" / "geo-test.mmdb"
FAST_SEAL = {"TRAIL_SEAL_INTERVAL_MS": "200"}
NO_PROXY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
TEMPLATE = "/dbip-city-lite-{month}.mmdb.gz"


def this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def make_mmdb(path: Path, networks: list[tuple[str, dict[str, Any]]]) -> bytes:
    """A small database like the fixture (tests/fixtures/make_mmdb.py), with other records."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type="DBIP-City-Lite",
        languages=["en"],
        description="trail test database",
    )
    for cidr, record in networks:
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path.read_bytes()


def city(country: str, region: str, name: str) -> dict[str, Any]:
    return {
        "country": {"iso_code": country},
        "subdivisions": [{"names": {"en": region}}],
        "city": {"names": {"en": name}},
    }


@pytest.fixture(scope="module")
def other_db(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A second database: 81.2.69.0/24 is in Paris here (London in the fixture), and
    198.51.100.0/24, absent from the fixture, in Auckland."""
    return make_mmdb(
        tmp_path_factory.mktemp("mmdb") / "other.mmdb",
        [
            ("81.2.69.0/24", city("FR", "Île-de-France", "Paris")),
            ("198.51.100.0/24", city("NZ", "Auckland", "Auckland")),
        ],
    )


class Files:
    """A loopback HTTP server: path -> (status, body); records the paths asked for. A path in
    `held` sends half its body, then waits for `release` before the rest."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.asked: list[str] = []
        self.held: set[str] = set()
        self.release = threading.Event()
        files = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                files.asked.append(self.path)
                status, body = files.routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in files.held:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    files.release.wait(30)
                    body = body[len(body) // 2 :]
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, path: str, body: bytes, status: int = 200) -> str:
        self.routes[path] = (status, body)
        return self.base + path

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def files() -> Iterator[Files]:
    f = Files()
    yield f
    f.close()


def run_update(
    data_dir: Path, url: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trail", "geoip", "update", "--data-dir", str(data_dir)]
        + ["--url", url, *extra],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **NO_PROXY, **(env or {})},
    )


def leftovers(data_dir: Path) -> list[str]:
    """Temp files in the geoip folder (an update must leave none behind)."""
    return sorted(p.name for p in (data_dir / "geoip").glob(".*") if p.name != ".lock")


# -- trail geoip update ---------------------------------------------------------------------------


def test_update_installs_the_database_atomically(
    tmp_path: Path, files: Files, other_db: bytes
) -> None:
    data = tmp_path / "data"
    target = data / "geoip" / "dbip-city-lite.mmdb"
    files.serve(TEMPLATE.format(month=this_month()), gzip.compress(FIXTURE.read_bytes()))
    done = run_update(data, files.base + TEMPLATE)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == FIXTURE.read_bytes()
    assert "IP geolocation by DB-IP (https://db-ip.com)" in done.stdout
    assert done.stderr == ""  # no progress bar without a terminal
    assert leftovers(data) == []
    state = geoip.read_state(data)
    assert state["edition"] == this_month() and state["last_error"] is None

    # A second update, held half-way: the installed file stays whole until the rename.
    files.serve("/slow.mmdb.gz", gzip.compress(other_db))
    files.held.add("/slow.mmdb.gz")
    proc = subprocess.Popen(
        [sys.executable, "-m", "trail", "geoip", "update", "--data-dir", str(data)]
        + ["--url", files.base + "/slow.mmdb.gz"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **NO_PROXY},
    )
    deadline = time.monotonic() + 20
    while not any(n.startswith(".download-") for n in leftovers(data)):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    assert target.read_bytes() == FIXTURE.read_bytes()
    # A concurrent update is refused while this one holds the lock.
    busy = run_update(data, files.base + TEMPLATE)
    assert busy.returncode == 1 and "another GeoIP update is running" in busy.stderr
    files.release.set()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert target.read_bytes() == other_db
    assert leftovers(data) == []


def test_a_terminal_gets_a_progress_bar(tmp_path: Path, files: Files) -> None:
    url = files.serve("/dbip-city-lite-x.mmdb.gz", gzip.compress(FIXTURE.read_bytes()))
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "trail", "geoip", "update", "--data-dir", str(tmp_path / "d")]
        + ["--url", url],
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, **NO_PROXY},
    )
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the command is done and the terminal closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    assert proc.wait(30) == 0
    assert proc.stdout is not None and b"installed" in proc.stdout.read()
    proc.stdout.close()
    line = shown.decode().replace("\r\n", "\n").split("\r")[-1]  # the terminal's newline
    assert line.endswith("\n")
    assert line.startswith("dbip-city-lite-x.mmdb.gz  ")
    assert "100%" in line and "ETA 0:00" in line and "kB" in line and "/s" in line


def test_update_falls_back_to_last_month(tmp_path: Path, files: Files) -> None:
    now = datetime.now(UTC)
    last = f"{now.year - 1}-12" if now.month == 1 else f"{now.year}-{now.month - 1:02d}"
    files.serve(TEMPLATE.format(month=last), gzip.compress(FIXTURE.read_bytes()))
    done = run_update(tmp_path / "data", files.base + TEMPLATE)
    assert done.returncode == 0, done.stderr
    assert files.asked == [TEMPLATE.format(month=this_month()), TEMPLATE.format(month=last)]
    assert geoip.read_state(tmp_path / "data")["edition"] == last


def garbage_mmdb_gz(tmp_path: Path) -> bytes:
    return gzip.compress(os.urandom(4096))


def truncated_gz(tmp_path: Path) -> bytes:
    whole = gzip.compress(FIXTURE.read_bytes())
    return whole[: len(whole) - 20]


def countryless_gz(tmp_path: Path) -> bytes:
    """A valid MaxMind DB whose records carry no country (e.g. an ASN database)."""
    db = make_mmdb(tmp_path / "asn.mmdb", [("81.2.69.0/24", {"autonomous_system_number": 1})])
    return gzip.compress(db)


BAD_DOWNLOADS = {
    "404": (lambda _: b"", 404, (), "download failed: HTTP 404"),
    "500": (lambda _: b"", 500, (), "download failed: HTTP 500"),
    "not gzip": (lambda _: FIXTURE.read_bytes(), 200, (), "is not gzip data"),
    "gzip of garbage": (garbage_mmdb_gz, 200, (), "is not a MaxMind .mmdb database"),
    "truncated gzip": (truncated_gz, 200, (), "is a broken gzip file"),
    "no countries": (countryless_gz, 200, (), "answers no lookup with a country"),
    "too large": (
        lambda _: gzip.compress(b"\0" * (3 << 20)),
        200,
        ("--max-mb", "1"),
        "larger than the limit of 1 MiB",
    ),
    "empty": (lambda _: gzip.compress(b""), 200, (), "is empty"),
}


@pytest.mark.parametrize("case", list(BAD_DOWNLOADS))
def test_a_bad_download_leaves_the_previous_database(
    case: str, tmp_path: Path, files: Files
) -> None:
    data = tmp_path / "data"
    target = data / "geoip" / "dbip-city-lite.mmdb"
    good = files.serve("/good.mmdb.gz", gzip.compress(FIXTURE.read_bytes()))
    assert run_update(data, good).returncode == 0
    before = (target.stat().st_ino, target.stat().st_mtime_ns, target.read_bytes())
    state = geoip.read_state(data)

    body, status, extra, message = BAD_DOWNLOADS[case]
    url = files.serve("/bad.mmdb.gz", body(tmp_path), status)
    done = run_update(data, url, *extra)
    assert done.returncode == 1
    assert done.stderr.startswith("trail: geoip: ") and message in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1  # one line
    assert (target.stat().st_ino, target.stat().st_mtime_ns, target.read_bytes()) == before
    assert geoip.read_state(data) == state
    assert leftovers(data) == []


def test_an_unreachable_server_is_one_line(tmp_path: Path, files: Files) -> None:
    port = files.server.server_address[1]
    files.close()  # nothing listens there any more
    done = run_update(tmp_path / "data", f"http://127.0.0.1:{port}/x.mmdb.gz")
    assert done.returncode == 1
    assert done.stderr.startswith("trail: geoip: cannot download http://127.0.0.1:")
    assert done.stderr.count("\n") == 1


def test_disk_full_is_named(tmp_path: Path, files: Files, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC from the file system (faked at fsync: no test may fill a real disk)."""
    import errno

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    url = files.serve("/db.mmdb.gz", gzip.compress(FIXTURE.read_bytes()))
    monkeypatch.setattr(geoip.os, "fsync", full)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(geoip.GeoipError, match="^disk full: no space left"):
        geoip.update(tmp_path / "data", url)
    assert leftovers(tmp_path / "data") == []
    assert not (tmp_path / "data" / "geoip" / "dbip-city-lite.mmdb").exists()


# -- which database, and when to refresh it --------------------------------------------------------


def test_the_downloaded_file_is_used_unless_geoip_db_is_set(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = load(env={}, flags={"data_dir": str(data)})
    assert geoip.active_db(cfg) is None and not geoip.auto_update_on(cfg)
    assert geoip.attribution(cfg) is None
    (data / "geoip").mkdir()
    (data / "geoip" / "dbip-city-lite.mmdb").write_bytes(FIXTURE.read_bytes())
    assert geoip.active_db(cfg) == str(data / "geoip" / "dbip-city-lite.mmdb")
    assert geoip.auto_update_on(cfg)  # trail wrote the file: refreshed by default
    credit = geoip.attribution(cfg)
    assert credit and credit["text"] == "IP geolocation by DB-IP"
    assert credit["url"] == "https://db-ip.com" and credit["license"] == "CC BY 4.0"
    override = load(env={"TRAIL_GEOIP_DB": str(FIXTURE)}, flags={"data_dir": str(data)})
    assert geoip.active_db(override) == str(FIXTURE)
    assert not geoip.auto_update_on(override) and geoip.attribution(override) is None
    off = load(env={"TRAIL_GEOIP_AUTO_UPDATE": "false"}, flags={"data_dir": str(data)})
    assert not geoip.auto_update_on(off)
    on = load(env={"TRAIL_GEOIP_AUTO_UPDATE": "true"}, flags={"data_dir": str(tmp_path / "x")})
    assert on.geoip_auto_update is True and geoip.auto_update_on(on)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_refresh_is_due_monthly_and_retried_daily() -> None:
    due = geoip.refresh_due
    may = {"edition": "2026-05", "checked_at": at("2026-05-03T10:00:00")}
    assert not due(at("2026-05-20T00:00:00"), True, may)  # this month's edition is in place
    assert not due(at("2026-05-31T23:59:59"), True, may)
    assert due(at("2026-06-01T00:00:00"), True, may)  # a new month
    late = {**may, "checked_at": at("2026-05-31T10:00:00")}
    assert not due(at("2026-06-01T09:59:00"), True, late)  # but tried less than a day ago
    assert due(at("2026-06-01T10:00:00"), True, late)
    # June not published yet on the 1st: May was installed again; try again the next day.
    fallback = {"edition": "2026-05", "checked_at": at("2026-06-01T11:00:00")}
    assert not due(at("2026-06-02T10:59:00"), True, fallback)
    assert due(at("2026-06-02T11:00:00"), True, fallback)
    # A failure is retried a day later; a missing file is due (auto-update turned on).
    assert not due(at("2026-06-02T12:00:00"), False, {"checked_at": at("2026-06-02T00:00:00")})
    assert due(at("2026-06-02T12:00:00"), False, {})
    assert due(at("2026-06-02T12:00:00"), True, {})  # no state: unknown edition
    assert not due(at("2027-01-01T12:00:00"), True, {"edition": "2027-01"})


def test_refresh_against_the_loopback_server(tmp_path: Path, files: Files, other_db: bytes) -> None:
    data = tmp_path / "data"
    cfg = load(env={"TRAIL_GEOIP_AUTO_UPDATE": "1"}, flags={"data_dir": str(data)})
    url = files.base + TEMPLATE
    june, july = at("2026-06-10T08:00:00"), at("2026-07-01T08:00:00")
    files.serve(TEMPLATE.format(month="2026-06"), gzip.compress(FIXTURE.read_bytes()))
    assert geoip.refresh(cfg, now=june, url=url) == "updated"
    assert geoip.db_path(data).read_bytes() == FIXTURE.read_bytes()
    assert geoip.refresh(cfg, now=june + 3600, url=url) == "not due"
    # July is not out on the 1st: June is what is there, so nothing is downloaded.
    asked = len(files.asked)
    assert geoip.refresh(cfg, now=july, url=url) == "up to date"
    assert files.asked[asked:] == [TEMPLATE.format(month=m) for m in ("2026-07", "2026-06")]
    assert geoip.refresh(cfg, now=july + 3600, url=url) == "not due"
    # The next day July is broken (500): logged, the June file stays, retried a day later.
    files.serve(TEMPLATE.format(month="2026-07"), b"", 500)
    assert geoip.refresh(cfg, now=july + 86400, url=url) == "failed"
    assert "HTTP 500" in geoip.read_state(data)["last_error"]
    assert geoip.db_path(data).read_bytes() == FIXTURE.read_bytes()
    assert geoip.refresh(cfg, now=july + 86400 + 3600, url=url) == "not due"
    files.serve(TEMPLATE.format(month="2026-07"), gzip.compress(other_db))
    assert geoip.refresh(cfg, now=july + 2 * 86400, url=url) == "updated"
    assert geoip.db_path(data).read_bytes() == other_db
    assert geoip.read_state(data)["edition"] == "2026-07"
    # Turned off: nothing happens at all.
    off = load(env={"TRAIL_GEOIP_AUTO_UPDATE": "0"}, flags={"data_dir": str(data)})
    assert geoip.refresh(off, now=at("2026-09-01T12:00:00"), url=url) == "off"


def test_refresh_downloads_from_where_the_command_did(
    tmp_path: Path, files: Files, other_db: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(geoip.URL_ENV, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    data = tmp_path / "data"
    files.serve(TEMPLATE.format(month=this_month()), gzip.compress(FIXTURE.read_bytes()))
    assert run_update(data, files.base + TEMPLATE).returncode == 0
    cfg = load(env={}, flags={"data_dir": str(data)})  # on by default: trail wrote the file
    later = time.time() + 32 * 86400
    files.serve(TEMPLATE.format(month=geoip.month_of(later)), gzip.compress(other_db))
    assert geoip.refresh(cfg, now=later) == "updated"
    assert files.asked[-1] == TEMPLATE.format(month=geoip.month_of(later))
    assert geoip.db_path(data).read_bytes() == other_db


# -- running servers ------------------------------------------------------------------------------


def post_hit(s: TrailServer, key: str, ip: str) -> int:
    body = {"url": "https://example.com/", "ip": ip, "user_agent": UA}
    return s.call("POST", "/api/v1/hit", body, key=key).status


def countries(s: TrailServer, site: str) -> dict[str, int]:
    today = time.strftime("%Y-%m-%d", time.gmtime())
    rows = s.stats("country", site, **{"from": today, "to": today})
    return {r["country_code"]: r["visitors"] for r in rows}


def wait_countries(
    s: TrailServer, site: str, want: dict[str, int], exact: bool = True
) -> dict[str, int]:
    """The countries once they are `want` (or, not exact, include it), or after 20 s."""
    deadline = time.monotonic() + 20
    got = countries(s, site)
    while time.monotonic() < deadline:
        if got == want or (not exact and want.items() <= got.items()):
            break
        time.sleep(0.1)
        got = countries(s, site)
    return got


def log_of(s: TrailServer) -> str:
    return (s.data_dir.parent / f"server-{s.port}.log").read_text(errors="replace")


def wait_loaded(s: TrailServer, count: int, timeout: float = 30) -> None:
    """Until the workers logged `count` database loads in all (each worker logs its own)."""
    deadline = time.monotonic() + timeout
    while log_of(s).count("dbip-city-lite.mmdb loaded") < count:
        assert time.monotonic() < deadline, log_of(s)[-3000:]
        time.sleep(0.1)


def test_a_running_server_picks_up_a_new_database(
    tmp_path: Path, files: Files, other_db: bytes
) -> None:
    env = {**FAST_SEAL, **NO_PROXY, "TRAIL_GEOIP_URL": files.base + TEMPLATE}
    s = TrailServer(tmp_path / "data", workers=2, env=env).start()
    try:
        assert "no GeoIP database: countries, regions and cities stay empty" in log_of(s)
        site, key = s.create_site()
        assert post_hit(s, key, "81.2.69.10") == 200
        assert wait_countries(s, site, {"": 1}) == {"": 1}  # no database yet

        # Hits keep coming while the database is installed and the workers reload it (from
        # 192.0.2.0/24, in neither database: they never have a country).
        statuses: list[int] = []
        stop = threading.Event()

        def pound() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                statuses.append(post_hit(s, key, f"192.0.2.{n % 250 + 1}"))

        thread = threading.Thread(target=pound)
        thread.start()
        try:
            url = files.serve("/db.mmdb.gz", gzip.compress(FIXTURE.read_bytes()))
            done = run_update(s.data_dir, url)
            assert done.returncode == 0, done.stderr
            assert "running workers load it within 5 s" in done.stdout
            wait_loaded(s, 2)
        finally:
            stop.set()
            thread.join(30)
        assert statuses and set(statuses) == {200}
        assert post_hit(s, key, "81.2.69.11") == 200
        assert post_hit(s, key, "89.160.20.112") == 200
        got = wait_countries(s, site, {"gb": 1, "se": 1}, exact=False)
        assert set(got) == {"", "gb", "se"} and got["gb"] == got["se"] == 1, got

        # A second update: the same IP now resolves to the other database's country.
        url = files.serve("/other.mmdb.gz", gzip.compress(other_db))
        assert run_update(s.data_dir, url).returncode == 0
        wait_loaded(s, 4)
        assert post_hit(s, key, "198.51.100.7") == 200
        cities = {}
        deadline = time.monotonic() + 20
        while ("nz", "Auckland", "Auckland") not in cities and time.monotonic() < deadline:
            today = time.strftime("%Y-%m-%d", time.gmtime())
            rows = s.stats("city", site, **{"from": today, "to": today})
            cities = {(r["country_code"], r["region"], r["city"]): r["visitors"] for r in rows}
            time.sleep(0.1)
        assert ("nz", "Auckland", "Auckland") in cities
        # The maintenance process did not refresh anything: the file is this month's.
        assert files.asked.count("/db.mmdb.gz") == 1 and not any("{" in a for a in files.asked)
        assert not any(a.startswith("/dbip-city-lite-") for a in files.asked)
    finally:
        assert s.stop() == 0


def test_the_maintenance_process_downloads_when_auto_update_is_on(
    tmp_path: Path, files: Files
) -> None:
    files.serve(TEMPLATE.format(month=this_month()), gzip.compress(FIXTURE.read_bytes()))
    env = {
        **FAST_SEAL,
        **NO_PROXY,
        "TRAIL_GEOIP_AUTO_UPDATE": "true",
        "TRAIL_GEOIP_URL": files.base + TEMPLATE,
    }
    s = TrailServer(tmp_path / "data", workers=1, env=env).start()
    try:
        wait_loaded(s, 1)
        assert "GeoIP database updated to DB-IP " + this_month() in log_of(s)
        site, key = s.create_site()
        assert post_hit(s, key, "81.2.69.12") == 200
        assert wait_countries(s, site, {"gb": 1}) == {"gb": 1}
        assert files.asked == [TEMPLATE.format(month=this_month())]
    finally:
        assert s.stop() == 0


def test_the_downloaded_file_is_used_at_start_and_geoip_db_overrides_it(
    tmp_path: Path, files: Files, other_db: bytes
) -> None:
    data = tmp_path / "data"
    assert run_update(data, files.serve("/other.mmdb.gz", gzip.compress(other_db))).returncode == 0
    # The refresh would go to the loopback server, and is not due (installed this month).
    env = {**FAST_SEAL, **NO_PROXY, "TRAIL_GEOIP_URL": files.base + TEMPLATE}
    s = TrailServer(data, workers=1, env=env).start()
    try:
        site, key = s.create_site()
        assert post_hit(s, key, "81.2.69.13") == 200
        assert wait_countries(s, site, {"fr": 1}) == {"fr": 1}  # the downloaded database
        assert "no GeoIP database" not in log_of(s)
    finally:
        assert s.stop() == 0
    admin_key = s.admin_key  # printed on the first start only
    s = TrailServer(data, workers=1, env={**env, "TRAIL_GEOIP_DB": str(FIXTURE)}).start()
    s.admin_key = admin_key
    try:
        assert post_hit(s, key, "81.2.69.14") == 200
        assert wait_countries(s, site, {"fr": 1, "gb": 1}) == {"fr": 1, "gb": 1}  # geoip_db
        # Replacing the data dir's file changes nothing while geoip_db is set; the command
        # says so.
        url = files.serve("/db.mmdb.gz", gzip.compress(FIXTURE.read_bytes()))
        done = run_update(data, url, env={"TRAIL_GEOIP_DB": str(FIXTURE)})
        assert done.returncode == 0, done.stderr
        assert "geoip_db = " in done.stderr and "takes precedence" in done.stderr
        time.sleep(geoip.RELOAD_INTERVAL + 1)
        assert "dbip-city-lite.mmdb loaded" not in log_of(s)
    finally:
        assert s.stop() == 0
    assert files.asked == ["/other.mmdb.gz", "/db.mmdb.gz"]

"""GeoIP without setup: DB-IP's free "IP to City Lite" database, downloaded, kept fresh, reloaded.

    trail geoip update --data-dir D [--config F] [--url URL] [--max-mb N]

downloads `https://download.db-ip.com/free/dbip-city-lite-YYYY-MM.mmdb.gz` (this month's, or last
month's while this month's is not out yet), gunzips it while it streams, checks that it is a
MaxMind DB that answers lookups, and renames it over `<data_dir>/geoip/dbip-city-lite.mmdb`. The
database is DB-IP's, licensed CC BY 4.0: wherever locations are shown, say "IP geolocation by
DB-IP" with a link to https://db-ip.com.

- Workers use that file when `geoip_db` is not set (`geoip_db` always wins), and look at it (or at
  `geoip_db`) every RELOAD_INTERVAL seconds: a new file is loaded without a restart, hits in
  flight finish on the old one (`Reloader`).
- The maintenance process refreshes it once a month when `geoip_auto_update` is on (default: on
  when the file exists and `geoip_db` is not set); a failure is logged and retried a day later
  (`refresh`, `refresh_due`).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import gzip
import http.client
import logging
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import orjson

from trail import __version__

log = logging.getLogger("trail.geoip")

DEFAULT_URL = "https://download.db-ip.com/free/dbip-city-lite-{month}.mmdb.gz"
# Where the maintenance refresh downloads from instead (a mirror; tests use a loopback server).
URL_ENV = "TRAIL_GEOIP_URL"
ATTRIBUTION = "IP geolocation by DB-IP (https://db-ip.com), licensed CC BY 4.0"
DIR_NAME = "geoip"
FILE_NAME = "dbip-city-lite.mmdb"
STATE_NAME = "dbip-city-lite.json"
MAX_MB = 1024  # the unpacked database; DB-IP City Lite's is a fraction of this
TIMEOUT = 60.0  # seconds without progress before a download gives up
CHUNK = 1 << 20
# A City or Country database answers at least one of these with a country.
PROBES = ("8.8.8.8", "1.1.1.1", "81.2.69.142", "2001:4860:4860::8888")
RELOAD_INTERVAL = 5.0  # how often a worker looks at the database file
REFRESH_INTERVAL = 3600.0  # how often the maintenance process asks refresh_due
RETRY_AFTER = 86400.0  # at most one refresh attempt a day


class GeoipError(Exception):
    """A download or install that failed; the message is one line naming the problem."""


@dataclass(frozen=True)
class Installed:
    path: Path
    edition: str  # "YYYY-MM"
    url: str
    size: int
    database_type: str


# -- where things are ---------------------------------------------------------------------------


def db_path(data_dir: str | Path) -> Path:
    """The database `trail geoip update` writes."""
    return Path(data_dir) / DIR_NAME / FILE_NAME


def active_db(config: Any) -> str | None:
    """The database workers use: `geoip_db` if set, else the downloaded one if it exists."""
    if config.geoip_db:
        return str(config.geoip_db)
    path = db_path(config.data_dir)
    return str(path) if path.is_file() else None


def auto_update_on(config: Any) -> bool:
    """`geoip_auto_update`, or by default: trail downloaded the file and nothing overrides it."""
    if config.geoip_auto_update is not None:
        return bool(config.geoip_auto_update)
    return not config.geoip_db and db_path(config.data_dir).is_file()


def attribution(config: Any) -> dict[str, str] | None:
    """The credit to show next to locations (the dashboard's locations panel) while DB-IP's
    downloaded database is the one in use; None with `geoip_db` or without a database."""
    if config.geoip_db or not db_path(config.data_dir).is_file():
        return None
    return {
        "text": "IP geolocation by DB-IP",
        "url": "https://db-ip.com",
        "license": "CC BY 4.0",
        "license_url": "https://creativecommons.org/licenses/by/4.0/",
    }


def startup_note(config: Any) -> str | None:
    """What `trail serve` says when it has no database and will not download one."""
    if active_db(config) or auto_update_on(config):
        return None
    return (
        "no GeoIP database: countries, regions and cities stay empty; "
        f"`trail geoip update --data-dir {config.data_dir}` downloads DB-IP's free one"
    )


def month_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m")


def previous_month(month: str) -> str:
    year, mon = (int(p) for p in month.split("-"))
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def candidates(url: str, now: float) -> list[tuple[str, str]]:
    """(edition, URL) to try in order: a `{month}` template gives this month, then the last."""
    month = month_of(now)
    if "{month}" not in url:
        return [(month, url)]
    return [(m, url.replace("{month}", m)) for m in (month, previous_month(month))]


def read_state(data_dir: str | Path) -> dict[str, Any]:
    try:
        state = orjson.loads((Path(data_dir) / DIR_NAME / STATE_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return state if isinstance(state, dict) else {}


def _write_state(data_dir: str | Path, **changes: Any) -> None:
    folder = Path(data_dir) / DIR_NAME
    state = {**read_state(data_dir), **changes}
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps(state, option=orjson.OPT_INDENT_2))
        os.chmod(tmp, 0o644)
        os.replace(tmp, folder / STATE_NAME)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -- download and install -----------------------------------------------------------------------


class _Counting:
    """The response as a file for GzipFile, counting the compressed bytes read."""

    def __init__(self, raw: IO[bytes], limit: int, progress: _Progress | None) -> None:
        self.raw, self.limit, self.progress, self.count = raw, limit, progress, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size if size > 0 else CHUNK)
        self.count += len(data)
        if self.count > self.limit:
            raise GeoipError(f"the download is larger than the limit of {self.limit >> 20} MiB")
        if self.progress:
            self.progress.update(self.count)
        return data

    def seek(self, offset: int, /) -> object:  # GzipFile only seeks to rewind, which we never do
        raise OSError("a download cannot seek")


class _Progress:
    """bytes / total, percent, ETA and speed on one terminal line, at most 5 times a second."""

    def __init__(self, name: str, total: int | None, out: IO[str]) -> None:
        self.name, self.total, self.out = name, total, out
        self.started = time.monotonic()
        self.shown = self.started - 1.0
        self.done = 0

    def update(self, done: int, force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if not force and now - self.shown < 0.2:
            return
        self.shown = now
        rate = done / max(now - self.started, 1e-3)
        line = f"{self.name}  {_mb(done)}"
        if self.total:
            left = max(self.total - done, 0) / rate if rate > 0 else 0
            eta = f"{int(left // 60)}:{int(left % 60):02d}"
            line += f" / {_mb(self.total)}  {100 * done // self.total:3d}%  ETA {eta}"
        line += f"  {_mb(int(rate))}/s"
        self.out.write("\r" + line.ljust(78)[:120])
        self.out.flush()

    def finish(self) -> None:
        """The last numbers stay on their line."""
        self.update(self.done, force=True)
        self.out.write("\n")
        self.out.flush()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _open(url: str) -> Any:
    """The response for `url`; HTTPError passes through (the caller decides on 404)."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise GeoipError(f"{url} is not an http(s) URL")
    req = urllib.request.Request(url, headers={"User-Agent": f"trail/{__version__}"})
    try:
        return urllib.request.urlopen(req, timeout=TIMEOUT)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise GeoipError(f"cannot download {url}: {reason}") from None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One update at a time per data dir (the CLI and the maintenance process may overlap)."""
    with open(folder / ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GeoipError(f"another GeoIP update is running in {folder}") from None
        yield


def _disk_error(e: OSError, path: Path) -> GeoipError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return GeoipError(f"disk full: no space left for the database in {path.parent}")
    return GeoipError(f"cannot write {path}: {e.strerror or e}")


def update(
    data_dir: str | Path,
    url: str | None = None,
    *,
    now: float | None = None,
    max_bytes: int = MAX_MB << 20,
    progress: IO[str] | None = None,
    skip_edition: str | None = None,
) -> Installed | None:
    """Download, check and install the database; None if the newest edition is `skip_edition`.

    Raises GeoipError; the installed database is then untouched.
    """
    url = url or DEFAULT_URL
    now = time.time() if now is None else now
    folder = Path(data_dir) / DIR_NAME
    target = folder / FILE_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _disk_error(e, target) from None
    with _locked(folder):
        for stale in [*folder.glob(".download-*"), *folder.glob(".state-*")]:
            _discard(stale)  # left by a killed update (we hold the lock)
        edition, source, response = _first_published(url, now)
        with response:
            if edition == skip_edition:
                return None
            tmp = _download(response, source, folder, max_bytes, progress)
        try:
            info = _check(tmp)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(folder)
        size = target.stat().st_size
        _write_state(
            data_dir,
            edition=edition,
            url=source,
            template=url,  # where the monthly refresh downloads from next time
            installed_at=now,
            checked_at=now,
            database_type=info["database_type"],
            build_epoch=info["build_epoch"],
            last_error=None,
        )
        _chown_like(folder, Path(data_dir))
    return Installed(target, edition, source, size, str(info["database_type"]))


def _first_published(url: str, now: float) -> tuple[str, str, Any]:
    tries = candidates(url, now)
    for i, (edition, source) in enumerate(tries):
        try:
            return edition, source, _open(source)
        except urllib.error.HTTPError as e:
            e.close()
            if e.code == 404 and i + 1 < len(tries):
                continue  # this month's edition is not out yet
            raise GeoipError(f"download failed: HTTP {e.code} {e.reason} from {source}") from None
    raise AssertionError("unreachable")


def _download(
    response: Any, source: str, folder: Path, max_bytes: int, progress: IO[str] | None
) -> Path:
    """Stream the gunzipped body into a temp file in `folder`, fsynced; returns its path."""
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    if total is not None and total > max_bytes:
        raise GeoipError(f"the download is larger than the limit of {max_bytes >> 20} MiB")
    name = Path(urlsplit(source).path).name or "download"
    bar = _Progress(name, total, progress) if progress else None
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    written = 0
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o644)
            with gzip.GzipFile(fileobj=_Counting(response, max_bytes, bar), mode="rb") as gz:
                while chunk := gz.read(CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise GeoipError(
                            f"the database is larger than the limit of {max_bytes >> 20} MiB"
                        )
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except gzip.BadGzipFile:
        _discard(tmp)
        raise GeoipError(f"the download from {source} is not gzip data") from None
    except (EOFError, zlib.error) as e:
        _discard(tmp)
        raise GeoipError(f"the download from {source} is a broken gzip file: {e}") from None
    except TimeoutError:
        _discard(tmp)
        raise GeoipError(f"the download from {source} timed out") from None
    except http.client.HTTPException as e:
        _discard(tmp)
        raise GeoipError(f"the download from {source} failed: {e!r}") from None
    except OSError as e:
        _discard(tmp)
        if e.filename is None and e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise GeoipError(f"the download from {source} failed: {e}") from None
        raise _disk_error(e, folder / FILE_NAME) from None
    except BaseException:
        _discard(tmp)
        raise
    finally:
        if bar:
            bar.finish()
    if written == 0:
        _discard(tmp)
        raise GeoipError(f"the download from {source} is empty")
    return tmp


def _check(path: Path) -> dict[str, Any]:
    """The database's metadata, or GeoipError if it is no MaxMind DB answering lookups."""
    from trail.core import ConfigError, mmdb_check

    try:
        info = mmdb_check(str(path), list(PROBES))
    except ConfigError as e:
        detail = str(e).split(": ", 1)[-1]
        raise GeoipError(f"the download is not a MaxMind .mmdb database ({detail})") from None
    if not any(country for country, _, _ in info["locations"]):
        raise GeoipError(
            f"the database ({info['database_type']}) answers no lookup with a country; "
            "is it a City or Country database?"
        )
    return info


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chown_like(folder: Path, data_dir: Path) -> None:
    """Run as root on a service's data dir: give the files to the data dir's owner."""
    if os.geteuid() != 0:
        return
    owner = data_dir.stat()
    for path in (folder, folder / FILE_NAME, folder / STATE_NAME, folder / ".lock"):
        with contextlib.suppress(OSError):
            os.chown(path, owner.st_uid, owner.st_gid)


# -- the monthly refresh (maintenance process) ------------------------------------------------


def refresh_due(now: float, have_file: bool, state: Mapping[str, Any]) -> bool:
    """Whether to try a download now: never twice within RETRY_AFTER, then when there is no file
    or it is older than this month's edition."""
    checked = state.get("checked_at")
    if isinstance(checked, int | float) and 0 <= now - checked < RETRY_AFTER:
        return False
    if not have_file:
        return True
    edition = state.get("edition")
    return not (isinstance(edition, str) and edition >= month_of(now))


def refresh(config: Any, now: float | None = None, url: str | None = None) -> str:
    """The maintenance task: "off", "not due", "up to date", "updated" or "failed" (logged)."""
    if not auto_update_on(config):
        return "off"
    now = time.time() if now is None else now
    state = read_state(config.data_dir)
    have = db_path(config.data_dir).is_file()
    if not refresh_due(now, have, state):
        return "not due"
    template = state.get("template") if isinstance(state.get("template"), str) else None
    url = url or os.environ.get(URL_ENV) or template or DEFAULT_URL
    try:
        installed = update(
            config.data_dir, url, now=now, skip_edition=state.get("edition") if have else None
        )
    except (GeoipError, OSError) as e:
        problem = e if isinstance(e, GeoipError) else _disk_error(e, db_path(config.data_dir))
        log.warning("GeoIP database refresh failed (next try in a day): %s", problem)
        with contextlib.suppress(OSError):
            _write_state(config.data_dir, checked_at=now, last_error=str(problem))
        return "failed"
    if installed is None:
        _write_state(config.data_dir, checked_at=now, last_error=None)
        log.info("GeoIP database is up to date (DB-IP %s)", state.get("edition"))
        return "up to date"
    log.info(
        "GeoIP database updated to DB-IP %s (%s, %s)",
        installed.edition,
        installed.database_type,
        _mb(installed.size),
    )
    if config.geoip_db:
        log.warning("geoip_db is set, so workers keep using %s", config.geoip_db)
    return "updated"


_refreshing = threading.Lock()


def refresh_in_background(config: Any) -> None:
    """`refresh` in a daemon thread, unless one is still running or auto-update is off."""
    if not auto_update_on(config) or not _refreshing.acquire(blocking=False):
        return

    def run() -> None:
        try:
            refresh(config)
        except Exception:
            log.exception("GeoIP database refresh failed")
        finally:
            _refreshing.release()

    threading.Thread(target=run, name="geoip-refresh", daemon=True).start()


# -- workers ------------------------------------------------------------------------------------


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class Reloader:
    """Keeps a worker's engine on the current database file: `geoip_db`, or the downloaded one.

    Create it before the engine opens `geoip_db` (so a change in between is not missed), then
    `start(engine)`: it loads the downloaded file at once and looks for a new one every
    `interval` seconds. A file that fails to load is logged once and the old database stays.
    """

    def __init__(self, config: Any) -> None:
        self.override = bool(config.geoip_db)
        self.path = Path(config.geoip_db) if config.geoip_db else db_path(config.data_dir)
        # The engine opens geoip_db itself; the downloaded file is loaded by the first check.
        self.seen = _signature(self.path) if self.override else None
        self.engine: Any = None

    def check(self) -> bool:
        """Load the file if it changed since the last look; True if a new one is in use."""
        from trail.core import ConfigError

        sig = _signature(self.path)
        if sig is None or sig == self.seen:
            return False
        self.seen = sig
        try:
            self.engine.reload_geoip(str(self.path))
        except ConfigError as e:
            log.error("GeoIP database %s not loaded, keeping the previous one: %s", self.path, e)
            return False
        log.info("GeoIP database %s loaded", self.path)
        return True

    def start(self, engine: Any, interval: float = RELOAD_INTERVAL) -> None:
        self.engine = engine
        self.check()

        def loop() -> None:
            while True:
                time.sleep(interval)
                try:
                    self.check()
                except Exception:
                    log.exception("GeoIP reload check failed")

        threading.Thread(target=loop, name="geoip-reload", daemon=True).start()


# -- the command line ---------------------------------------------------------------------------


def add_commands(commands: Any) -> None:
    """`trail geoip update` on the main parser's subcommands."""
    geoip = commands.add_parser("geoip", help="the GeoIP database (countries, regions, cities)")
    sub = geoip.add_subparsers(dest="geoip_command", required=True)
    update = sub.add_parser(
        "update",
        help="download DB-IP's free City Lite database into <data_dir>/geoip (CC BY 4.0)",
    )
    update.add_argument("--config", help="TOML config file (for data_dir, geoip_db)")
    update.add_argument("--data-dir", dest="data_dir", help="data directory (default ./data)")
    update.add_argument(
        "--url",
        help=f"where to download the .mmdb.gz; {{month}} becomes YYYY-MM (default {DEFAULT_URL})",
    )
    update.add_argument(
        "--max-mb", dest="max_mb", type=int, default=MAX_MB, help="size limit (default %(default)s)"
    )


def run_command(args: argparse.Namespace) -> int:
    """`trail geoip update`: 0 when installed, 1 with one line on stderr when not."""
    from trail.config import load

    config = load(args.config, flags={"data_dir": args.data_dir})
    try:
        installed = update(
            config.data_dir,
            args.url,
            max_bytes=max(1, args.max_mb) << 20,
            progress=sys.stderr if sys.stderr.isatty() else None,
        )
    except GeoipError as e:
        print(f"trail: geoip: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"trail: geoip: {_disk_error(e, db_path(config.data_dir))}", file=sys.stderr)
        return 1
    assert installed is not None
    print(
        f"trail: geoip: installed {installed.database_type} {installed.edition} "
        f"({_mb(installed.size)}) at {installed.path}; running workers load it within "
        f"{RELOAD_INTERVAL:.0f} s"
    )
    print(f"trail: geoip: {ATTRIBUTION}")
    if config.geoip_db:
        print(
            f"trail: geoip: note: geoip_db = {config.geoip_db} is set and takes precedence; "
            "remove it to use this database",
            file=sys.stderr,
        )
    return 0

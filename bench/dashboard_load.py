"""Site dashboard load time: headless Chromium against a real `trail serve`, on stats_gen data.

    # the compacted stats_gen data sets of bench/RESULTS-stats.md, read as they are (copied):
    nice -n 0 .venv/bin/python -m bench.dashboard_load --segments /tmp/b10m --json /tmp/dl-10m.json
    nice -n 10 .venv/bin/python -m bench.dashboard_load --segments /tmp/b1m
    # or generate (bench.stats_gen, 30 days) and compact a data set first, deleted afterwards:
    nice -n 0 .venv/bin/python -m bench.dashboard_load --page-views 10000000
    # --json FILE: every load's timings and requests; --keep: keep the temp data dir;
    # --screenshot FILE: the loaded dashboard's top at 1280 px (docs/img/dashboard.png);
    # --rev REV: run trail as committed at REV instead of the working tree
    # --api-only [--open-days N]: no browser; the default view's statistics requests sent at
    # once over HTTP (6 connections, result cache off), N last days as a live day's files;
    # --restarts N: then N server restarts, one load each (fresh workers, same data dir):
    nice -n 0 .venv/bin/python -m bench.dashboard_load --segments /tmp/b10m --api-only --runs 5

Figures and what they mean: bench/RESULTS-dashboard.md. The test at a tiny size:
tests/test_bench_dashboard_load.py.

Setup, with the real code paths: a fresh data dir under --workdir (default: a temp dir in /tmp,
deleted at the end); `trail serve` starts once to create the admin (first start), the domain
(`POST /api/v1/domain`, hostname example.com, time zone UTC: stats_gen writes UTC days), a goal
(`/pricing`) and a funnel (/ -> /pricing -> /signup) so the goals and funnels panels have data
(`--no-goals`: none), and `trail admin set-password --password-stdin` gives the admin an email and
a password; the browser signs in through the /signin form. The server stops; the segments of
stats_gen's site (`site=bench-site`) are copied (--segments; the source is only read) or moved
(--page-views) to `site=<domain id>`, and `trail.tasks.compaction.run_round(grace=0)` (as
bench.stats_bench runs it, here by the code the server runs) compacts what is not compacted yet
and adds rollups that are missing or of another version.

Measurement: Debian's chromium (tests/browser.py `start_chromium`, 1280x800, en-US) loads
`/sites/<id>?range=custom&from=<first day>&to=<first day + days - 1>` ("data": the 30 days that
hold the page views, compared with the 30 days before, which are empty) and `/sites/<id>` (the
default range, the last 30 days up to today: no rows for stats_gen's 2024 days, so only the page's
fixed cost). Each load starts from about:blank; its figure is `performance.getEntriesByName
("ready")[0].startTime` (ms since navigation start; site.js sets the mark when every part has
settled), plus the resource timing entries of its API requests and assets, and from those the
first statistics request, the last statistics answer and the time from that answer to `ready`
(what the page itself adds once the server has answered: drawing, the map, the DOM). After each load the
DOM is checked: no part may have failed (`body[data-failed]`, visible `.error` elements, HTTP
errors), and on the data range every panel must show rows; otherwise the run stops with an error.

Phases (the server has `os.cpu_count()` workers unless --workers, default settings otherwise):
- cold: the first load after a server start (fresh worker processes, empty result cache, browser
  cache cleared), --cold-runs times (a restart each; the OS page cache stays warm), --settle s
  after the server answers /health;
- warm: --runs loads of each URL on the same server after that (the result cache answers reports
  over closed days, per worker);
- uncached: a server with the result cache off (TRAIL_COMPACTION_DELAY_S=1e12, so no day counts as
  closed for it: what every range that includes today gets), one load to start the processes, then
  --runs loads; then every statistics request of the page alone, one after the other, in the
  page (`fetch`), median of --solo-repeat: what each report costs without the others.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.stats_gen import SITE, generate
from tests.browser import start_chromium
from tests.server import TrailServer

EMAIL = "bench@dashboard.test"
PASSWORD = "dashboard bench password"
TABLES = ("sessions", "page_views", "events")
# trail's defaults for what tests/server.py shortens for its tests.
DEFAULT_ENV = {"TRAIL_RULES_CACHE_MS": "2000", "TRAIL_ACCESS_KEY_CACHE_MS": "2000"}
NO_RESULT_CACHE = {"TRAIL_COMPACTION_DELAY_S": "1e12"}

# Waits in the page for the ready mark, then reports it, the API requests and the DOM's state.
COLLECT_JS = """
const done = arguments[arguments.length - 1];
function collect() {
  const ready = performance.getEntriesByName("ready")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  const requests = performance.getEntriesByType("resource")
    .filter((e) => /^[/](api|assets)[/]/.test(new URL(e.name).pathname))
    .map((e) => ({ url: e.name, start: e.startTime, sent: e.requestStart,
                   first_byte: e.responseStart, end: e.responseEnd, status: e.responseStatus }));
  const assets = performance.getEntriesByType("resource")
    .map((e) => new URL(e.name).pathname).filter((p) => p.startsWith("/assets/"));
  const visible = (e) => !e.closest("[hidden]") && e.getClientRects().length > 0;
  const errors = [...document.querySelectorAll(".error")].filter(visible)
    .map((e) => ((e.closest("[id]") || {}).id || e.tagName) + ": " + e.textContent.trim());
  const siteError = document.getElementById("site-error");
  if (siteError && !siteError.hidden) errors.push("site-error: " + siteError.textContent);
  const panels = {};
  for (const b of document.querySelectorAll(".panel-body")) {
    panels[b.id] = b.querySelector(".error") ? "error" : b.querySelector(".empty") ? "empty"
      : b.querySelector("ol li, table") ? "data" : "blank";
  }
  const value = (sel) => { const n = document.querySelector(sel); return n ? n.dataset.value : null; };
  return {
    ready: ready ? ready.startTime : null,
    page_first_byte: nav ? nav.responseStart : null,
    dom_content_loaded: nav ? nav.domContentLoadedEventEnd : null,
    load_event: nav ? nav.loadEventEnd : null,
    loaded: document.body.dataset.loaded || null,
    failed: document.body.dataset.failed || null,
    url: location.href, errors, panels, requests, assets,
    busy: [...document.querySelectorAll("[aria-busy=true]")].map((e) => e.id),
    visitors: value("#stat-visitors .num"), views: value("#stat-views .num"),
    chart_points: (document.getElementById("chart") || { dataset: {} }).dataset.points || null,
    active: (document.getElementById("active") || {}).textContent || "",
  };
}
(function check() {
  if (document.body && document.body.dataset.loaded) done(collect());
  else setTimeout(check, 20);
})();
"""

# Fetches each URL alone, one after the other; ms per URL.
SOLO_JS = """
const done = arguments[arguments.length - 1];
(async () => {
  const out = [];
  for (const u of arguments[0]) {
    const t0 = performance.now();
    const r = await fetch(u, { credentials: "same-origin" });
    await r.text();
    out.push([u, performance.now() - t0, r.status]);
  }
  return out;
})().then(done, (e) => done(String(e)));
"""


class LoadFailed(RuntimeError):
    pass


def run(cmd: list[str], **kw: Any) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} -> {done.returncode}: {done.stderr}")
    return done.stdout


def start_server(data: Path, workers: int, env: dict[str, str]) -> TrailServer:
    return TrailServer(data, workers=workers, env={**DEFAULT_ENV, **env}).start(timeout=120)


def stop_server(server: TrailServer | None) -> None:
    if server is None or server.proc is None or server.proc.poll() is not None:
        return
    try:
        code = server.stop(timeout=60)
        if code != 0:
            print(f"warning: trail exited with {code}", file=sys.stderr)
    except Exception:  # noqa: BLE001  never leave it running
        server.kill9()


def create_site(server: TrailServer, goals: bool, timezone: str = "UTC") -> str:
    key = server.admin_key
    assert key, "the first start printed no admin key"
    domain = {"hostname": "example.com", "subdomain": "bench", "timezone": timezone}
    r = server.call("POST", "/api/v1/domain", domain, key=key)
    assert r.status == 200, r.body
    site: str = r.json()["id"]
    if goals:
        goal = {"domain_id": site, "name": "Pricing", "path_pattern": "/pricing"}
        r = server.call("POST", "/api/v1/goal", goal, key=key)
        assert r.status == 200, r.body
        steps = [
            {"name": "Home", "filter": {"path": ["/"]}},
            {"name": "Pricing", "filter": {"path": ["/pricing"]}},
            {"name": "Sign-up", "filter": {"path": ["/signup"]}},
        ]
        funnel = {"domain_id": site, "name": "Sign-up", "steps": steps}
        r = server.call("POST", "/api/v1/funnel", funnel, key=key)
        assert r.status == 200, r.body
    return site


def sign_in(driver: Any, server: TrailServer) -> None:
    """The /signin form, as a person would use it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(server.url + "/signin")
    for name, value in (("email", EMAIL), ("password", PASSWORD)):
        box = driver.find_element(By.ID, name)
        box.clear()
        box.send_keys(value)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 20).until(lambda d: urllib.parse.urlsplit(d.current_url).path == "/sites")


def import_segments(src: Path, data: Path, site: str, move: bool) -> None:
    """stats_gen's `segments/<table>/site=bench-site` -> `<data>/segments/<table>/site=<site>`."""
    for table in TABLES:
        source = src / "segments" / table / f"site={SITE}"
        if not source.is_dir():
            raise SystemExit(f"{source} is missing: not a bench.stats_gen output directory")
        target = data / "segments" / table / f"site={site}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if move:
            source.rename(target)
        else:
            shutil.copytree(source, target)


def data_days(data: Path, site: str) -> list[date]:
    days = []
    for d in (data / "segments" / "page_views" / f"site={site}").iterdir():
        if d.name.startswith("day="):
            days.append(date.fromisoformat(d.name[4:]))
    return sorted(days)


def label(url: str, first: str) -> str:
    """A request's short name: the report (or API path) and `prev` for the comparison window."""
    parts = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qs(parts.query)
    if parts.path.startswith("/assets/"):  # /assets/site.<hash>.js -> /assets/site.js
        stem, _, ext = parts.path.rpartition(".")
        return stem.rpartition(".")[0] + "." + ext
    if not parts.path.startswith("/api/v1/statistics/"):
        return parts.path  # /api/v1/auth/session, /api/v1/domain, /api/v1/goal, ...
    name = parts.path.removeprefix("/api/v1/statistics/")
    if q.get("from", [first])[0] != first:
        name += " (prev)"
    return name


def load(driver: Any, url: str, first: str, timeout: float, need_data: bool) -> dict[str, Any]:
    """One navigation from about:blank; the page's timings, checked for errors."""
    driver.get("about:blank")
    driver.set_script_timeout(timeout)
    driver.get(url)
    info: dict[str, Any] = driver.execute_async_script(COLLECT_JS)
    problems = list(info["errors"])
    if info["failed"] != "0":
        problems.append(f"data-failed={info['failed']}")
    problems += [
        f"HTTP {r['status']} {r['url']}" for r in info["requests"] if r["status"] not in (0, 200)
    ]  # 0: from the browser's cache
    if info["ready"] is None:
        problems.append("no ready mark")
    if info["busy"]:
        problems.append(f"still busy: {info['busy']}")
    problems += [f"{k}: {v}" for k, v in info["panels"].items() if v in ("error", "blank")]
    if need_data:
        problems += [f"{k}: empty" for k, v in info["panels"].items() if v != "data"]
        if not int(info["visitors"] or 0) or not int(info["chart_points"] or 0):
            problems.append(
                f"top stats/chart without data: {info['visitors']}, {info['chart_points']}"
            )
    if problems:
        console = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        raise LoadFailed(f"{url}: the page set ready with problems: {problems}; console: {console}")
    for r in info["requests"]:
        r["name"] = label(r["url"], first)
    stats = [r for r in info["requests"] if not r["name"].startswith("/")]
    info["stats_start"] = min((r["start"] for r in stats), default=None)
    # What the page adds after the server: from the last statistics answer to the ready mark.
    info["last_answer"] = max((r["end"] for r in stats), default=None)
    info["after_answers"] = (
        info["ready"] - info["last_answer"] if info["last_answer"] is not None else None
    )
    return info


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def fmt(s: dict[str, float] | None) -> str:
    if not s:
        return "-"
    if s["n"] == 1:
        return f"{s['median']:.0f} ms (1 load)"
    return f"{s['median']:.0f} ms ({s['min']:.0f}-{s['max']:.0f}, {s['n']} loads)"


def request_table(loads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per request name, over the loads: when it ended (ms since navigation start), how long it
    waited in the browser (for a connection: 6 per host) and the server's time to first byte."""
    by: dict[str, dict[str, list[float]]] = {}
    for info in loads:
        for r in info["requests"]:
            d = by.setdefault(r["name"], {"end": [], "queued": [], "server": []})
            d["end"].append(r["end"])
            d["queued"].append(r["sent"] - r["start"])
            d["server"].append(r["first_byte"] - r["sent"])
    rows = [
        {"name": name, **{k: statistics.median(v) for k, v in d.items()}} for name, d in by.items()
    ]
    return sorted(rows, key=lambda r: -r["end"])


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine() -> dict[str, Any]:
    def out(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=20)
            return done.stdout.strip()
        except OSError:
            return "?"

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    import hashlib

    import polars

    so = next(Path(__file__).resolve().parents[1].joinpath("trail").glob("_core*.so"), None)
    core = "?"
    if so is not None:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(so.stat().st_mtime))
        core = f"sha256 {hashlib.sha256(so.read_bytes()).hexdigest()[:12]}, built {stamp} UTC"
    return {
        "core_extension": core,
        "cpus": os.cpu_count(),
        "cpu": model,
        "chromium": out(["chromium", "--version"]),
        "python": platform.python_version(),
        "polars": polars.__version__,
        "commit": out(["git", "rev-parse", "--short", "HEAD"]),
        "dirty_files": len(
            out(["git", "status", "--porcelain", "--", "trail", "rust_core"]).splitlines()
        ),
    }


# --api-only: the statistics requests of the default view over HTTP, without a browser.
API_REPORTS = [
    "total", "visitor", "duration/session", "page", "page/entry", "page/exit", "referrer",
    "channel", "utm/source", "utm/medium", "utm/campaign", "utm/content", "utm/term", "country",
    "region", "city", "browser", "os", "platform", "screen", "language", "events", "weekdays",
]  # fmt: skip
CONNECTIONS = 6  # a browser's connections per host


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its descendants, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def tree_rss(pid: int, field: str = "VmRSS") -> dict[str, int]:
    """RSS in MB of a process and its descendants, by command (`trail.worker --id 0`, ...);
    `field` of /proc/<pid>/status: VmRSS, or its parts RssAnon (the process's own) and RssFile
    (mapped files, such as the machine's shared indexes: the page cache holds them once)."""
    out, todo = {}, [pid]
    while todo:
        p = todo.pop()
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{p}/status").read_text()
            rss = next(
                int(line.split()[1]) for line in status.splitlines() if line.startswith(field)
            )
            name = " ".join(a.decode() for a in cmd[1:5] if a and not a.startswith(b"{"))
            out[f"{p} {name}"] = rss // 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return out


def api_load(server: TrailServer, key: str, urls: list[str], timeout: float) -> dict[str, Any]:
    """Every URL at once over CONNECTIONS connections: wall ms of the whole set (first sent to
    last answered), server CPU ms, ms per request."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.server import request

    def one(url: str) -> tuple[str, float]:
        t = time.perf_counter()
        auth = {"Authorization": f"Bearer {key}"}
        r = request("GET", server.url + url, None, auth, timeout=timeout)
        if r.status != 200:
            raise LoadFailed(f"{url}: HTTP {r.status} {r.body[:200]!r}")
        return url, (time.perf_counter() - t) * 1000

    assert server.proc is not None
    cpu0, t0 = tree_cpu(server.proc.pid), time.perf_counter()
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        done = list(pool.map(one, urls))
    wall = (time.perf_counter() - t0) * 1000
    return {"wall": wall, "cpu": (tree_cpu(server.proc.pid) - cpu0) * 1000, "requests": done}


def reopen_days(data: Path, site: str, days: list[date]) -> None:
    """Turn compacted days back into a live day's files (one Arrow segment per table, no
    manifest, no rollup): what the reports meet on the day that has not closed yet."""
    import polars as pl

    for table in TABLES:
        for day in days:
            d = data / "segments" / table / f"site={site}" / f"day={day.isoformat()}"
            if not d.is_dir():
                continue
            parts = sorted(d.glob("part-*.parquet"))
            df = pl.concat([pl.read_parquet(p) for p in parts]) if parts else None
            for f in d.iterdir():
                if f.is_file():
                    f.unlink()
            if df is not None:
                df.write_ipc(d / "w0-g1-0.arrow", compression="uncompressed")


def api_main(a: argparse.Namespace) -> dict[str, Any]:
    """--api-only: the default view's statistics requests (API_REPORTS, one window) sent at
    once to `trail serve` (result cache off), --runs times; the first after the start is cold."""
    root = Path(tempfile.mkdtemp(prefix="trail-dashboard-api-", dir=a.workdir))
    data = root / "data"
    server: TrailServer | None = None
    result: dict[str, Any] = {"machine": machine(), "loadavg_start": loadavg()}
    cwd = os.getcwd()
    try:
        if a.rev:
            result["code"] = export_rev(a.rev, root / "code")
            os.chdir(root / "code")  # the server's `python -m trail` imports trail from here
        server = start_server(data, a.workers, {})
        key = server.admin_key
        assert key, "the first start printed no admin key"
        site = create_site(server, goals=False, timezone=a.tz)
        stop_server(server)
        server = None
        import_segments(a.segments, data, site, move=False)
        result["compaction"] = compact(data)
        days = data_days(data, site)
        first, last = days[0], days[0] + timedelta(days=a.days - 1)
        if a.open_days:
            reopen_days(data, site, [last - timedelta(days=i) for i in range(a.open_days)])
        query = urllib.parse.urlencode({"id": site, "from": first, "to": last, "tz": a.tz})
        urls = [f"/api/v1/statistics/{name}?{query}" for name in API_REPORTS]
        server = start_server(data, a.workers, NO_RESULT_CACHE)
        time.sleep(a.settle)
        runs = []
        for i in range(a.runs):
            runs.append(api_load(server, key, urls, a.timeout))
            print(f"api load {i}: {runs[-1]['wall']:7.0f} ms wall, {runs[-1]['cpu']:7.0f} ms "
                  f"server CPU   load avg {loadavg()}", flush=True)  # fmt: skip
        assert server.proc is not None
        rss = tree_rss(server.proc.pid)
        time.sleep(5)  # what the workers keep once the load is over
        rss_later = tree_rss(server.proc.pid)
        anon_later = tree_rss(server.proc.pid, "RssAnon")
        time.sleep(15)  # past the allocators' decay of freed pages (Polars' jemalloc: 10 s)
        rss_20s = tree_rss(server.proc.pid)
        restarted = []  # the first load after a restart: fresh workers, the machine's indexes kept
        for i in range(a.restarts):
            stop_server(server)
            server = start_server(data, a.workers, NO_RESULT_CACHE)
            time.sleep(a.settle)
            restarted.append(api_load(server, key, urls, a.timeout))
            print(f"after restart {i}: {restarted[-1]['wall']:7.0f} ms wall, "
                  f"{restarted[-1]['cpu']:7.0f} ms server CPU   load avg {loadavg()}", flush=True)  # fmt: skip
        result.update(site=site, first=str(first), last=str(last), open_days=a.open_days,
                      runs=runs, restarted=restarted, loadavg_end=loadavg(), rss_mb=rss,
                      rss_mb_5s_later=rss_later, rss_anon_mb_5s_later=anon_later,
                      rss_mb_20s_later=rss_20s)  # fmt: skip
        later = runs[1:] or runs
        print(f"{len(urls)} requests, {first} .. {last}, {a.open_days} day(s) read from rows, "
              f"{a.workers} workers: first load {runs[0]['wall']:.0f} ms wall "
              f"({runs[0]['cpu']:.0f} ms CPU); then median "
              f"{statistics.median(r['wall'] for r in later):.0f} ms wall "
              f"({statistics.median(r['cpu'] for r in later):.0f} ms CPU); "
              f"load average {result['loadavg_start']} -> {result['loadavg_end']}")  # fmt: skip
        print("RSS after the loads (MB): " + ", ".join(f"{k}: {v}" for k, v in rss.items()))
        print("5 s later: " + ", ".join(f"{k}: {v}" for k, v in rss_later.items()))
        print("20 s later: " + ", ".join(f"{k}: {v}" for k, v in rss_20s.items()))
        print(
            "of which anonymous (RssAnon): " + ", ".join(f"{k}: {v}" for k, v in anon_later.items())
        )
        slow = sorted(((u, ms) for u, ms in later[-1]["requests"]), key=lambda x: -x[1])
        for u, ms in slow:
            print(f"  {label(u, str(first)):20s} {ms:7.0f} ms")
        return result
    finally:
        stop_server(server)
        os.chdir(cwd)
        if a.json:
            a.json.write_text(json.dumps(result, indent=1, default=str))
        if a.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--segments", type=Path, help="a bench.stats_gen output dir (with segments/)")
    src.add_argument("--page-views", type=int, default=10_000_000, help="generate this many")
    ap.add_argument("--days", type=int, default=30, help="days of data (the range loaded)")
    ap.add_argument("--runs", type=int, default=7, help="warm and uncached loads per URL")
    ap.add_argument("--cold-runs", type=int, default=3, help="server starts, one cold load each")
    ap.add_argument("--solo-repeat", type=int, default=3)
    ap.add_argument("--cpu-repeat", type=int, default=2, help="0: no in-process CPU probe")
    ap.add_argument("--uncached", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--goals", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--tz", default="UTC", help="--api-only: the site's zone and the requests' tz")
    ap.add_argument("--settle", type=float, default=3.0, help="s to wait after a server start")
    ap.add_argument("--timeout", type=float, default=180.0, help="s a load may take")
    ap.add_argument("--workdir", type=Path, default=None, help="where the temp data dir goes")
    ap.add_argument("--keep", action="store_true", help="keep the temp data dir")
    ap.add_argument("--json", type=Path, default=None, help="write every load's details here")
    ap.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        help="save the data range's dashboard (its top, 1280x1640) here after the loads",
    )
    ap.add_argument(
        "--rev",
        help="run trail as committed at this revision (git archive into the temp dir, with the "
        "built extension) instead of the working tree",
    )
    ap.add_argument(
        "--api-only",
        action="store_true",
        help="no browser: the default view's statistics requests over HTTP (API_REPORTS)",
    )
    ap.add_argument(
        "--open-days",
        type=int,
        default=0,
        help="with --api-only: the last N days of the range as a live day's files",
    )
    ap.add_argument(
        "--restarts",
        type=int,
        default=0,
        help="with --api-only: then restart the server N times, one load after each",
    )
    a = ap.parse_args(argv)
    if a.api_only:
        if not a.segments:
            ap.error("--api-only needs --segments")
        return api_main(a)
    if not (a.cold_runs or a.runs):
        ap.error("nothing to measure: --cold-runs and --runs are 0")

    root = Path(tempfile.mkdtemp(prefix="trail-dashboard-load-", dir=a.workdir))
    data = root / "data"
    server: TrailServer | None = None
    driver = None
    result: dict[str, Any] = {
        "machine": machine(),
        "loadavg_start": loadavg(),
        "argv": argv or sys.argv[1:],
    }
    ok = False
    cwd = os.getcwd()
    try:
        if a.rev:
            result["code"] = export_rev(a.rev, root / "code")
            os.chdir(root / "code")  # the server's `python -m trail` imports trail from here
        else:
            result["code"] = "working tree"
        driver = start_chromium(root / "chromium-profile", "--lang=en-US", console_logs=True)
        t0 = time.perf_counter()
        server = start_server(data, a.workers, {})
        site = create_site(server, a.goals)
        run(
            [sys.executable, "-m", "trail", "admin", "set-password", "--data-dir", str(data),
             "--email", EMAIL, "--password-stdin"],
            input=PASSWORD + "\n", timeout=60,
        )  # fmt: skip
        sign_in(driver, server)
        stop_server(server)
        server = None
        if a.segments:
            import_segments(a.segments, data, site, move=False)
        else:
            gen = root / "generated"
            counts = generate(gen, a.page_views, a.days)
            print(f"generated {counts}", flush=True)
            import_segments(gen, data, site, move=True)
            shutil.rmtree(gen)
        compacted = compact(data)
        days = data_days(data, site)
        first, last = days[0], days[0] + timedelta(days=a.days - 1)
        page_views = _page_views(data, site)
        result.update(
            site=site, first=first.isoformat(), last=last.isoformat(), page_views=page_views,
            compaction=compacted, setup_s=round(time.perf_counter() - t0, 1),
        )  # fmt: skip
        print(f"site {site}: {page_views} page views, {first} .. {days[-1]} "
              f"(setup {result['setup_s']} s; compaction: {result['compaction']})", flush=True)  # fmt: skip
        base = lambda s: f"{s.url}/sites/{site}"
        query = f"?range=custom&from={first}&to={last}"
        f0 = first.isoformat()
        phases: dict[str, dict[str, list[dict[str, Any]]]] = {
            "cold": {"data": []},
            "warm": {"data": [], "default": []},
            "uncached": {"data": []},
        }

        def measure(phase: str, which: str) -> None:
            assert server is not None
            url = base(server) + (query if which == "data" else "")
            info = load(driver, url, f0, a.timeout, need_data=which == "data")
            phases[phase][which].append(info)
            print(
                f"{phase:8s} {which:7s} ready {info['ready']:7.0f} ms   load avg {loadavg()}",
                flush=True,
            )

        for i in range(a.cold_runs):
            server = start_server(data, a.workers, {})
            time.sleep(a.settle)
            driver.execute_cdp_cmd("Network.clearBrowserCache", {})
            measure("cold", "data")
            if i < a.cold_runs - 1:
                stop_server(server)
        if a.runs and server is None:  # --cold-runs 0
            server = start_server(data, a.workers, {})
            time.sleep(a.settle)
        for _ in range(a.runs):
            measure("warm", "data")
            measure("warm", "default")
        if a.screenshot:  # after a data load: the README's picture
            assert server is not None
            load(driver, base(server) + query, f0, a.timeout, need_data=True)
            driver.set_window_size(1280, 1640)  # the top stats, chart and first panels
            driver.save_screenshot(str(a.screenshot))
            driver.set_window_size(1280, 800)
        stop_server(server)
        server = None
        solo: dict[str, float] = {}
        if a.uncached:
            server = start_server(data, a.workers, NO_RESULT_CACHE)
            time.sleep(a.settle)
            url = base(server) + query
            started = load(driver, url, f0, a.timeout, need_data=True)  # not counted
            for _ in range(a.runs):
                measure("uncached", "data")
            urls = [
                r["url"] for r in (phases["uncached"]["data"] or [started])[-1]["requests"]
                if "/api/v1/statistics/" in r["url"]
            ]  # fmt: skip
            times: dict[str, list[float]] = {}
            for _ in range(a.solo_repeat):
                answer = driver.execute_async_script(SOLO_JS, urls)
                if isinstance(answer, str):
                    raise LoadFailed(f"solo requests: {answer}")
                for u, ms, status in answer:
                    if status != 200:
                        raise LoadFailed(f"solo request {u}: HTTP {status}")
                    times.setdefault(label(u, f0), []).append(ms)
            solo = {k: statistics.median(v) for k, v in times.items()}
            stop_server(server)
            server = None
        result["loadavg_end"] = loadavg()
        result["ready"] = {
            f"{p}/{w}": summary([x["ready"] for x in loads])
            for p, by in phases.items() for w, loads in by.items() if loads
        }  # fmt: skip
        for key in (
            "stats_start", "last_answer", "after_answers", "page_first_byte", "dom_content_loaded"
        ):  # fmt: skip
            result[key] = {
                f"{p}/{w}": summary([x[key] for x in loads])
                for p, by in phases.items() for w, loads in by.items() if loads
            }  # fmt: skip
        result["requests"] = {
            f"{p}/{w}": request_table(loads)
            for p, by in phases.items() for w, loads in by.items() if loads
        }  # fmt: skip
        result["solo"] = dict(sorted(solo.items(), key=lambda kv: -kv[1]))
        final = next(ls[-1] for by in reversed(phases.values()) for ls in by.values() if ls)
        result["assets"] = final["assets"]
        result["cpu"] = cpu_probe(data, site, final["requests"], f0, a.cpu_repeat)
        result["loads"] = phases
        report(result)
        ok = True
        return result
    finally:
        os.chdir(cwd)
        stop_server(server)
        if driver is not None:
            driver.quit()
        if a.json:
            a.json.write_text(json.dumps(result, indent=1, default=str))
        if not ok:
            for log in root.glob("server-*.log"):
                print(f"--- {log.name} (last lines)", file=sys.stderr)
                print("\n".join(log.read_text().splitlines()[-30:]), file=sys.stderr)
        if a.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def export_rev(rev: str, to: Path) -> str:
    """`git archive <rev> trail` into `to`, plus the extension built in the working tree."""
    repo = Path(__file__).resolve().parents[1]
    sha = run(["git", "rev-parse", "--short", rev], cwd=repo).strip()
    to.mkdir()
    tar = subprocess.run(
        ["git", "archive", sha, "trail"], cwd=repo, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(to)], input=tar.stdout, check=True)
    for so in (repo / "trail").glob("_core*.so"):
        shutil.copy2(so, to / "trail" / so.name)
    return f"git archive {sha} (+ the working tree's trail/_core extension)"


def _page_views(data: Path, site: str) -> int:
    import polars as pl

    glob = str(data / "segments" / "page_views" / f"site={site}" / "*" / "part-*.parquet")
    return int(pl.scan_parquet(glob).select(pl.len()).collect().item())


# Each statistics request of a load in-process (cwd: the server's code), as a worker runs it (1
# Polars thread, result cache off): wall and CPU ms (all threads of the process) per run, after a
# first run that warms code paths and file caches.
CPU_PY = """
import json, resource, sys, time, urllib.parse
from pathlib import Path
from types import SimpleNamespace
from trail.services import statistics as st
from trail.stats import cache
from trail.storage.meta import MetaStore
cache.CLOSED_AFTER = float("inf")
arg = json.load(sys.stdin)
meta = MetaStore.open(Path(arg["data"]) / "meta")
ctx = SimpleNamespace(data_dir=Path(arg["data"]), meta=meta)
site = meta.get_site(arg["site"])
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
out = {}
for url in arg["urls"]:
    parts = urllib.parse.urlsplit(url)
    name = parts.path.removeprefix("/api/v1/statistics/")
    params = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    runs = []
    for _ in range(arg["repeat"] + 1):
        t, c = time.perf_counter(), cpu()
        st.run(ctx, name, params, site)
        runs.append([(time.perf_counter() - t) * 1000, (cpu() - c) * 1000])
    out[url] = runs[1:]
print(json.dumps(out))
"""


def cpu_probe(
    data: Path, site: str, requests: list[dict[str, Any]], first: str, repeat: int
) -> dict[str, dict[str, float]]:
    """{request name: {wall, cpu}} medians of the in-process runs; the load-independent figure."""
    if repeat <= 0:
        return {}
    from trail.config import Config

    urls = list(dict.fromkeys(r["url"] for r in requests if "/api/v1/statistics/" in r["url"]))
    arg = {"data": str(data), "site": site, "urls": urls, "repeat": repeat}
    env = {**os.environ, "POLARS_MAX_THREADS": str(Config().polars_threads)}
    answer = json.loads(
        run([sys.executable, "-c", CPU_PY], input=json.dumps(arg), env=env, timeout=3600)
    )
    out = {}
    for url, runs in answer.items():
        out[label(url, first)] = {
            "wall": statistics.median(w for w, _ in runs),
            "cpu": statistics.median(c for _, c in runs),
        }
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["cpu"]))


# Run by the same code as the server (--rev: the exported tree): rollups must be the version it reads.
COMPACT_PY = """
import collections, json, sys, time
from trail.tasks import compaction
s = compaction.run_round(sys.argv[1], now=time.time(), grace=0)
failed = [d.error for d in s.dirs if d.action == "failed"]
print(json.dumps({"actions": collections.Counter(d.action for d in s.dirs), "failed": failed}))
"""


def compact(data: Path) -> str:
    """trail.tasks.compaction.run_round(grace=0), as bench.stats_bench does: compacts the days not
    compacted yet and adds rollups that are missing or of another version."""
    answer = json.loads(run([sys.executable, "-c", COMPACT_PY, str(data)], timeout=3600))
    if answer["failed"]:
        raise RuntimeError(f"compaction failed: {answer['failed']}")
    return (
        ", ".join(f"{n} {action}" for action, n in sorted(answer["actions"].items())) or "nothing"
    )


def report(r: dict[str, Any]) -> None:
    m = r["machine"]
    print()
    print(f"## {r['page_views']:,} page views, {r['first']} .. {r['last']}, site {r['site']}")
    print(f"code: {r['code']}; assets: {' '.join(r['assets'])}")
    print(f"machine: {m['cpus']} cpus ({m['cpu']}), {m['chromium']}, polars {m['polars']}, "
          f"commit {m['commit']} (+{m['dirty_files']} changed files under trail/ rust_core/), "
          f"trail/_core {m['core_extension']}; "
          f"load average {r['loadavg_start']} at start, {r['loadavg_end']} at end")  # fmt: skip
    print()
    print("| phase | URL | **ready** (median, min-max) | page's first byte | DOMContentLoaded "
          "| first statistics request | last statistics answer | ready - last answer |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for k, s in r["ready"].items():
        phase, which = k.split("/")
        more = " | ".join(
            f"{r[x][k]['median']:.0f}" if k in r.get(x, {}) else "-"
            for x in ("page_first_byte", "dom_content_loaded", "stats_start", "last_answer",
                      "after_answers")
        )  # fmt: skip
        print(f"| {phase} | {which} | **{fmt(s)}** | {more} |")
    for k, rows in r["requests"].items():
        if k.endswith("default"):
            continue
        print()
        print(f"{k}: API requests by when they ended (median ms since navigation start; "
              "queued = waiting for a browser connection, server = request sent to first byte)")  # fmt: skip
        print("| request | ended | queued | server |")
        print("|---|---|---|---|")
        for row in rows[:12]:
            print(
                f"| {row['name']} | {row['end']:.0f} | {row['queued']:.0f} | {row['server']:.0f} |"
            )
    if r["solo"] or r["cpu"]:
        print()
        names = list(r["cpu"]) or list(r["solo"])
        names += [n for n in r["solo"] if n not in names]
        solo = sum(r["solo"].values())
        cpu = sum(c["cpu"] for c in r["cpu"].values())
        wall = sum(c["wall"] for c in r["cpu"].values())
        print("each statistics request alone, result cache off (medians, ms): from the page (wall), "
              "and in-process as a worker runs it (1 Polars thread: wall and CPU)")  # fmt: skip
        print("| request | from the page | in-process wall | in-process CPU |")
        print("|---|---|---|---|")
        for name in names:
            c = r["cpu"].get(name, {})
            cells = [r["solo"].get(name), c.get("wall"), c.get("cpu")]
            print(
                f"| {name} | " + " | ".join("-" if x is None else f"{x:.0f}" for x in cells) + " |"
            )
        sums = [f"{x:.0f}" if x else "-" for x in (solo, wall, cpu)]
        print(f"| **sum** | {sums[0]} | {sums[1]} | **{sums[2]}** |")
        if cpu:
            cores = r["machine"]["cpus"]
            print(f"CPU per uncached load / {cores} cores = {cpu / cores:.0f} ms: the least an "
                  "uncached load can take on this machine, idle")  # fmt: skip


if __name__ == "__main__":
    try:
        main()
    except LoadFailed as e:
        raise SystemExit(f"FAILED: {e}") from None

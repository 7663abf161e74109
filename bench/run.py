"""`make bench`: trail's peak-rate and latency benchmarks; writes bench/RESULTS.md.

Parts (fresh temporary data dirs, servers started and stopped here):
  1. peak POST /api/v1/hit (wrk, varied payloads) against trail and against the bare Robyn app
     (bench/bare_app.py) in alternating short rounds, at several connection counts;
  2. POST /api/v1/hit/batch with 500 hits per request (wrk with pre-built bodies);
  3. mixed traffic with locust (FastHttpUser) at half of the /hit peak: p50/p99;
  4. worker RSS before and after the load;
  5. acknowledged vs counted hits from /api/v1/statistics/total per part;
  6. if a target is missed: perf + py-spy profiles of the workers under load;
  7. the browser paths (`POST /api/v1/collect` as tracker.js sends it, `GET /api/v1/hit?code=` as
     pa.js sends it) against `/hit` and the bare route, in alternating rounds, with the server
     CPU per request of each (`--browser` runs only this part and rewrites only its section);
  8. GoatCounter v2.7.0 as a peer where Go is present (built once into .bench/goatcounter/ by
     bench/goatcounter_peer.py; without Go one line says it is skipped): its `/count` against
     trail's `/collect` and `/hit` in rotated rounds (rates, CPU per request, RSS of every
     server process), acknowledged vs stored page views after a kill -9 of each, and
     GoatCounter's memory from loopback with and without X-Forwarded-For (`--goatcounter` runs
     only this part and rewrites only its section).

    .venv/bin/python bench/run.py [--quick] [--no-profile] [--browser | --goatcounter]
                                  [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench import goatcounter_peer

BIN = Path(sys.executable).parent  # the project venv's bin/
WORKERS = 2
WRK_THREADS = 2
TARGET_RATIO = 0.6
TARGET_BATCH_HPS = 50_000
TARGET_P99_MS = 10.0
BATCH_SIZE = 500
# The browser paths, against /hit and the bare route in the same run (issue 14).
TARGET_BROWSER_OF_HIT = 0.9
TARGET_HIT_OF_BARE = 0.75
# Browser requests carry the visitor's IP in X-Forwarded-For, and wrk's ~1,200 visitors each send
# more than the default collect limit (10 per 10 s): the limit stays on (its check is part of the
# cost) but high enough never to answer 429.
SERVER_ENV = {"TRAIL_TRUSTED_PROXIES": "127.0.0.1", "TRAIL_RATE_LIMIT_COLLECT": "4000000000/10"}
BROWSER_SECTION = "## 7. Browser ingestion"
GOATCOUNTER_SECTION = "## 8. GoatCounter as a peer"

COMMANDS: list[str] = []  # every load command as run, for RESULTS.md


def log(msg: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


# -- machine --------------------------------------------------------------------------------


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "not available"


def machine_info() -> dict[str, str]:
    from importlib.metadata import version

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB",
        "python": platform.python_version(),
        "robyn": version("robyn"),
        "locust": version("locust"),
        "wrk": tool_version(["wrk", "--version"]),
    }


def wait_quiet(limit: float, max_wait: float) -> tuple[float, float]:
    """Wait (up to max_wait s) for the 1-minute load average to drop below `limit`."""
    start = time.monotonic()
    load = os.getloadavg()[0]
    while load > limit and time.monotonic() - start < max_wait:
        log(f"load average {load:.2f} > {limit}: waiting for a quiet machine")
        time.sleep(10)
        load = os.getloadavg()[0]
    return load, time.monotonic() - start


# -- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(
    method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 30
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Trail:
    """`trail serve` with a fresh data dir; knows its admin key and its worker pids. With
    `tree`, the server runs the `trail` package of that source tree (`python -m trail` from it)
    instead of the installed one: two versions of the code side by side in one run."""

    def __init__(self, data_dir: Path, port: int, tree: Path | None = None) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.tree = tree
        command = [sys.executable, "-m", "trail"] if tree else [str(BIN / "trail")]
        self.argv = [
            *command,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--workers",
            str(WORKERS),
        ]
        self.log_path = data_dir.parent / "trail.log"
        self.admin_key = ""
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = dict(SERVER_ENV)
        if self.tree:
            env["PYTHONPATH"] = str(self.tree)  # the workers run `python -m` from the cwd too
        env_text = " ".join(f"{k}={v}" for k, v in env.items())
        COMMANDS.append(f"{env_text} {shlex.join(self.argv)}")
        with self.log_path.open("w") as err:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                cwd=self.tree or ROOT,
                env={**os.environ, **env},
            )
        listening = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                if m := re.search(r"admin API key.*: (\S+)", line):
                    self.admin_key = m.group(1)
                if "listening" in line:
                    listening.set()

        threading.Thread(target=read, daemon=True).start()
        if not listening.wait(120) or not self.admin_key:
            raise SystemExit(f"trail did not start; see {self.log_path}")
        wait_http(f"{self.base}/health", "GET")

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        return children_matching(self.proc.pid, "trail.worker")

    def site(self, subdomain: str) -> tuple[str, str]:
        """A new site (UTC) and its access key."""
        status, body = http(
            "POST",
            f"{self.base}/api/v1/domain",
            {"hostname": "bench.example.com", "subdomain": subdomain, "timezone": "UTC"},
            self.admin_key,
        )
        if status != 200:
            raise SystemExit(f"creating a domain failed: {status} {body[:300]!r}")
        site_id = json.loads(body)["id"]
        status, body = http(
            "POST",
            f"{self.base}/api/v1/client",
            {"domain_id": site_id, "type": "token", "description": "bench"},
            self.admin_key,
        )
        if status != 200:
            raise SystemExit(f"creating an access key failed: {status} {body[:300]!r}")
        return site_id, json.loads(body)["client_secret"]

    def identification_code(self, site_id: str) -> str:
        """The site's code for the Pirsch browser SDK (pa.js)."""
        status, body = http("GET", f"{self.base}/api/v1/domain?id={site_id}", token=self.admin_key)
        if status != 200:
            raise SystemExit(f"reading the domain failed: {status} {body[:300]!r}")
        return str(json.loads(body)[0]["identification_code"])

    def total(self, site_id: str) -> dict[str, Any]:
        today = datetime.now(UTC).date()
        url = f"{self.base}/api/v1/statistics/total?id={site_id}&from={today - timedelta(days=1)}&to={today}"
        status, body = http("GET", url, token=self.admin_key, timeout=120)
        if status != 200:
            raise RuntimeError(f"statistics/total answered {status}: {body[:300]!r}")
        return json.loads(body)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Bare:
    """bench/bare_app.py: the bare Robyn route, same process count as trail's workers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.argv = [
            sys.executable,
            str(BENCH / "bare_app.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--processes",
            str(WORKERS),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        COMMANDS.append(shlex.join(self.argv))
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_http(f"http://127.0.0.1:{self.port}/api/v1/hit", "POST")
        time.sleep(1.0)  # the second process binds a moment after the first answers

    def pids(self) -> list[int]:
        assert self.proc is not None
        return children_matching(self.proc.pid, "bare_app.py")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wait_http(url: str, method: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _ = http(method, url, {} if method == "POST" else None, timeout=2)
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def children_matching(parent: int, needle: str) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and needle in cmdline:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def traffic_lists(tmp: Path) -> Path:
    """The wrk scripts' lists (bench/traffic.py lua) written to `tmp`/lists.lua."""
    lists = tmp / "lists.lua"
    lists.write_text(
        subprocess.run(
            [sys.executable, str(BENCH / "traffic.py"), "lua"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    COMMANDS.append(f"{sys.executable} bench/traffic.py lua > {lists}")
    return lists


def measured(pids: list[int], wrk: Wrk, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """One round, `wrk.run(*args, **kwargs)`: its figures, plus the CPU the processes used per
    request answered and the load average at its end."""
    cpu0 = cpu_seconds(pids)
    r = wrk.run(*args, **kwargs)
    r["cpu_us_per_req"] = (cpu_seconds(pids) - cpu0) / max(1, r["requests"]) * 1e6
    r["load"] = os.getloadavg()[0]
    return r


def summarized(rs: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds of one target: median rate and CPU per request with their ranges, median
    latencies, and every error wrk counted."""
    rps = [r["rps"] for r in rs]
    cpu = [r["cpu_us_per_req"] for r in rs]
    return {
        "rps": statistics.median(rps),
        "rps_range": (min(rps), max(rps)),
        "cpu_us": statistics.median(cpu),
        "cpu_range": (min(cpu), max(cpu)),
        "p50_ms": statistics.median(r["p50_us"] for r in rs) / 1000,
        "p99_ms": statistics.median(r["p99_us"] for r in rs) / 1000,
        "errors": sum(
            r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"] for r in rs
        ),
    }


def rss(pids: list[int]) -> dict[int, dict[str, float]]:
    """VmRSS and VmHWM (peak) in MiB per pid."""
    out: dict[int, dict[str, float]] = {}
    for pid in pids:
        values = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        out[pid] = values
    return out


# -- wrk ------------------------------------------------------------------------------------


class Wrk:
    def __init__(self, lists: Path) -> None:
        self.lists = lists
        self.seed = 0

    def run(
        self,
        url: str,
        conns: int,
        seconds: float,
        key: str = "none",
        mode: str = "hit",
        record: bool = True,
        site: dict[str, str] | None = None,
        script: Path = BENCH / "wrk.lua",
    ) -> dict[str, Any]:
        """One wrk run; `site` holds BENCH_SITE_ID / BENCH_CODE for the browser modes (and
        BENCH_VHOST / BENCH_XFF for bench/goatcounter_wrk.lua)."""
        self.seed += 1
        env = {
            **os.environ,
            "BENCH_LISTS": str(self.lists),
            "BENCH_KEY": key,
            "BENCH_MODE": mode,
            "BENCH_SEED": str(self.seed),
            "BENCH_BATCH": str(BATCH_SIZE),
            **(site or {}),
        }
        argv = [
            "wrk",
            f"-t{min(WRK_THREADS, conns)}",
            f"-c{conns}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ]
        if record:
            shown = f"BENCH_LISTS={self.lists} BENCH_KEY={'pa_...' if key != 'none' else 'none'} BENCH_MODE={mode}"
            shown += "".join(
                f" {k}={v}" if k in ("BENCH_VHOST", "BENCH_XFF") else f" {k}=<{k[6:].lower()}>"
                for k, v in (site or {}).items()
            )
            cmd = f"{shown} {shlex.join(argv)}"
            if cmd not in COMMANDS:
                COMMANDS.append(cmd)
        out = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False
        )
        m = re.search(r"BENCH_JSON (\{.*\})", out.stdout)
        if m is None:
            raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
        r = json.loads(m.group(1))
        r["ok"] = r["requests"] - r["status"]
        r["rps"] = r["ok"] / (r["duration_us"] / 1e6)
        return r


# -- parts ----------------------------------------------------------------------------------


def part_hit(
    wrk: Wrk, trail: Trail, bare: Bare, key: str, conn_list: list[int], rounds: int, seconds: float
) -> dict[str, Any]:
    trail_url = f"{trail.base}/api/v1/hit"
    bare_url = f"http://127.0.0.1:{bare.port}/api/v1/hit"
    # warm-up: caches, first sessions, allocator; not counted in the rates (counted as hits)
    warm = [wrk.run(trail_url, 16, 2, key, record=False), wrk.run(bare_url, 16, 2, record=False)]
    acked = warm[0]["ok"]
    slack = 16
    table = []
    for conns in conn_list:
        runs: dict[str, list[dict[str, Any]]] = {"trail": [], "bare": []}
        for i in range(rounds):
            order = ["trail", "bare"] if i % 2 == 0 else ["bare", "trail"]
            for name in order:
                pids = trail.worker_pids() if name == "trail" else bare.pids()
                cpu0 = cpu_seconds(pids)
                if name == "trail":
                    r = wrk.run(trail_url, conns, seconds, key)
                    acked += r["ok"]
                    slack += conns
                else:
                    r = wrk.run(bare_url, conns, seconds)
                used = cpu_seconds(pids) - cpu0
                r["cpu_us_per_req"] = used / max(1, r["requests"]) * 1e6
                r["cores"] = used / (r["duration_us"] / 1e6)
                runs[name].append(r)
        row = {"conns": conns}
        for name, rs in runs.items():
            row[name] = {
                "rps": statistics.median(r["rps"] for r in rs),
                "all_rps": [round(r["rps"]) for r in rs],
                "p50_ms": statistics.median(r["p50_us"] for r in rs) / 1000,
                "p99_ms": statistics.median(r["p99_us"] for r in rs) / 1000,
                "errors": sum(
                    r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"] for r in rs
                ),
                "cpu_us": statistics.median(r["cpu_us_per_req"] for r in rs),
                "cores": statistics.median(r["cores"] for r in rs),
            }
        row["ratio"] = row["trail"]["rps"] / row["bare"]["rps"]
        log(
            f"/hit c={conns}: trail {row['trail']['rps']:.0f}/s {row['trail']['all_rps']}, "
            f"bare {row['bare']['rps']:.0f}/s {row['bare']['all_rps']}, ratio {row['ratio']:.2f}"
        )
        table.append(row)
    best_trail = max(table, key=lambda r: r["trail"]["rps"])
    best_bare = max(table, key=lambda r: r["bare"]["rps"])
    return {
        "table": table,
        "peak_trail": best_trail["trail"]["rps"],
        "peak_trail_conns": best_trail["conns"],
        "peak_bare": best_bare["bare"]["rps"],
        "peak_bare_conns": best_bare["conns"],
        "ratio": best_trail["trail"]["rps"] / best_bare["bare"]["rps"],
        "acked": acked,
        "slack": slack,
        "rounds": rounds,
        "seconds": seconds,
    }


def part_batch(
    wrk: Wrk, trail: Trail, key: str, conn_list: list[int], rounds: int, seconds: float
) -> dict[str, Any]:
    url = f"{trail.base}/api/v1/hit/batch"
    acked = 0
    slack = 0
    table = []
    for conns in conn_list:
        rs = []
        for _ in range(rounds):
            r = wrk.run(url, conns, seconds, key, mode="batch")
            acked += r["ok"] * BATCH_SIZE
            slack += conns * BATCH_SIZE
            rs.append(r)
        row = {
            "conns": conns,
            "hps": statistics.median(r["rps"] for r in rs) * BATCH_SIZE,
            "all_hps": [round(r["rps"] * BATCH_SIZE) for r in rs],
            "p50_ms": statistics.median(r["p50_us"] for r in rs) / 1000,
            "p99_ms": statistics.median(r["p99_us"] for r in rs) / 1000,
            "errors": sum(
                r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"] for r in rs
            ),
        }
        log(f"/hit/batch c={conns}: {row['hps']:.0f} hits/s {row['all_hps']}")
        table.append(row)
    best = max(table, key=lambda r: r["hps"])
    return {
        "table": table,
        "hps": best["hps"],
        "conns": best["conns"],
        "acked": acked,
        "slack": slack,
        "rounds": rounds,
        "seconds": seconds,
    }


def part_browser(
    wrk: Wrk,
    trail: Trail,
    bare: Bare,
    sites: dict[str, tuple[str, str]],
    conns: int,
    rounds: int,
    seconds: float,
) -> dict[str, Any]:
    """Page views by every route that takes them, in rounds that rotate the order: `/hit` with an
    access key, `/collect` as tracker.js sends it, `GET /hit?code=` as pa.js sends it, and the bare
    route. Rates and server CPU per request compare within one round set on a shared machine."""
    targets: dict[str, tuple[str, str, str, dict[str, str]]] = {
        "hit": (f"{trail.base}/api/v1/hit", "hit", sites["hit"][1], {}),
        "collect": (
            f"{trail.base}/api/v1/collect",
            "collect",
            "none",
            {"BENCH_SITE_ID": sites["collect"][0]},
        ),
        "pirsch_browser": (
            f"{trail.base}/api/v1/hit",
            "pirsch_browser",
            "none",
            {"BENCH_CODE": trail.identification_code(sites["pirsch_browser"][0])},
        ),
        "bare": (f"http://127.0.0.1:{bare.port}/api/v1/hit", "hit", "none", {}),
    }
    names = list(targets)
    acked = dict.fromkeys(names, 0)
    for name, (url, mode, key, site) in targets.items():  # warm-up, counted as acknowledged
        acked[name] += wrk.run(url, conns, 2, key, mode=mode, record=False, site=site)["ok"]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            url, mode, key, site = targets[name]
            pids = bare.pids() if name == "bare" else trail.worker_pids()
            r = measured(pids, wrk, url, conns, seconds, key, mode=mode, site=site)
            acked[name] += r["ok"]
            runs[name].append(r)
        log(
            f"browser round {i + 1}: " + ", ".join(f"{n} {runs[n][-1]['rps']:.0f}/s" for n in names)
        )
    rows = {name: summarized(rs) for name, rs in runs.items()}
    # Ratios per round (the rounds' neighbours share the machine's load), then their median.
    ratios = {
        f"{a}/{b}": statistics.median(x["rps"] / y["rps"] for x, y in zip(runs[a], runs[b]))
        for a, b in (("collect", "hit"), ("pirsch_browser", "hit"), ("hit", "bare"))
    }
    loads = [r["load"] for rs in runs.values() for r in rs]
    return {
        "rows": rows,
        "ratios": ratios,
        "acked": acked,
        "conns": conns,
        "rounds": rounds,
        "seconds": seconds,
        "load": (min(loads), max(loads)),
    }


def family(pid: int) -> list[int]:
    """The process and all its descendants."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    out = [pid]
    for p in out:
        out.extend(child for child, parent in parents.items() if parent == p)
    return out


def process_name(pid: int) -> str:
    """A short name for a server process: `goatcounter`, or the trail module it runs."""
    try:
        argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return "?"
    if argv and Path(argv[0]).name.startswith("goatcounter"):
        return "goatcounter"
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]  # trail.worker, trail.tasks.maintenance, ...
    return "trail serve (supervisor)" if "serve" in argv else Path(argv[0]).name if argv else "?"


def part_goatcounter(
    wrk: Wrk,
    trail: Trail,
    gc: Any,
    sites: dict[str, tuple[str, str]],
    conns: int,
    rounds: int,
    seconds: float,
) -> dict[str, Any]:
    """trail's `/hit` and `/collect` against GoatCounter's `/count` (as count.js sends it, one
    X-Forwarded-For per visitor) in rounds that rotate the order; rates, server CPU per request,
    and every server process's RSS after the load."""
    gc_site = {"BENCH_VHOST": goatcounter_peer.VHOST, "BENCH_XFF": "1"}
    gc_script = BENCH / "goatcounter_wrk.lua"
    targets: dict[str, tuple[str, str, str, dict[str, str], Path]] = {
        "hit": (f"{trail.base}/api/v1/hit", "hit", sites["hit"][1], {}, BENCH / "wrk.lua"),
        "collect": (
            f"{trail.base}/api/v1/collect",
            "collect",
            "none",
            {"BENCH_SITE_ID": sites["collect"][0]},
            BENCH / "wrk.lua",
        ),
        "goatcounter": (f"{gc.base}/count", "count", "none", gc_site, gc_script),
    }
    names = list(targets)
    assert trail.proc is not None
    supervisor = trail.proc.pid
    at_start = rss([*family(supervisor), gc.pid])
    for name, (url, mode, key, site, script) in targets.items():  # warm-up
        wrk.run(url, conns, 2, key, mode=mode, record=False, site=site, script=script)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            url, mode, key, site, script = targets[name]
            pids = [gc.pid] if name == "goatcounter" else family(supervisor)
            r = measured(pids, wrk, url, conns, seconds, key, mode=mode, site=site, script=script)
            runs[name].append(r)
        log(
            f"goatcounter round {i + 1}: "
            + ", ".join(f"{n} {runs[n][-1]['rps']:.0f}/s" for n in names)
        )
    rows = {name: summarized(rs) for name, rs in runs.items()}
    ratios = {}
    for a in ("collect", "hit"):
        per_round = [x["rps"] / y["rps"] for x, y in zip(runs[a], runs["goatcounter"])]
        cpu_round = [
            x["cpu_us_per_req"] / y["cpu_us_per_req"] for x, y in zip(runs[a], runs["goatcounter"])
        ]
        ratios[a] = {
            "rps": statistics.median(per_round),
            "rps_range": (min(per_round), max(per_round)),
            "cpu": statistics.median(cpu_round),
            "cpu_range": (min(cpu_round), max(cpu_round)),
        }
    loads = [r["load"] for rs in runs.values() for r in rs]

    def named(pids: list[int]) -> dict[int, dict[str, Any]]:
        start = {pid: at_start.get(pid, {}).get("VmRSS", float("nan")) for pid in pids}
        return {
            pid: {**v, "name": process_name(pid), "start": start[pid]}
            for pid, v in rss(pids).items()
        }

    return {
        "rows": rows,
        "ratios": ratios,
        "conns": conns,
        "rounds": rounds,
        "seconds": seconds,
        "load": (min(loads), max(loads)),
        "rss": {"trail": named(family(supervisor)), "goatcounter": named([gc.pid])},
    }


def rate_store_growth(
    wrk: Wrk, binary: Path, tmp: Path, conns: int, passes: int, seconds: float
) -> dict[str, Any]:
    """GoatCounter's RSS over `passes` wrk runs of `/count` on a fresh server, once with an
    X-Forwarded-For per visitor and once without (every request from 127.0.0.1)."""
    out: dict[str, Any] = {"commands": []}
    for label, xff in (("with X-Forwarded-For", "1"), ("without X-Forwarded-For", "0")):
        gc = goatcounter_peer.GoatCounter(binary, tmp / f"gc-xff-{xff}")
        gc.create()
        gc.start()
        out["commands"] += gc.commands
        try:
            site = {"BENCH_VHOST": goatcounter_peer.VHOST, "BENCH_XFF": xff}
            steps = [(0, rss([gc.pid])[gc.pid]["VmRSS"])]
            total = 0
            for _ in range(passes):
                r = wrk.run(
                    f"{gc.base}/count", conns, seconds, mode="count", site=site,
                    script=BENCH / "goatcounter_wrk.lua",
                )  # fmt: skip
                total += r["requests"]
                steps.append((total, rss([gc.pid])[gc.pid]["VmRSS"]))
        finally:
            gc.stop()
        growth = (steps[-1][1] - steps[1][1]) * 1024 / max(1, steps[-1][0] - steps[1][0])
        out[label] = {"steps": steps, "kib_per_request": growth}
        log(
            f"GoatCounter RSS {label}: {steps} (KiB per request after the first pass: {growth:.2f})"
        )
    return out


def run_goatcounter(
    results: dict[str, Any],
    wrk: Wrk,
    trail: Trail,
    sites: dict[str, tuple[str, str]],
    tmp: Path,
    quick: bool,
) -> None:
    """The GoatCounter peer into results["goatcounter"] (None when there is no Go)."""
    mark = len(COMMANDS)
    binary, build_cmds = goatcounter_peer.build(goatcounter_peer.go_command(), log=log)
    if binary is None:
        results["goatcounter"] = None
        return
    gc = goatcounter_peer.GoatCounter(binary, tmp / "gc")
    gc.create()
    gc.start()
    try:
        rounds, seconds = (3, 3) if quick else (6, 5)
        g = part_goatcounter(wrk, trail, gc, sites, 16, rounds, seconds)
    finally:
        gc.stop()
    g["store_growth"] = rate_store_growth(wrk, binary, tmp, 16, 3, 3 if quick else 5)
    # GoatCounter writes its memory store every 10 s from its start: killed at 15 s into the
    # stream (~17 s after the start), it has written once and holds the last ~7 s.
    at = goatcounter_peer.KillAt(seconds=15)
    log(f"acknowledged vs stored after kill -9 at {at.seconds:g} s, 8 clients")
    g["kill_at_s"] = at.seconds
    g["durability"] = {
        "trail": goatcounter_peer.trail_acked_vs_stored(tmp / "kill-trail", at, 8, workers=WORKERS),
        "goatcounter": goatcounter_peer.goatcounter_acked_vs_stored(binary, tmp / "kill-gc", at, 8),
    }
    for name, d in g["durability"].items():
        shown = {k: v for k, v in d.items() if k != "commands"}
        log(f"kill -9 {name}: {shown}")
    earlier = [c for c in COMMANDS[:mark] if "traffic.py" in c or " serve " in c]
    g["commands"] = [
        *build_cmds,
        *earlier,
        *gc.commands,
        *g["store_growth"].pop("commands"),
        *COMMANDS[mark:],
        *g["durability"]["goatcounter"]["commands"],
    ]
    g["version"] = tool_version([str(binary), "version"])
    results["goatcounter"] = g
    for name in ("gc", "gc-xff-0", "gc-xff-1", "kill-trail", "kill-gc"):
        shutil.rmtree(tmp / name, ignore_errors=True)


def part_locust(
    trail: Trail, site_id: str, key: str, target_rps: float, seconds: int, tmp: Path, label: str
) -> dict[str, Any]:
    users = 40
    prefix = tmp / f"mixed-{label}"
    env = {
        **os.environ,
        "BENCH_KEY": key,
        "BENCH_ADMIN_KEY": trail.admin_key,
        "BENCH_SITE_ID": site_id,
        "BENCH_USER_RATE": f"{target_rps / users:.3f}",
    }
    argv = [
        str(BIN / "locust"),
        "-f",
        str(BENCH / "locustfile.py"),
        "--headless",
        "-u",
        str(users + 1),  # + the one Dashboard user
        "-r",
        str(users + 1),
        "-t",
        f"{seconds}s",
        "--host",
        trail.base,
        "--csv",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
    ]
    COMMANDS.append(
        f"BENCH_KEY=pa_... BENCH_ADMIN_KEY=tt_... BENCH_SITE_ID=<id> "
        f"BENCH_USER_RATE={target_rps / users:.3f} {shlex.join(argv)}"
    )
    out = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    stats_csv = Path(f"{prefix}_stats.csv")
    if not stats_csv.exists():
        raise RuntimeError(f"locust wrote no CSV: {out.stdout[-800:]} {out.stderr[-800:]}")
    import csv

    rows = {}
    with stats_csv.open() as f:
        for row in csv.DictReader(f):
            rows[row["Name"]] = {
                "count": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": float(row["Requests/s"]),
                "p50_ms": float(row["50%"] or 0),
                "p99_ms": float(row["99%"] or 0),
                "max_ms": float(row["Max Response Time"] or 0),
            }
    hits = rows.get("hit", {"count": 0, "failures": 0})
    events = rows.get("event", {"count": 0, "failures": 0})
    # an event that opens a session also records a page view (reference section 2)
    return {
        "rows": rows,
        "target_rps": target_rps,
        "users": users,
        "seconds": seconds,
        "acked": hits["count"] - hits["failures"],
        "slack": users + events["count"] - events["failures"],
    }


def part_profile(
    trail: Trail, wrk: Wrk, key: str, conns: int, mode: str, seconds: int, tmp: Path
) -> dict[str, Any]:
    """Where a worker's time goes under load. One tool at a time: py-spy's ptrace stops make the
    uvloop io_uring SQPOLL kernel thread spin, which would pollute a perf profile taken alongside."""
    pids = trail.worker_pids()
    url = f"{trail.base}/api/v1/hit" + ("/batch" if mode == "batch" else "")
    result: dict[str, Any] = {"mode": mode, "conns": conns, "seconds": seconds}

    def under_load(argv: list[str], length: float) -> None:
        load = threading.Thread(
            target=lambda: wrk.run(url, conns, length + 3, key, mode=mode, record=False)
        )
        load.start()
        time.sleep(1.5)  # wrk builds its payloads first
        subprocess.run(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=length + 120,
            check=False,
        )
        load.join()

    perf_data = tmp / f"perf-{mode}.data"
    if shutil.which("perf"):
        argv = [
            "perf",
            "record",
            "-F",
            "499",
            "-g",
            "-p",
            ",".join(map(str, pids)),
            "-o",
            str(perf_data),
            "--",
            "sleep",
            str(seconds),
        ]
        result["perf_cmd"] = shlex.join(argv)
        under_load(argv, seconds)
        if perf_data.exists():
            result["perf_dso"] = perf_top(perf_data, ["--no-children", "--sort", "dso"], 8)
            result["perf_sym"] = perf_top(perf_data, ["--no-children", "--sort", "dso,symbol"], 400)
            result["perf_sys"] = [
                (pct, name)
                for pct, name in perf_top(perf_data, ["--children", "--sort", "symbol"], 3000)
                if re.search(r"\[k\] __(x64|do)_sys_\w+", name)
            ][:12]
            result["perf_cat"] = categorize(result["perf_sym"])
            result["perf_sym"] = result["perf_sym"][:25]
    if shutil.which("strace"):
        out = tmp / f"strace-{mode}.txt"
        argv = [
            "timeout",
            "-s",
            "INT",
            "4",
            "strace",
            "-f",
            "-c",
            "-o",
            str(out),
            "-p",
            str(pids[0]),
        ]
        result["strace_cmd"] = shlex.join(argv)
        under_load(argv, 4)
        if out.exists():
            result["syscalls"] = strace_per_request(out, "sendto")
    pyspy = find_pyspy()
    raw = tmp / f"pyspy-{mode}.txt"
    if pyspy:
        argv = [
            pyspy,
            "record",
            "--pid",
            str(pids[0]),
            "--native",
            "--nonblocking",
            "-r",
            "250",
            "-d",
            str(seconds),
            "-f",
            "raw",
            "-o",
            str(raw),
        ]
        result["pyspy_cmd"] = shlex.join(argv)
        under_load(argv, seconds)
        if raw.exists() and raw.stat().st_size:
            result["pyspy"] = pyspy_summary(raw)
    return result


def find_pyspy() -> str | None:
    for candidate in (shutil.which("py-spy"), str(BIN / "py-spy"), "/tmp/probe-venv/bin/py-spy"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def perf_top(data: Path, args: list[str], n: int) -> list[tuple[float, str]]:
    out = subprocess.run(
        ["perf", "report", "-i", str(data), *args, "--stdio", "-g", "none"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    ).stdout
    rows = []
    for line in out.splitlines():
        if line.lstrip().startswith("#"):
            continue
        m = re.match(r"\s+([\d.]+)%\s+(?:([\d.]+)%\s+)?(.*?)(?:\s+-\s+-\s*)?$", line)
        if m:
            rows.append((float(m.group(1)), re.sub(r"\s+", " ", m.group(3)).strip()))
    return rows[:n]


# Self-time categories over perf's "dso symbol" rows; first match wins.
CATEGORIES = [
    ("LMDB (session state)", r"_core\S* \[\.\] (mdb_|_mdb_|heed)|_core::session"),
    (
        "bot / spam matching (aho-corasick, regex)",
        r"aho_corasick|regex_automata|regex::|_core::bots|_core::rules",
    ),
    ("UA parsing", r"ua_parser|_core::ua"),
    ("JSON (serde)", r"serde|_core::hit::parse_items"),
    ("WAL encode/write (user space)", r"_core::wal"),
    ("segment writer / Arrow", r"_core::segments|arrow"),
    ("rest of _core (pipeline, dims, url, referrer, fingerprint)", r"_core"),
    ("Python interpreter", r"libpython"),
    ("Robyn (Rust side: actix, routing, PyO3)", r"robyn\.cpython"),
    (
        "malloc/free + memcpy (libc)",
        r"libc\S* \[\.\] (_int_|malloc|cfree|free|__memmove|__memcpy|__memset|unlink_chunk|__libc_)",
    ),
    ("libc other", r"libc"),
    (
        "kernel: file writes (WAL, LMDB pages)",
        r"\[k\] (ext4|jbd2|copy_folio|filemap|generic_perform_write|vfs_write|xas_|folio|__filemap|iomap|block_write|file_modified|mark_buffer)",
    ),
    ("kernel: network + scheduling + other syscalls", r"\[kernel"),
]


def categorize(rows: list[tuple[float, str]]) -> list[tuple[float, str]]:
    sums: Counter[str] = Counter()
    for pct, name in rows:
        for label, pattern in CATEGORIES:
            if re.search(pattern, name):
                sums[label] += pct
                break
        else:
            sums["other"] += pct
    return [(pct, label) for label, pct in sums.most_common()]


def strace_per_request(path: Path, per: str) -> dict[str, Any]:
    """strace -c table -> calls per answered request (sendto = one response)."""
    calls: dict[str, int] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].replace(".", "").isdigit() and parts[-1].isidentifier():
            calls[parts[-1]] = int(parts[3])
    requests = calls.get(per, 0) or 1
    skip = {"clock_nanosleep", "restart_syscall", "epoll_wait", "epoll_pwait"}
    per_req = sorted(
        ((c / requests, name) for name, c in calls.items() if name not in skip), reverse=True
    )
    return {
        "requests": requests,
        "per_request": [(round(v, 2), n) for v, n in per_req if v >= 0.05],
    }


def pyspy_summary(raw: Path) -> dict[str, Any]:
    """From py-spy's folded stacks: share of the handler's samples per function (inclusive)."""
    inclusive: Counter[str] = Counter()
    handler = 0
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [re.sub(r":\d+\)", ")", f) for f in stack.split(";")]
        leaf = frames[-1]
        if any(
            idle in leaf
            for idle in ("epoll_wait", "epoll_pwait", "clock_nanosleep", "time_sleep", "futex")
        ):
            continue  # idle threads and the idle event loop
        total += count
        if not any("inner_handler" in f for f in frames):
            continue
        handler += count
        for f in set(frames):
            inclusive[f] += count
    pct = lambda c: 100.0 * c / max(1, handler)
    keep = [
        (pct(c), f)
        for f, c in inclusive.most_common(60)
        if not re.match(
            r"(_run_code|_run_module_as_main|<module>|main|Robyn\.start|run_processes|"
            r"init_processpool|spawn_process|uv_run|uv__io_poll|Loop__|run_forever|0x)",
            f,
        )
    ]
    return {"busy_samples": total, "handler_samples": handler, "inclusive": keep[:22]}


# -- report ---------------------------------------------------------------------------------


def verify(trail: Trail, site_id: str, acked: int, slack: int) -> dict[str, Any]:
    """acknowledged <= counted views <= acknowledged + requests in flight when the client stopped."""
    views = -1
    for _ in range(30):  # rows become visible once the writer seals a segment
        time.sleep(1.0)
        new = trail.total(site_id)["views"]
        if new == views and new >= acked:
            break
        views = new
    ok = acked <= views <= acked + slack
    return {"acked": acked, "views": views, "slack": slack, "ok": ok}


def fmt_mib(values: dict[int, dict[str, float]]) -> str:
    return ", ".join(
        f"pid {pid}: {v.get('VmRSS', 0):.0f} MiB (peak {v.get('VmHWM', 0):.0f})"
        for pid, v in values.items()
    )


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**MISSED**"


def write_results(out: Path, r: dict[str, Any]) -> None:
    m, hit, batch, mixed = r["machine"], r["hit"], r["batch"], r["mixed"]
    hit_p99 = mixed["rows"].get("hit", {}).get("p99_ms", float("nan"))
    agg = mixed["rows"].get("Aggregated", {})
    busy = r["load_before"] > 1.5
    lines = [
        "# trail benchmark results",
        "",
        *(
            [
                (
                    f"> **Warning: the machine was busy with other jobs (1-minute load average "
                    f"{r['load_before']:.1f} at the start, 2 cores), so these figures are far below what "
                    "the box does when quiet. Rerun `make bench` on a quiet machine before quoting them.**"
                ),
                "",
            ]
            if busy
            else []
        ),
        (
            f"Written by `make bench` (`.venv/bin/python bench/run.py{' ' + ' '.join(r['args']) if r['args'] else ''}`)"
            f" on {m['date']}; total run time {r['elapsed'] / 60:.1f} min."
        ),
        "",
        (
            "Statistics (every `/statistics/*` report against DuckDB over the same files, at 1M and"
            " 10M page views) and stored bytes per page view: `bench/RESULTS-stats.md`, written"
            " from `bench/stats_bench.py` with the commands listed there."
        ),
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, `nproc` = {m['nproc']}; memory {m['memory']}; kernel {m['kernel']}",
        f"- Python {m['python']}, Robyn {m['robyn']}, locust {m['locust']}, {m['wrk']}",
        (
            f"- trail: release build (`make install` = `maturin develop --release`), `--workers {WORKERS}`, "
            "default config (fsync interval 1 s, segments sealed every 1 s)."
        ),
        f"- 1-minute load average before the run: {r['load_before']:.2f} (waited {r['waited']:.0f} s for < 1.5).",
        (
            "- **The load generator shares the 2 cores with the server.** wrk (2 threads) and locust use "
            "CPU that the workers would otherwise have, so every figure here is lower than on a box with a "
            "separate client; the bare-route ceiling is measured under the same handicap, so the ratio is fair."
        ),
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "|---|---|---|",
        (
            f"| `/hit` >= {TARGET_RATIO}x the bare Robyn route | {hit['ratio']:.2f}x "
            f"({hit['peak_trail']:.0f} vs {hit['peak_bare']:.0f} req/s, peaks) | {verdict(hit['ratio'] >= TARGET_RATIO)} |"
        ),
        (
            f"| `/hit/batch` (500 per request) >= {TARGET_BATCH_HPS:,} hits/s | {batch['hps']:,.0f} hits/s | "
            f"{verdict(batch['hps'] >= TARGET_BATCH_HPS)} |"
        ),
        (
            f"| p99 <= {TARGET_P99_MS:g} ms at half of peak (mixed traffic, `/hit`) | p99 {hit_p99:g} ms "
            f"(all requests: {agg.get('p99_ms', float('nan')):g} ms) | {verdict(hit_p99 <= TARGET_P99_MS)} |"
        ),
        "",
        "## 1. Peak `POST /api/v1/hit`: trail vs the bare Robyn route",
        "",
        (
            f"wrk, {WRK_THREADS} threads, {hit['rounds']} rounds of {hit['seconds']:g} s per connection count, trail "
            "and bare alternating (order swapped every round), medians. Payloads: per wrk thread 600 visitors "
            "(random public IPv4, one of 40 browser UAs, language, screen, one of 22 referrers incl. direct, "
            "UTM on some) x Zipf-chosen paths out of ~200 = 2,500 distinct pre-built requests per thread; "
            "every round uses a new seed, so new visitors."
        ),
        "",
        (
            "| connections | trail req/s | bare req/s | trail/bare | trail p50 / p99 ms | bare p50 / p99 ms "
            "| server CPU µs/request (trail, bare) | server cores busy (trail, bare) | errors (trail, bare) |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in hit["table"]:
        t, b = row["trail"], row["bare"]
        lines.append(
            f"| {row['conns']} | {t['rps']:.0f} {t['all_rps']} | {b['rps']:.0f} {b['all_rps']} | "
            f"{row['ratio']:.2f} | {t['p50_ms']:.1f} / {t['p99_ms']:.1f} | {b['p50_ms']:.1f} / "
            f"{b['p99_ms']:.1f} | {t['cpu_us']:.0f}, {b['cpu_us']:.0f} | {t['cores']:.2f}, {b['cores']:.2f} | "
            f"{t['errors']}, {b['errors']} |"
        )
    lines += [
        "",
        (
            f"Peak: trail {hit['peak_trail']:.0f} req/s at {hit['peak_trail_conns']} connections, bare "
            f"{hit['peak_bare']:.0f} req/s at {hit['peak_bare_conns']} connections; ratio of the peaks "
            f"**{hit['ratio']:.2f}**. Server CPU per request = utime+stime of the server processes "
            "(all threads) over the round / requests answered."
        ),
        "",
        "## 2. `POST /api/v1/hit/batch`, 500 hits per request",
        "",
        (
            f"wrk cycling through 24 pre-built bodies per thread (12,000 distinct hits of 3,000 visitors, item "
            f"`time`s spread over the last hour), {batch['rounds']} rounds of {batch['seconds']:g} s, medians."
        ),
        "",
        "| connections | hits/s | requests p50 / p99 ms | errors |",
        "|---|---|---|---|",
    ]
    for row in batch["table"]:
        lines.append(
            f"| {row['conns']} | {row['hps']:,.0f} {row['all_hps']} | {row['p50_ms']:.0f} / "
            f"{row['p99_ms']:.0f} | {row['errors']} |"
        )
    lines += [
        "",
        "## 3. Mixed traffic at half of the `/hit` peak (locust, FastHttpUser)",
        "",
        (
            f"{mixed['users']} site-traffic users, constant throughput for a total of "
            f"{mixed['target_rps']:.0f} req/s (half of {hit['peak_trail']:.0f}), {mixed['seconds']} s; "
            "tasks weighted hit 85 : event 8 : keep-alive (`/session`) 5, each user with its own 50 "
            "visitors; plus one dashboard user reading `statistics/total` twice a second. Locust's "
            "percentiles have 1 ms resolution below 100 ms and include locust's own scheduling delay "
            "(it shares the CPU)."
        ),
        "",
        "| request | count | failures | req/s | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in mixed["rows"].items():
        lines.append(
            f"| {name} | {row['count']} | {row['failures']} | {row['rps']:.0f} | {row['p50_ms']:g} | "
            f"{row['p99_ms']:g} | {row['max_ms']:.0f} |"
        )
    q = r["mixed_quarter"]
    lines += [
        "",
        (
            f"For reference, the same scenario at a quarter of the peak ({q['target_rps']:.0f} req/s), where "
            "locust itself is not saturated:"
        ),
        "",
        "| request | count | failures | req/s | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in q["rows"].items():
        lines.append(
            f"| {name} | {row['count']} | {row['failures']} | {row['rps']:.0f} | {row['p50_ms']:g} | "
            f"{row['p99_ms']:g} | {row['max_ms']:.0f} |"
        )
    achieved = mixed["rows"].get("Aggregated", {}).get("rps", 0)
    if achieved < 0.9 * mixed["target_rps"]:
        lines += [
            "",
            (
                f"**Locust did not reach the target rate** ({achieved:.0f} of {mixed['target_rps']:.0f} "
                "req/s): one locust process saturates a core it shares with the two workers (with "
                "`--processes 2` it was slower still), so the p99 at this rate is largely the "
                "client's own queueing. The quarter-peak run shows the server's latency when the "
                "client keeps up."
            ),
        ]
    lines += [
        "",
        "## 4. Worker RSS",
        "",
        f"- after start and set-up: {fmt_mib(r['rss_before'])}",
        f"- after all load: {fmt_mib(r['rss_after'])}",
        "",
        "## 5. Acknowledged vs counted",
        "",
        (
            "Views from `GET /api/v1/statistics/total` (yesterday..today, UTC) per site, against the hits "
            "the clients saw acknowledged with 200. Counted may exceed acknowledged by at most the requests "
            "in flight when a client stopped (wrk and locust drop those answers), plus for the mixed part the "
            "acknowledged events (an event that opens a session records a page view); it may never be lower."
        ),
        "",
        "| part | acknowledged | counted views | allowed in-flight surplus | |",
        "|---|---|---|---|---|",
    ]
    for name, v in r["verify"].items():
        lines.append(
            f"| {name} | {v['acked']:,} | {v['views']:,} | <= {v['slack']:,} | "
            f"{'ok' if v['ok'] else '**MISMATCH**'} |"
        )
    if r.get("profiles"):
        lines += ["", "## 6. Profiles", ""]
        lines += r.get("profile_notes", [])
        for prof in r["profiles"]:
            lines += profile_section(prof)
    if r.get("browser"):
        lines += ["", *browser_section(r)]
    lines += ["", "## Commands", "", "```"] + COMMANDS + ["```", ""]
    out.write_text("\n".join(lines + other_sections(out, lines)).rstrip("\n") + "\n")


def other_sections(path: Path, written: list[str]) -> list[str]:
    """The sections of the file at `path` that this run does not write (hand-written notes,
    other tools' sections, the GoatCounter peer's when it was skipped), to keep after the new
    ones. The numbered sections 1-7 are write_results's own: an old one it did not write this
    time (no profiles) is stale and goes."""
    if not path.exists():
        return []
    old = path.read_text().splitlines()
    starts = [i for i, line in enumerate(old) if line.startswith("## ")]
    kept: list[str] = []
    for a, b in zip(starts, [*starts[1:], len(old)]):
        if old[a] not in written and not re.match(r"## [1-7]\. ", old[a]):
            kept += old[a:b]
    return kept


def browser_section(r: dict[str, Any]) -> list[str]:
    """Section 7: the browser paths against /hit and the bare route, with its own commands."""
    b, m = r["browser"], r["machine"]
    rows, ratios = b["rows"], b["ratios"]
    labels = {
        "hit": "trail `POST /api/v1/hit` (access key)",
        "collect": "trail `POST /api/v1/collect` (tracker.js)",
        "pirsch_browser": "trail `GET /api/v1/hit?code=` (pa.js)",
        "bare": "bare Robyn route",
    }
    collect_of_hit, pab_of_hit = ratios["collect/hit"], ratios["pirsch_browser/hit"]
    lines = [
        BROWSER_SECTION,
        "",
        (
            f"Written by `.venv/bin/python bench/run.py {' '.join(r['args'])}` on {m['date']}. wrk, "
            f"{WRK_THREADS} threads, {b['conns']} connections, {b['rounds']} rounds of "
            f"{b['seconds']:g} s per route, the order rotated every round; medians with min-max. "
            "The same visitors' page views (traffic.py lists) as an API body, as tracker.js's "
            "text/plain body and as pa.js's query string; browser requests carry the visitor's "
            "IP in X-Forwarded-For (127.0.0.1 trusted), its User-Agent, Accept-Language and "
            f"Origin. 1-minute load average during the rounds: {b['load'][0]:.1f}-{b['load'][1]:.1f} "
            f"on {m['nproc']} cores, shared with other jobs: the rates move with it, the ratios "
            "within a round and the CPU per request much less."
        ),
        "",
        "| route | req/s | server CPU µs/request | p50 / p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for name, label in labels.items():
        row = rows[name]
        lo, hi = row["rps_range"]
        clo, chi = row["cpu_range"]
        lines.append(
            f"| {label} | {row['rps']:,.0f} ({lo:,.0f}-{hi:,.0f}) | {row['cpu_us']:.0f} "
            f"({clo:.0f}-{chi:.0f}) | {row['p50_ms']:.1f} / {row['p99_ms']:.1f} | {row['errors']} |"
        )
    lines += [
        "",
        "| target | measured (median of per-round ratios) | |",
        "|---|---|---|",
        (
            f"| `/collect` >= {TARGET_BROWSER_OF_HIT}x `/hit` | {collect_of_hit:.2f}x | "
            f"{verdict(collect_of_hit >= TARGET_BROWSER_OF_HIT)} |"
        ),
        (
            f"| `GET /hit?code=` >= {TARGET_BROWSER_OF_HIT}x `/hit` | {pab_of_hit:.2f}x | "
            f"{verdict(pab_of_hit >= TARGET_BROWSER_OF_HIT)} |"
        ),
        (
            f"| `/hit` >= {TARGET_HIT_OF_BARE}x the bare route | {ratios['hit/bare']:.2f}x | "
            f"{verdict(ratios['hit/bare'] >= TARGET_HIT_OF_BARE)} |"
        ),
        "",
        (
            "Server CPU per request = utime+stime of the server processes (all threads, from "
            "/proc/<pid>/stat) over the round / requests answered."
        ),
    ]
    if b.get("commands"):
        lines += ["", "Commands:", "", "```", *b["commands"], "```"]
    if "verify" in b:
        lines += ["", "| route | acknowledged | counted views | |", "|---|---|---|---|"]
        for name, v in b["verify"].items():
            lines.append(
                f"| {name} | {v['acked']:,} | {v['views']:,} (<= +{v['slack']:,} in flight) | "
                f"{'ok' if v['ok'] else '**MISMATCH**'} |"
            )
    return lines


def run_browser(
    results: dict[str, Any],
    wrk: Wrk,
    trail: Trail,
    bare: Bare,
    sites: dict[str, tuple[str, str]],
    conns: int,
    rounds: int,
    seconds: float,
) -> None:
    """Part 7 into results["browser"], with acknowledged vs counted views per browser route."""
    b = part_browser(wrk, trail, bare, sites, conns, rounds, seconds)
    slack = conns * (rounds + 1)
    b["verify"] = {
        name: verify(trail, sites[name][0], b["acked"][name], slack)
        for name in ("collect", "pirsch_browser")
    }
    results["browser"] = b


def goatcounter_section(r: dict[str, Any]) -> list[str]:
    """Section 8: GoatCounter as the peer, with its own commands."""
    g, m = r["goatcounter"], r["machine"]
    rows, ratios = g["rows"], g["ratios"]
    labels = {
        "hit": "trail `POST /api/v1/hit` (access key)",
        "collect": "trail `POST /api/v1/collect` (tracker.js)",
        "goatcounter": f"GoatCounter {goatcounter_peer.VERSION} `POST /count` (count.js)",
    }
    lines = [
        GOATCOUNTER_SECTION,
        "",
        (
            f"Written by `.venv/bin/python bench/run.py {' '.join(r['args'])}` on {m['date']} "
            f"(`goatcounter version`: {g['version']}). GoatCounter as shipped: SQLite, default "
            "settings (page views kept in memory and written every 10 s, `Connection: close` on "
            "every answer), its count limit on but above wrk's rate (`-ratelimit "
            f"{goatcounter_peer.RATELIMIT}`). wrk, {WRK_THREADS} threads, {g['conns']} connections, "
            f"{g['rounds']} rounds of {g['seconds']:g} s per route, the order rotated every round; "
            "medians with min-max. The same visitors' page views (traffic.py lists) as trail's "
            "API body, as tracker.js's body and as count.js's query (bench/goatcounter_wrk.lua: "
            "p, r, t, s, b, q, rnd; Host = the site's vhost), every browser request with the "
            "visitor's IP in X-Forwarded-For. Server CPU per request = utime+stime of all the "
            "server's processes (trail: supervisor, workers, maintenance; GoatCounter: its one "
            "process) over the round / requests answered. 1-minute load average during the "
            f"rounds: {g['load'][0]:.1f}-{g['load'][1]:.1f} on {m['nproc']} cores, shared with "
            "other jobs: rates swing with it; ratios within a round and CPU per request much less."
        ),
        "",
        "| route | req/s | server CPU µs/request | p50 / p99 ms | errors |",
        "|---|---|---|---|---|",
    ]
    for name, label in labels.items():
        row = rows[name]
        lo, hi = row["rps_range"]
        clo, chi = row["cpu_range"]
        lines.append(
            f"| {label} | {row['rps']:,.0f} ({lo:,.0f}-{hi:,.0f}) | {row['cpu_us']:.0f} "
            f"({clo:.0f}-{chi:.0f}) | {row['p50_ms']:.1f} / {row['p99_ms']:.1f} | {row['errors']} |"
        )
    trail_rss = g["rss"]["trail"]
    gc_rss = sum(v["VmRSS"] for v in g["rss"]["goatcounter"].values())
    workers = [v["VmRSS"] for v in trail_rss.values() if v["name"] == "trail.worker"]
    trail_total = sum(v["VmRSS"] for v in trail_rss.values())
    dur = g["durability"]
    kept = {name: d["stored"] / max(1, d["acked"]) for name, d in dur.items()}
    col, hit = ratios["collect"], ratios["hit"]
    lines += [
        "",
        "| trail / GoatCounter (median of per-round ratios, min-max) | ratio |",
        "|---|---|",
        f"| throughput, `/collect` / `/count` | {col['rps']:.2f}x ({col['rps_range'][0]:.2f}-{col['rps_range'][1]:.2f}) |",
        f"| throughput, `/hit` / `/count` | {hit['rps']:.2f}x ({hit['rps_range'][0]:.2f}-{hit['rps_range'][1]:.2f}) |",
        f"| CPU per request, `/collect` / `/count` | {col['cpu']:.2f}x ({col['cpu_range'][0]:.2f}-{col['cpu_range'][1]:.2f}) |",
        f"| CPU per request, `/hit` / `/count` | {hit['cpu']:.2f}x ({hit['cpu_range'][0]:.2f}-{hit['cpu_range'][1]:.2f}) |",
        f"| RSS after the load, all processes ({trail_total:.0f} MiB / {gc_rss:.0f} MiB) | {trail_total / gc_rss:.2f}x |",
        f"| RSS after the load, largest worker / GoatCounter ({max(workers, default=0):.0f} MiB / {gc_rss:.0f} MiB) | {max(workers, default=0) / gc_rss:.2f}x |",
        (
            f"| acknowledged page views stored after kill -9 ({kept['trail']:.1%} / "
            f"{kept['goatcounter']:.1%}) | "
            + (f"{kept['trail'] / kept['goatcounter']:.2f}x |" if kept["goatcounter"] else "- |")
        ),
        "",
        "RSS of every server process after the load (VmRSS; VmHWM is the peak):",
        "",
        "| server | process | pid | RSS MiB before these rounds | RSS MiB after the load | peak MiB |",
        "|---|---|---|---|---|---|",
    ]
    for server, procs in g["rss"].items():
        for pid, v in procs.items():
            lines.append(
                f"| {server} | {v['name']} | {pid} | {v['start']:.0f} | {v.get('VmRSS', 0):.0f} "
                f"| {v.get('VmHWM', 0):.0f} |"
            )
    lines += [
        "",
        (
            f"Target (issue 14, 5): a trail worker <= 200 MB at steady load: largest worker "
            f"{max(workers, default=0):.0f} MiB = {max(workers, default=0) * 1.048576:.0f} MB, "
            f"{verdict(max(workers, default=0) * 1.048576 <= 200)}."
        ),
        "",
        "### Acknowledged vs stored after kill -9",
        "",
        (
            "Each server, fresh, gets the same 2,000 page views round and round from 8 "
            "keep-alive clients (trail `/api/v1/collect`, GoatCounter `/count` to a site with "
            '"Individual pageviews" on, so every page view is a row of `hits`); at the first '
            f"answer {g['kill_at_s']:g} s or more into the stream, SIGKILL to every "
            "process of the server while no client may start a request, and the stream ends. "
            "Restarted on the same data, trail's views from "
            "`GET /api/v1/statistics/total`, GoatCounter's rows of `hits` and `bots` in its SQLite "
            "file. Stored may exceed acknowledged by the requests in flight at the kill."
        ),
        "",
        "| server | sent | answered 2xx | in flight at the kill | kill after | stored | acknowledged but lost |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in dur.items():
        lost = max(0, d["acked"] - d["stored"])
        lines.append(
            f"| {name} | {d['sent']:,} | {d['acked']:,} | {d['in_flight']} | {d['kill_ms'] / 1000:.1f} s "
            f"| {d['stored']:,} | {lost:,} ({lost / max(1, d['acked']):.1%}) |"
        )
    gd = dur["goatcounter"]
    lines += [
        "",
        (
            f"GoatCounter lost {max(0, gd['acked'] - gd['stored']):,} page views it had answered "
            "200 for: everything its memory store held since the last write (every 10 s). trail "
            "writes a page view to its WAL before it answers, so a killed process loses nothing "
            "it acknowledged (the WAL's fsync every 1 s covers a machine crash, not a process kill)."
        ),
        "",
        "### GoatCounter's rate-limit store from loopback",
        "",
        (
            "For a request whose client address is 127.0.0.1, GoatCounter v2.7.0's `/count` rate "
            "limiter makes a new in-memory limiter store per request (go-limiter's memorystore, "
            "a map allocated for 4,096 keys), each with a sweeper goroutine that never stops and "
            'so keeps it alive (handlers/backend.go, `r.RemoteAddr == "127.0.0.1"`). A fresh '
            "server, 16 connections, passes of the same length; RSS after each pass:"
        ),
        "",
        "| requests | RSS MiB after each pass | growth after the first pass |",
        "|---|---|---|",
    ]
    for label, v in g["store_growth"].items():
        steps = ", ".join(f"{n:,}: {mib:.0f}" for n, mib in v["steps"])
        lines.append(f"| {label} | {steps} | {v['kib_per_request']:.2f} KiB per request |")
    lines += [
        "",
        (
            "So the benchmark sends GoatCounter an X-Forwarded-For per visitor, as a reverse "
            "proxy in front of it would; without one, its memory grows with every request for "
            "as long as it runs."
        ),
        "",
        (
            "Commands (the kill -9 part for trail runs `python -m trail serve` through "
            "tests/server.py's TrailServer, with the same environment):"
        ),
        "",
        "```",
        *g["commands"],
        "```",
    ]
    return lines


def replace_section(path: Path, section: list[str]) -> None:
    """Put `section` (starting with its "## " heading) into the file at `path` in place of the
    section of the same heading, or before "## Commands" / at the end."""
    old = path.read_text().splitlines() if path.exists() else []
    heading = section[0]
    if heading in old:
        start = old.index(heading)
        end = next((i for i in range(start + 1, len(old)) if old[i].startswith("## ")), len(old))
    else:
        start = end = old.index("## Commands") if "## Commands" in old else len(old)
    path.write_text("\n".join([*old[:start], *section, "", *old[end:]]).rstrip("\n") + "\n")


def profile_section(p: dict[str, Any]) -> list[str]:
    what = "`/hit`" if p["mode"] == "hit" else "`/hit/batch`"
    lines = ["", f"### {what} under wrk load ({p['conns']} connections)", ""]
    if "perf_cat" in p:
        lines += [
            f"perf, both workers, all threads, self time grouped (`{p['perf_cmd']}`):",
            "",
            "| % of worker CPU | where |",
            "|---|---|",
        ]
        lines += [f"| {pct:.1f} | {name} |" for pct, name in p["perf_cat"]]
        lines += ["", "By binary:", "", "| % | binary |", "|---|---|"]
        lines += [f"| {pct:.1f} | {name} |" for pct, name in p["perf_dso"]]
        lines += ["", "Top symbols (self):", "", "| % | binary, symbol |", "|---|---|"]
        lines += [f"| {pct:.2f} | `{name}` |" for pct, name in p["perf_sym"]]
        lines += ["", "Kernel time by system call (inclusive):", "", "| % | syscall |", "|---|---|"]
        lines += [f"| {pct:.1f} | `{name}` |" for pct, name in p["perf_sys"]]
    if "syscalls" in p:
        sc = p["syscalls"]
        lines += [
            "",
            (
                f"System calls per answered request, worker 0 (`{p['strace_cmd']}`, "
                f"{sc['requests']} responses; strace slows the worker, the ratios still hold):"
            ),
            "",
            "| calls/request | syscall |",
            "|---|---|",
        ]
        lines += [f"| {v:g} | `{n}` |" for v, n in sc["per_request"]]
    if "pyspy" in p:
        s = p["pyspy"]
        lines += [
            "",
            (
                f"py-spy, worker 0, Python thread with native frames (`{p['pyspy_cmd']}`): "
                f"{s['handler_samples']} of {s['busy_samples']} non-idle samples are inside the Robyn "
                "handler; share of those, inclusive:"
            ),
            "",
            "| % of handler | function |",
            "|---|---|",
        ]
        lines += [f"| {pct:.1f} | `{name}` |" for pct, name in s["inclusive"]]
    return lines


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/run.py")
    parser.add_argument("--quick", action="store_true", help="one connection count, short rounds")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument(
        "--profile", action="store_true", help="profile even if the targets are met"
    )
    parser.add_argument(
        "--browser",
        action="store_true",
        help="only the browser-path comparison; rewrites only its section of --out",
    )
    parser.add_argument(
        "--goatcounter",
        action="store_true",
        help="only the GoatCounter peer (needs Go); rewrites only its section of --out",
    )
    parser.add_argument("--out", default=str(BENCH / "RESULTS.md"))
    parser.add_argument(
        "--max-wait", type=float, default=180, help="seconds to wait for load average < 1.5"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    started = time.monotonic()
    results: dict[str, Any] = {"args": sys.argv[1:], "machine": machine_info()}
    results["load_before"], results["waited"] = wait_quiet(1.5, args.max_wait)
    tmp = Path(tempfile.mkdtemp(prefix="trail-bench-"))
    lists = traffic_lists(tmp)
    trail = Trail(tmp / "data", free_port())
    bare = Bare(free_port())
    wrk = Wrk(lists)
    try:
        log(f"starting trail on :{trail.port} (data in {tmp})")
        trail.start()
        if not args.goatcounter:
            log(f"starting the bare app on :{bare.port}")
            bare.start()
        names = ("hit", "batch", "mixed", "collect", "pirsch_browser")
        sites = {name: trail.site(f"bench-{name.replace('_', '-')}") for name in names}
        results["rss_before"] = rss(trail.worker_pids())
        conns = [16] if args.quick else [4, 16, 64]
        rounds, seconds = (2, 3) if args.quick else (3, 5)
        if args.browser:
            run_browser(results, wrk, trail, bare, sites, 16, 4 if args.quick else 6, seconds)
            results["browser"]["commands"] = list(COMMANDS)
            replace_section(Path(args.out), browser_section(results))
            log(f"wrote {BROWSER_SECTION!r} into {args.out}")
            return
        if args.goatcounter:
            run_goatcounter(results, wrk, trail, sites, tmp, args.quick)
            if results["goatcounter"] is not None:
                replace_section(Path(args.out), goatcounter_section(results))
                log(f"wrote {GOATCOUNTER_SECTION!r} into {args.out}")
            return
        results["hit"] = part_hit(wrk, trail, bare, sites["hit"][1], conns, rounds, seconds)
        run_browser(results, wrk, trail, bare, sites, 16, 2 if args.quick else 3, seconds)
        bare.stop()
        results["batch"] = part_batch(
            wrk, trail, sites["batch"][1], [2, 4] if not args.quick else [4], rounds, seconds + 1
        )
        half = results["hit"]["peak_trail"] / 2
        runs = {}
        for label, rate in (("half", half), ("quarter", half / 2)):
            log(f"locust mixed traffic at {rate:.0f} req/s ({label} of peak)")
            runs[label] = part_locust(
                trail,
                sites["mixed"][0],
                sites["mixed"][1],
                rate,
                15 if args.quick else 30,
                tmp,
                label,
            )
            log(f"locust: {json.dumps(runs[label]['rows'].get('Aggregated', {}))}")
        results["mixed"] = runs["half"]
        results["mixed_quarter"] = runs["quarter"]
        results["mixed"]["acked"] += runs["quarter"]["acked"]
        results["mixed"]["slack"] += runs["quarter"]["slack"]
        results["rss_after"] = rss(trail.worker_pids())
        results["verify"] = {
            "/hit (wrk)": verify(
                trail, sites["hit"][0], results["hit"]["acked"], results["hit"]["slack"]
            ),
            "/hit/batch (wrk)": verify(
                trail, sites["batch"][0], results["batch"]["acked"], results["batch"]["slack"]
            ),
            "mixed (locust hits)": verify(
                trail, sites["mixed"][0], results["mixed"]["acked"], results["mixed"]["slack"]
            ),
        }
        for name, v in results["verify"].items():
            log(f"verify {name}: {v}")
        run_goatcounter(results, wrk, trail, sites, tmp, args.quick)
        missed_hit = results["hit"]["ratio"] < TARGET_RATIO
        missed_batch = results["batch"]["hps"] < TARGET_BATCH_HPS
        missed_p99 = results["mixed"]["rows"].get("hit", {}).get("p99_ms", 1e9) > TARGET_P99_MS
        results["profiles"] = []
        if not args.no_profile and (args.profile or missed_hit or missed_batch or missed_p99):
            log("profiling the workers")
            if args.profile or missed_hit or missed_p99:
                results["profiles"].append(
                    part_profile(
                        trail,
                        wrk,
                        sites["hit"][1],
                        results["hit"]["peak_trail_conns"],
                        "hit",
                        10,
                        tmp,
                    )
                )
            if args.profile or missed_batch:
                results["profiles"].append(
                    part_profile(trail, wrk, sites["batch"][1], 4, "batch", 10, tmp)
                )
            notes = BENCH / "PROFILE_NOTES.md"
            if notes.exists():
                results["profile_notes"] = notes.read_text().splitlines()
    finally:
        bare.stop()
        trail.stop()
        if args.browser or args.goatcounter:
            shutil.rmtree(tmp / "data", ignore_errors=True)
    results["elapsed"] = time.monotonic() - started
    write_results(Path(args.out), results)
    if results.get("goatcounter"):
        replace_section(Path(args.out), goatcounter_section(results))
    (tmp / "results.json").write_text(json.dumps(results, indent=1, default=str))
    log(f"wrote {args.out} (raw data in {tmp}/results.json)")
    shutil.rmtree(tmp / "data", ignore_errors=True)


if __name__ == "__main__":
    main()

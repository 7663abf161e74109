"""GoatCounter v2.7.0 as a permanent peer in `make bench` (bench/run.py): build it, set it up,
run it on loopback, and count what a server keeps of the page views it acknowledged when it is
killed with SIGKILL mid-stream.

GoatCounter is built from the Go module proxy into `.bench/goatcounter/` (ignored by git): a
scratch module requires `zgo.at/goatcounter/v2@v2.7.0` (a blank import keeps the requirement)
and builds its `cmd/goatcounter` with cgo (SQLite). `go install ...@v2.7.0` does not work where
the proxy refuses the version list that `go install` reads for deprecations; `go get` of the
exact version does. Without a `go` command the peer is skipped with one line.

Facts about GoatCounter used here, read from its v2.7.0 source:
- `/count` finds the site by the Host header (`Site.ByHost`), answers a 43-byte GIF and sets
  `Connection: close` on every answer; count.js sends it as `navigator.sendBeacon(url)` (a POST
  with an empty body) with the query p, r, t, s, b, q, rnd (bench/goatcounter_wrk.lua).
- Hits are appended to an in-memory store and written to SQLite every `-store-every` seconds
  (default 10): a SIGKILL loses what the store holds.
- Single page views are rows of `hits` only when the site collects "Individual pageviews"
  (settings `collect` flag 256, off by default; the aggregates are kept either way). The
  durability count turns it on, as a user does in the site settings, and counts those rows.
- The client IP is the rightmost public address of X-Forwarded-For, else the peer address. For
  a request whose address is 127.0.0.1 the `/count` rate limiter makes a new in-memory store
  per request (go-limiter's memorystore: a map allocated for 4,096 keys), each with its own
  sweeper goroutine that never stops and so keeps it alive: from loopback without
  X-Forwarded-For its memory grows with every request (measured by `rate_store_growth` in run.py).
"""

from __future__ import annotations

import http.client
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import traffic
from tests.server import TrailServer, free_port

VERSION = "v2.7.0"
MODULE = "zgo.at/goatcounter/v2"
CACHE = ROOT / ".bench" / "goatcounter"
VHOST = "gc.bench.example"
# The count limit stays on (its check is part of the cost) but never answers 429 to wrk's
# ~1,200 visitors, as bench/run.py does for trail's collect limit.
RATELIMIT = "count:4000000000/10"
COLLECT_HITS = 256  # settings.go: CollectHits, "Individual pageviews"
# trail's server environment in the benchmark: the client IP from X-Forwarded-For (127.0.0.1
# trusted) and a collect limit that never answers 429 to wrk.
TRAIL_ENV = {"TRAIL_TRUSTED_PROXIES": "127.0.0.1", "TRAIL_RATE_LIMIT_COLLECT": "4000000000/10"}
PEER_MODULE = f"""//go:build tools

// The GoatCounter peer of trail's benchmark: this file only pins the module; the binary is
// built with `go build {MODULE}/cmd/goatcounter`.
package peer

import _ "{MODULE}/cmd/goatcounter"
"""


def go_command() -> str | None:
    """`$GO`, else `go` on PATH, else the usual install location."""
    for candidate in (os.environ.get("GO"), shutil.which("go"), "/usr/local/go/bin/go"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def build(
    go: str | None, cache: Path = CACHE, log: Callable[[str], None] = print
) -> tuple[Path | None, list[str]]:
    """The GoatCounter binary (built once into `cache`) and the commands that built it; None
    with one line on `log` when there is no Go."""
    if go is None:
        log("no `go` command (set GO=/path/to/go): skipping the GoatCounter peer")
        return None, []
    binary = cache / f"goatcounter-{VERSION}"
    module = cache / "module"
    env = {**os.environ, "CGO_ENABLED": "1", "GOFLAGS": "-mod=mod"}
    commands = [
        [go, "mod", "init", "peer"],
        [go, "get", f"{MODULE}@{VERSION}"],
        [go, "build", "-ldflags", f"-X {MODULE}.Version={VERSION}", "-o", str(binary),
         f"{MODULE}/cmd/goatcounter"],
    ]  # fmt: skip
    shown = [f"cd {module} && CGO_ENABLED=1 GOFLAGS=-mod=mod {' '.join(c)}" for c in commands]
    if binary.exists():
        return binary, shown
    module.mkdir(parents=True, exist_ok=True)
    (module / "peer.go").write_text(PEER_MODULE)
    log(f"building GoatCounter {VERSION} into {binary} (once; minutes)")
    for argv in commands:
        if argv[1] == "mod" and (module / "go.mod").exists():
            continue
        out = subprocess.run(
            ["nice", "-n", "19", *argv], cwd=module, env=env, capture_output=True, text=True,
            timeout=3600, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            log(f"building GoatCounter failed ({' '.join(argv)}): {out.stderr[-800:]}")
            return None, shown
    return binary, shown


class GoatCounter:
    """`goatcounter serve` on loopback with a SQLite database of its own and one site."""

    def __init__(self, binary: Path, workdir: Path, collect_hits: bool = False) -> None:
        self.binary = binary
        self.workdir = workdir
        self.db = workdir / "db.sqlite3"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.collect_hits = collect_hits
        self.proc: subprocess.Popen[bytes] | None = None
        self.commands: list[str] = []

    def create(self) -> None:
        """The database and its site (vhost VHOST) with a user, as `goatcounter db create site`."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [str(self.binary), "db", "create", "site", "-createdb", "-db", f"sqlite+{self.db}",
                "-vhost", VHOST, "-user.email", "bench@example.com", "-user.password",
                "bench-password"]  # fmt: skip
        self.commands.append(" ".join(argv))
        subprocess.run(argv, capture_output=True, check=True, timeout=120)
        if self.collect_hits:
            # What ticking "Individual pageviews" in the site settings stores.
            with sqlite3.connect(self.db) as db:
                db.execute(
                    "update sites set settings = json_set(settings, '$.collect',"
                    " json_extract(settings, '$.collect') | ?)",
                    (COLLECT_HITS,),
                )
            self.commands.append(
                f"sqlite3 {self.db} \"update sites set settings = json_set(settings, '$.collect',"
                f" json_extract(settings, '$.collect') | {COLLECT_HITS})\""
            )

    @property
    def argv(self) -> list[str]:
        return [str(self.binary), "serve", "-listen", f"127.0.0.1:{self.port}", "-tls", "http",
                "-db", f"sqlite+{self.db}", "-ratelimit", RATELIMIT]  # fmt: skip

    def start(self, timeout: float = 60) -> None:
        if " ".join(self.argv) not in self.commands:
            self.commands.append(" ".join(self.argv))
        with (self.workdir / "goatcounter.log").open("a") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=log, cwd=self.workdir, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"goatcounter exited; see {self.workdir / 'goatcounter.log'}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/status", headers={"Host": VHOST})
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"goatcounter did not answer /status within {timeout:.0f} s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM: GoatCounter writes what its memory store holds before it exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stored(self) -> int:
        """Page views in the database: rows of `hits` (and of `bots`, none from browser UAs)."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            return sum(
                db.execute(f"select count(*) from {t}").fetchone()[0] for t in ("hits", "bots")
            )


# -- page views as the trackers send them ---------------------------------------------------


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


def page_views(n: int, seed: int) -> list[dict[str, Any]]:
    """n page views of ~n/4 visitors (bench/traffic.py), each with its visitor's fields."""
    rng = random.Random(seed)
    people = [traffic.visitor(rng) for _ in range(max(1, n // 4))]
    out = []
    for _ in range(n):
        who = rng.choice(people)
        out.append({**traffic.hit(rng, who), "who": who})
    return out


def browser_headers(who: dict[str, Any]) -> dict[str, str]:
    return {
        "User-Agent": who["user_agent"],
        "Accept-Language": who["accept_language"],
        "X-Forwarded-For": who["ip"],
        "Origin": f"https://{traffic.HOSTNAME}",
    }


def trail_collect(view: dict[str, Any], site_id: str) -> Request:
    """`POST /api/v1/collect` as tracker.js sends it (text/plain JSON body)."""
    import json

    url = urllib.parse.urlsplit(view["url"])
    body = {
        "website_id": site_id,
        "event_type": "page_view",
        "url": view["url"],
        "path": url.path,
        "referrer": view["referrer"],
        "title": view["title"],
        "screen_width": view["screen_width"],
        "screen_height": view["screen_height"],
    }
    headers = {**browser_headers(view["who"]), "Content-Type": "text/plain;charset=UTF-8"}
    return Request("POST", "/api/v1/collect", headers, json.dumps(body).encode())


def goatcounter_count(view: dict[str, Any], rnd: str) -> Request:
    """`POST /count?...` as count.js's sendBeacon sends it (bench/goatcounter_wrk.lua)."""
    url = urllib.parse.urlsplit(view["url"])
    search = f"?{url.query}" if url.query else ""
    query = {"p": url.path + search, "r": view["referrer"], "t": view["title"],
             "s": view["screen_width"], "b": 0, "q": search, "rnd": rnd}  # fmt: skip
    target = "/count?" + urllib.parse.urlencode({k: v for k, v in query.items() if v != ""})
    return Request("POST", target, {**browser_headers(view["who"]), "Host": VHOST}, b"")


# -- acknowledged vs stored after kill -9 ---------------------------------------------------


@dataclass
class KillAt:
    """When to SIGKILL the server: after `acked` 2xx answers, or at the first answer at least
    `seconds` after the stream began."""

    acked: int | None = None
    seconds: float | None = None

    def due(self, acked: int, elapsed: float) -> bool:
        if self.acked is not None:
            return acked >= self.acked
        return self.seconds is not None and elapsed >= self.seconds


def send_and_kill(
    port: int, requests: list[Request], at: KillAt, kill: Callable[[], None], threads: int
) -> dict[str, int]:
    """Send the requests round and round from `threads` keep-alive clients until `at` is due,
    then call `kill` while no new request may start; the stream ends there. Returns the
    requests sent, the 2xx answers (`acked`), the requests still unanswered when `kill` ran
    (`in_flight`: answered or not afterwards), the failed ones and the milliseconds from the
    first request to the kill."""
    lock = threading.Lock()
    state = {"sent": 0, "finished": 0, "acked": 0, "failed": 0, "in_flight": -1, "kill_ms": -1}
    began = time.monotonic()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if state["kill_ms"] >= 0:
                    break
                r = requests[state["sent"] % len(requests)]
                state["sent"] += 1
            try:
                conn.request(r.method, r.target, body=r.body, headers=r.headers)
                reply = conn.getresponse()
                reply.read()
                status = reply.status
                if reply.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
            with lock:
                state["finished"] += 1
                state["acked" if 200 <= status < 300 else "failed"] += 1
                elapsed = time.monotonic() - began
                if state["kill_ms"] < 0 and at.due(state["acked"], elapsed):
                    state["in_flight"] = state["sent"] - state["finished"]
                    state["kill_ms"] = round(elapsed * 1000)
                    kill()
        conn.close()

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {k: state[k] for k in ("sent", "acked", "in_flight", "failed", "kill_ms")}


def trail_acked_vs_stored(
    workdir: Path, at: KillAt, threads: int, n: int = 2000, workers: int = 2
) -> dict[str, Any]:
    """trail: n distinct page views by `/api/v1/collect`, round and round until `at`, then
    SIGKILL to the supervisor and every worker; restart on the same data dir and count the
    views of `GET /api/v1/statistics/total`."""
    server = TrailServer(workdir / "data", workers=workers, env=TRAIL_ENV).start()
    try:
        site_id, _ = server.create_site(traffic.HOSTNAME)
        requests = [trail_collect(v, site_id) for v in page_views(n, seed=1)]
        sent = send_and_kill(server.port, requests, at, server.kill9, threads)
        server.start()
        stored = stable_views(server, site_id)
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()
    return {**sent, "threads": threads, "stored": stored}


def stable_views(server: TrailServer, site_id: str, quiet: float = 3.0, limit: float = 60) -> int:
    """Views today (UTC) once the count has not changed for `quiet` seconds (the replayed WAL
    becomes visible when its segment is sealed)."""
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    params = {"from": str(today - timedelta(days=1)), "to": str(today)}
    last, since, deadline = -1, time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline:
        views = server.stats("total", site_id, **params)["views"]
        if views != last:
            last, since = views, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.5)
    return last


def goatcounter_acked_vs_stored(
    binary: Path, workdir: Path, at: KillAt, threads: int, n: int = 2000
) -> dict[str, Any]:
    """GoatCounter: the same page views by `/count` to a site that stores single page views,
    round and round until `at`, then SIGKILL; restart and count the rows of `hits`."""
    gc = GoatCounter(binary, workdir, collect_hits=True)
    gc.create()
    gc.start()
    try:
        rng = random.Random(2)
        alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
        requests = [
            goatcounter_count(v, "".join(rng.choices(alphabet, k=5))) for v in page_views(n, seed=1)
        ]
        sent = send_and_kill(gc.port, requests, at, gc.kill9, threads)
        gc.start()
        stored = gc.stored()
    finally:
        gc.stop()
    return {**sent, "threads": threads, "stored": stored, "commands": gc.commands}

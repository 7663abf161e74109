"""Generated traffic through a real trail server, every statistics endpoint against the model.

    oracle = Oracle.start()                     # a real server (data on tmpfs when there is one)
    [loaded] = oracle.load_all([traffic])       # fresh sites, hits sent, rows sealed
    check = oracle.check(loaded, "site0", params)
    diffs = oracle.run([check], FRESH)          # rows still in Arrow segments, no rollups
    diffs += oracle.compact([loaded])           # the server compacts every closed day: parts
    diffs += oracle.run([check], COMPACTED)     #   + rollups; the same queries again
    oracle.unload([loaded])                     # the sites (and their files) deleted
    print(render(diffs))

Numbers must be equal (floats to 1e-9). Lists whose order the API leaves open among ties
(`reports.Page`) may order tied rows either way, also across the page boundary. Session ids
are the server's own: they are mapped to the model's through the unfiltered session list.

Two states of the same rows are compared: FRESH, right after the rows are sealed (every closed
day is Arrow segments only), and COMPACTED, after the server merged every closed UTC day of the
example's sites into one Parquet part with its rollups (trail.tasks.compaction, through the
admin endpoint `POST /api/v1/admin/aggregate`). Today (UTC) is never closed: it stays segments,
so a range reaching today reads both kinds. The server never compacts on its own (its
maintenance round is pushed out of reach), so FRESH really is uncompacted.

Waiting is deterministic: rows are on disk once no `wal/worker-*.wal` file is left (the sealer
deletes a generation's WAL file after writing its segments, and a new one is opened only by the
next append); a day is compacted once its manifest lists one live part, no segment besides it,
and current rollups.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from tests.oracle import model
from tests.oracle.reports import Page
from tests.oracle.sessions import Tables, ingest
from tests.oracle.traffic import TIMEZONES, Site, Traffic
from tests.server import TrailServer
from trail.storage import layout, page_rollups, rollups
from trail.storage.daydir import Manifest, visible_files

GEO_DB = Path(__file__).resolve().parents[2] / "rust_core" / "tests" / "data" / "geo-test.mmdb"
SERVER_ENV = {
    # Rows sealed every 50 ms: the harness waits for the WAL to empty, not for a fixed time.
    "TRAIL_SEAL_INTERVAL_MS": "50",
    # The GeoIP test fixture, for countries.
    "TRAIL_GEOIP_DB": str(GEO_DB),
    # A UTC day is closed (compactable, and its results cacheable) right at midnight...
    "TRAIL_COMPACTION_DELAY_S": "0",
    # ...but compacted only when the harness asks: the maintenance round runs once at start
    # (nothing to do) and then not for 30 years.
    "TRAIL_COMPACTION_INTERVAL_S": str(30 * 365 * 86400),
    # The admin endpoint that compacts a day is rate limited to 60/min per key by default.
    "TRAIL_RATE_LIMIT_API": "0",
}
ENDPOINTS = [e for e in model.REPORTS]
# Model reports that read `now` (active visitors, growth of today, overview's default range):
# answered per query; every other answer is computed once and used for both states.
CLOCK = frozenset({"active", "growth", "overview"})
FRESH, COMPACTED = "fresh", "compacted"
PHASES = (FRESH, COMPACTED)
BATCH = {"page_view": "/api/v1/hit/batch", "event": "/api/v1/event/batch",
         "keep_alive": "/api/v1/session/batch"}  # fmt: skip
TOLERANCE = 1e-9
# Queries in flight at once (the server runs 2 workers).
THREADS = int(os.environ.get("TRAIL_ORACLE_THREADS", "6"))
# The server's files on tmpfs when it has room: fsync costs nothing there (compaction fsyncs
# every file it writes; ~3x faster). TRAIL_ORACLE_TMPFS="" keeps them in the temp directory.
TMPFS = os.environ.get("TRAIL_ORACLE_TMPFS", "/dev/shm")
TMPFS_MIN_FREE = 256 << 20


# Query parameters that are not filters (trail.stats.filters `is_unfiltered`): a query with only
# these, over whole UTC days that are all compacted, is answered from the rollups where a report
# can (unfiltered totals and the denominators of relative values, the page report).
NOT_FILTERS = ("scale", "sort", "direction", "limit", "offset", "include_avg_time_on_page",
               "start", "search")  # fmt: skip


@st.composite
def closed_days(
    draw: st.DrawFn, traffic: Traffic, params: dict[str, list[str]]
) -> dict[str, list[str]]:
    """An unfiltered query (the paging and sorting of `params` kept) over whole days that
    have closed: after compaction, the rollup path of the reports that have one (in a zone that
    is not UTC, the whole UTC days inside the window from rollups and the slices at its ends from
    rows). A generated filter takes it rarely (it needs no filter at all and no rows of today)."""
    today = datetime.fromtimestamp(traffic.now / 1000, UTC).date()
    first = today - timedelta(days=draw(st.integers(1, 8)))
    last = first + timedelta(days=draw(st.integers(0, (today - first).days - 1)))
    kept = {k: v for k, v in params.items() if k in NOT_FILTERS}
    tz = draw(st.sampled_from(TIMEZONES))
    return {**kept, "tz": [tz], "from": [first.isoformat()], "to": [last.isoformat()]}


class SessionsSwept(Exception):
    """The server forgot idle sessions while the traffic was sent (its maintenance sweeps, every
    5 minutes, every session idle for 2 h of wall-clock time: all of a replayed past)."""


@dataclass
class Loaded:
    traffic: Traffic
    site_ids: dict[str, str]  # site key -> server id
    tables: Tables
    # per site key: server (visitor_id, session_id) <-> model (visitor_id, session_id)
    to_model: dict[str, dict[tuple[str, int], tuple[str, int]]] = field(default_factory=dict)
    visitor_names: dict[str, dict[str, str]] = field(default_factory=dict)
    identity_problems: list[str] = field(default_factory=list)

    def site(self, key: str) -> Site:
        return next(s for s in self.traffic.sites if s.key == key)


@dataclass
class Diff:
    endpoint: str
    params: dict[str, list[str]]
    problems: list[str]
    phase: str = FRESH

    def same_as(self, other: Diff) -> bool:
        """The same disagreement (another state of the rows)."""
        key = (self.endpoint, self.params, self.problems)
        return key == (other.endpoint, other.params, other.problems)


@dataclass
class Query:
    """One endpoint with its full query, and the model's answer when it does not read `now`."""

    endpoint: str
    params: dict[str, list[str]]
    want: Any = None
    answered: bool = False


@dataclass
class Check:
    """Every endpoint (or some) of one filter on one site of a loaded traffic."""

    loaded: Loaded
    site_key: str
    queries: list[Query]

    @property
    def tables(self) -> Tables:
        return self.loaded.tables.for_site(self.site_key)


class Oracle:
    def __init__(self, server: TrailServer, threads: int = THREADS) -> None:
        self.server = server
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads))
        self.owned: Path | None = None  # a data directory `start` made, removed by `stop`
        self.keep_log: Path | None = None  # where `stop` copies the server's log

    # -- the server ----------------------------------------------------------------------------

    @classmethod
    def start(cls, base: Path | None = None, threads: int = THREADS) -> Oracle:
        """A server for the oracle: 2 workers, SERVER_ENV, its data in a new directory on tmpfs
        (with 256 MiB free; an example's sites are deleted after it, so a run stays below 1 MiB)
        or under `base` (else the system's temp directory)."""
        root = base
        if TMPFS and os.access(TMPFS, os.W_OK) and shutil.disk_usage(TMPFS).free >= TMPFS_MIN_FREE:
            root = Path(TMPFS)
        owned = Path(tempfile.mkdtemp(prefix="trail-oracle-", dir=root))
        data = owned / "data"
        data.mkdir()
        oracle = cls(TrailServer(data, workers=2, env=dict(SERVER_ENV)).start(), threads)
        oracle.owned, oracle.keep_log = owned, base
        return oracle

    def stop(self) -> None:
        """Stop the server; remove the data directory `start` made (its log is copied to
        `base` first)."""
        self.pool.shutdown(wait=True)
        try:
            self.server.stop()
        finally:
            if self.owned is not None:
                if self.keep_log is not None and self.keep_log != self.owned.parent:
                    for log in self.owned.glob("server-*.log"):
                        shutil.copy(log, self.keep_log / log.name)
                shutil.rmtree(self.owned, ignore_errors=True)

    # -- loading -----------------------------------------------------------------------------

    def load(self, traffic: Traffic, attempts: int = 3) -> Loaded:
        """`load_all` of one traffic."""
        return self.load_all([traffic], attempts)[0]

    def load_all(self, traffics: list[Traffic], attempts: int = 3) -> list[Loaded]:
        """Fresh sites for each traffic (renamed to unique hostnames), its hits sent in order,
        and the rows sealed. Retried with new sites if a session sweep ran meanwhile."""
        for attempt in range(attempts):
            try:
                return self._load(traffics)
            except SessionsSwept:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _load(self, traffics: list[Traffic]) -> list[Loaded]:
        log = self.server.data_dir.parent / f"server-{self.server.port}.log"
        log_size = log.stat().st_size if log.exists() else 0
        out = []
        for traffic in traffics:
            traffic = renamed(traffic, uuid.uuid4().hex[:10])
            site_ids, keys = {}, {}
            for site in traffic.sites:
                site_ids[site.key], keys[site.key] = self.server.create_site(
                    site.hostname, site.timezone
                )
            out.append(Loaded(traffic, site_ids, ingest(traffic.hits)))
            for kind, site_key, bodies in batches(traffic.hits):
                r = self.server.call("POST", BATCH[kind], bodies, key=keys[site_key])
                assert r.status == 200, (kind, r.status, r.body[:300])
        self.wait_sealed()  # (also gives a sweep that ran meanwhile the time to log it)
        if log.exists() and "swept" in log.read_bytes()[log_size:].decode("utf-8", "replace"):
            self.unload(out)
            raise SessionsSwept()
        for loaded in out:
            for site in loaded.traffic.sites:
                self._map_sessions(loaded, site)
        return out

    def wait_sealed(self, timeout: float = 20) -> None:
        """Until every row the server acknowledged is in a segment: no WAL file left."""
        wal = layout.wal_dir(self.server.data_dir)
        deadline = time.monotonic() + timeout
        while True:
            try:
                left = [n for n in os.listdir(wal) if layout.wal_file(n) is not None]
            except FileNotFoundError:
                left = []
            if not left:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"rows not sealed after {timeout} s: {left} in {wal}")
            time.sleep(0.005)

    def unload(self, loaded: list[Loaded]) -> None:
        """Delete the sites (their rows go with them): the next compaction visits only the
        directories of its own example."""
        for one in loaded:
            for site_id in one.site_ids.values():
                r = self.server.call(
                    "DELETE", f"/api/v1/domain?id={site_id}", key=self.server.admin_key
                )
                assert r.status in (200, 204), (r.status, r.body[:300])

    def _full_range(self, loaded: Loaded, site: Site) -> dict[str, list[str]]:
        tz = ZoneInfo(site.timezone)
        first = min((h["time"] for h in loaded.traffic.hits), default=loaded.traffic.now)
        start = datetime.fromtimestamp(first / 1000, UTC).astimezone(tz).date()
        today = datetime.now(UTC).astimezone(tz).date()
        return {"from": [(start - timedelta(days=1)).isoformat()], "to": [today.isoformat()]}

    def _map_sessions(self, loaded: Loaded, site: Site) -> None:
        """Server session ids -> the model's, by start time (every session starts on its own
        second). Visitors must map one to one: otherwise the fingerprint differs."""
        span = self._full_range(loaded, site)
        tables = loaded.tables.for_site(site.key)
        by_start = {s["start"] // 1000: (s["visitor_id"], s["session_id"])
                    for s in tables.sessions if s["sign"] == 1}  # fmt: skip
        mapping: dict[tuple[str, int], tuple[str, int]] = {}
        offset = 0
        while True:
            page = self.get("session/list", loaded.site_ids[site.key],
                            {**span, "limit": ["100"], "offset": [str(offset)]})  # fmt: skip
            if not isinstance(page, list) or not page:
                break
            for row in page:
                start = int(datetime.fromisoformat(row["start"]).timestamp())
                if start in by_start:
                    mapping[(str(row["visitor_id"]), row["session_id"])] = by_start[start]
            offset += len(page)
        loaded.to_model[site.key] = mapping
        visitors: dict[str, set[str]] = {}
        for (server_v, _), (model_v, _) in mapping.items():
            visitors.setdefault(server_v, set()).add(model_v)
        names = {}
        for server_v, model_vs in visitors.items():
            if len(model_vs) > 1:
                loaded.identity_problems.append(
                    f"{site.key}: one server visitor {server_v} is model visitors {sorted(model_vs)}"
                )
            names[server_v] = min(model_vs)
        inverse = Counter(names.values())
        for model_v, n in inverse.items():
            if n > 1:
                loaded.identity_problems.append(
                    f"{site.key}: model visitor {model_v} is {n} server visitors"
                )
        loaded.visitor_names[site.key] = names

    # -- querying ----------------------------------------------------------------------------

    def get(self, endpoint: str, site_id: str, params: dict[str, list[str]]) -> Any:
        query = urllib.parse.urlencode([("id", site_id)] + [(k, v) for k, vs in params.items()
                                                              for v in vs], doseq=False)  # fmt: skip
        r = self.server.call("GET", f"/api/v1/statistics/{endpoint}?{query}",
                             key=self.server.admin_key)  # fmt: skip
        try:
            body = r.json()
        except ValueError:
            body = r.body.decode("utf-8", "replace")
        return body if r.status == 200 else {"status": r.status, "body": body}

    def check(
        self,
        loaded: Loaded,
        site_key: str,
        params: dict[str, list[str]],
        endpoints: list[str] | None = None,
    ) -> Check:
        """Every endpoint (or `endpoints`) with `params`, the model's answers computed once."""
        site = loaded.site(site_key)
        tables = loaded.tables.for_site(site_key)
        queries = []
        for endpoint in endpoints or ENDPOINTS:
            query = Query(endpoint, self.required(endpoint, loaded, site_key, params))
            if endpoint not in CLOCK:
                query.want = model.answer(tables, site.timezone, endpoint, query.params, now_ms())
                query.answered = True
            queries.append(query)
        return Check(loaded, site_key, queries)

    def run(self, checks: list[Check], phase: str = FRESH) -> list[Diff]:
        """The server's answers to every query of `checks`, several in flight at once, each
        against the model's; the differences in query order."""
        futures: list[Future[Diff | None]] = []
        diffs = []
        for c in checks:
            if c.loaded.identity_problems:
                diffs.append(
                    Diff("(visitor identity)", {}, list(c.loaded.identity_problems), phase)
                )
            futures += [self.pool.submit(self._one, c, q, phase) for q in c.queries]
        return diffs + [d for f in futures if (d := f.result()) is not None]

    def _one(self, check: Check, query: Query, phase: str) -> Diff | None:
        loaded, site_key = check.loaded, check.site_key
        now = now_ms()
        got = self.get(query.endpoint, loaded.site_ids[site_key],
                       server_params(query.params, loaded, site_key))  # fmt: skip
        want = query.want
        if not query.answered:
            tz = loaded.site(site_key).timezone
            want = model.answer(check.tables, tz, query.endpoint, query.params, now)
        got = self.to_model_ids(query.endpoint, got, loaded, site_key)
        if query.endpoint == "overview" and isinstance(got, dict):
            got.pop("member", None)
        problems = compare_answer(want, got)
        return Diff(query.endpoint, query.params, problems, phase) if problems else None

    def examine(self, checks: list[Check], phases: tuple[str, ...] = PHASES) -> list[Diff]:
        """`checks` on the rows as loaded (FRESH), then after the server compacted their closed
        days (COMPACTED): every difference of either state."""
        diffs = self.run(checks, FRESH) if FRESH in phases else []
        if COMPACTED in phases:
            loaded = list({id(c.loaded): c.loaded for c in checks}.values())
            diffs += self.compact(loaded)
            diffs += self.run(checks, COMPACTED)
        return diffs

    def compare(
        self,
        loaded: Loaded,
        site_key: str,
        params: dict[str, list[str]],
        endpoints: list[str] | None = None,
    ) -> list[Diff]:
        """Every endpoint (or `endpoints`) with `params` on the server and in the model, the
        rows as they are now."""
        return self.run([self.check(loaded, site_key, params, endpoints)])

    # -- compaction --------------------------------------------------------------------------

    def compact(self, loaded: list[Loaded], rounds: int = 3) -> list[Diff]:
        """Have the server compact every closed UTC day the sites of `loaded` have rows in,
        oldest first (a day's page rollup counts the sessions carried over from the part of the
        day before), and wait until each of their day directories is settled: one live part,
        no segment besides it, current rollups. A day still unsettled is asked again (at most
        `rounds` times in all); what stays unsettled, or an answer that is not a success, is
        returned as a "(compaction)" Diff."""
        site_ids = [i for one in loaded for i in one.site_ids.values()]
        problems: list[str] = []
        todo = sorted({day for _, _, day, _ in self.closed_dirs(site_ids)})
        for _ in range(rounds):
            for day in todo:
                problems += self.aggregate(day)
            if problems:
                break
            waiting = self.unsettled(site_ids)
            todo = sorted({day for day, _ in waiting})
            if not todo:
                return []
            time.sleep(0.05)  # e.g. a segment whose WAL was still being deleted: deferred
        problems += [f"{day}: {what}" for day, what in self.unsettled(site_ids)]
        return [Diff("(compaction)", {}, problems, COMPACTED)] if problems else []

    def aggregate(self, day: date) -> list[str]:
        """`POST /api/v1/admin/aggregate` for one UTC day: what went wrong, if anything."""
        r = self.server.call("POST", "/api/v1/admin/aggregate", {"date": day.isoformat()},
                             **{"X-API-KEY": str(self.server.admin_key)})  # fmt: skip
        try:
            summary = r.json()["data"]["summary"]
        except (ValueError, KeyError, TypeError):
            return [f"{day}: aggregate answered {r.status} {r.body[:300]!r}"]
        if r.status != 200 or summary.get("skipped") or summary.get("failed_dirs"):
            return [f"{day}: aggregate answered {r.status} {short(summary)}"]
        return []

    def closed_dirs(self, site_ids: list[str]) -> list[tuple[str, str, date, Path]]:
        """(table, site id, day, directory) of every day directory of these sites whose UTC
        day has closed (before today)."""
        today = datetime.now(UTC).date()
        out = []
        for table in layout.TABLES:
            for site_id in site_ids:
                site_dir = layout.site_dir(self.server.data_dir, table, site_id)
                try:
                    names = os.listdir(site_dir)
                except FileNotFoundError:
                    continue
                for name in names:
                    day = layout.day_of(name)
                    if day is not None and day < today:
                        out.append((table, site_id, day, site_dir / name))
        return out

    def unsettled(self, site_ids: list[str]) -> list[tuple[date, str]]:
        """The closed day directories of these sites that compaction has not settled yet, as
        (day, what is missing)."""
        out = []
        for table, site_id, day, day_dir in self.closed_dirs(site_ids):
            manifest = Manifest.read(day_dir)
            arrow, parquet = visible_files(os.listdir(day_dir), manifest)
            where = f"{table}/site={site_id}"
            if arrow or len(parquet) != 1:
                out.append((day, f"{where}: segments {arrow}, parts {parquet}"))
            elif rollup_stale(table, day_dir, day, manifest, parquet[0]):
                out.append((day, f"{where}: rollup {short(manifest.rollup)} not current"))
        return out

    @staticmethod
    def required(
        endpoint: str, loaded: Loaded, site_key: str, params: dict[str, list[str]]
    ) -> dict[str, list[str]]:
        """`params` plus what an endpoint cannot do without, picked from the traffic."""
        q = dict(params)
        tables = loaded.tables.for_site(site_key)
        if endpoint in ("event/meta", "event/page") and not q.get("event"):
            names = Counter(e["event_name"] for e in tables.events)
            q["event"] = [names.most_common(1)[0][0] if names else "signup"]
        if endpoint == "event/meta" and not q.get("event_meta_key"):
            meta_keys = Counter(k for e in tables.events for k in e["event_meta_keys"])
            q["event_meta_key"] = [meta_keys.most_common(1)[0][0] if meta_keys else "plan"]
        # tag/details answers every key/value pair without a tag (the Go SDK's Tags()): it is
        # asked as the filter has it, with or without one.
        if endpoint == "options/tag/value" and not q.get("tag"):
            tag_keys = Counter(k for pv in tables.page_views for k in pv["tag_keys"])
            q["tag"] = [tag_keys.most_common(1)[0][0] if tag_keys else "author"]
        if endpoint == "session/details":
            # The latest session the filter lists, else any: its page views and events.
            listed = model.answer(tables, loaded.site(site_key).timezone, "session/list",
                                  {**params, "offset": ["0"]}, now_ms()).full  # fmt: skip
            keys = [(r["visitor_id"], r["session_id"]) for r in listed]
            keys = keys or list(loaded.to_model.get(site_key, {}).values()) or [("0", 0)]
            q["visitor_id"], q["session_id"] = [keys[0][0]], [str(keys[0][1])]
        return q

    @staticmethod
    def to_model_ids(endpoint: str, got: Any, loaded: Loaded, site_key: str) -> Any:
        """Server visitor and session ids in a session report -> the model's."""
        mapping = loaded.to_model.get(site_key, {})
        if endpoint == "session/list" and isinstance(got, list):
            for row in got:
                k = (str(row["visitor_id"]), row["session_id"])
                row["visitor_id"], row["session_id"] = mapping.get(k, (f"server:{k[0]}", k[1]))
        if endpoint == "session/details" and isinstance(got, list):
            for item in got:
                for part in (item.get("page_view"), item.get("event")):
                    if part:
                        k = (str(part["visitor_id"]), part["session_id"])
                        part["visitor_id"], part["session_id"] = mapping.get(
                            k, (f"server:{k[0]}", k[1])
                        )
        return got


def server_params(
    query: dict[str, list[str]], loaded: Loaded, site_key: str
) -> dict[str, list[str]]:
    """The model's session/details ids -> the server's."""
    if "visitor_id" not in query:
        return query
    inverse = {v: k for k, v in loaded.to_model.get(site_key, {}).items()}
    server_key = inverse.get((query["visitor_id"][0], int(query["session_id"][0])))
    if server_key is None:
        return query
    return {**query, "visitor_id": [server_key[0]], "session_id": [str(server_key[1])]}


def rollup_stale(table: str, day_dir: Path, day: date, manifest: Manifest, part: str) -> bool:
    """Whether the rollup of a compacted day is missing or out of date, by the rule the
    compactor rebuilds it by (trail.tasks.compaction `_rollup_stale`): it must describe the live
    part, and a page rollup's inputs (the day's sessions rollup, the previous day's page_views
    part) must be the current ones, or the query side does not use it."""
    version = {"sessions": rollups.VERSION, "page_views": page_rollups.VERSION}.get(table)
    if version is None:
        return False
    r = manifest.rollup
    if r.get("version") != version or r.get("part") != part:
        return True
    if table == "page_views":
        return any(r.get(k) != v for k, v in page_rollups.inputs(day_dir, day).items())
    return False


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def renamed(traffic: Traffic, token: str) -> Traffic:
    """The same traffic on sites with hostnames no other test uses (subdomains are unique per
    server): `siteN.oracle.test` -> `<token>-siteN.oracle.test` in URLs, referrers and rows."""
    names = {s.hostname: f"{token}-{s.hostname}" for s in traffic.sites}
    sites = [replace(s, hostname=names[s.hostname]) for s in traffic.sites]
    hits = []
    for hit in traffic.hits:
        request = dict(hit["request"])
        for k in ("url", "referrer"):
            if k in request:
                for old, new in names.items():
                    request[k] = request[k].replace(f"//{old}", f"//{new}")
        dims = {
            **hit["dims"],
            "hostname": names.get(hit["dims"]["hostname"], hit["dims"]["hostname"]),
        }
        hits.append({**hit, "request": request, "dims": dims})
    return Traffic(sites, hits, traffic.now)


def batches(hits: list[dict[str, Any]]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """Consecutive hits of one kind and site as one batch request: the server then sees every
    hit in time order, as the model replays them."""
    out: list[tuple[str, str, list[dict[str, Any]]]] = []
    for hit in hits:
        if out and out[-1][0] == hit["kind"] and out[-1][1] == hit["site"]:
            out[-1][2].append(hit["request"])
        else:
            out.append((hit["kind"], hit["site"], [hit["request"]]))
    return out


# -- comparing -------------------------------------------------------------------------------


def compare_answer(want: Any, got: Any) -> list[str]:
    if isinstance(want, Page):
        return compare_page(want, got)
    return differences(want, got, "")


def differences(want: Any, got: Any, at: str) -> list[str]:
    """Readable differences between the model's answer and the server's ("" when equal)."""
    where = at or "."
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{where}: model {short(want)} / trail {short(got)}"]
        out = []
        for k in sorted(set(want) | set(got), key=str):
            if k not in got:
                out.append(f"{at}.{k}: missing in trail (model {short(want[k])})")
            elif k not in want:
                out.append(f"{at}.{k}: unexpected in trail ({short(got[k])})")
            else:
                out += differences(want[k], got[k], f"{at}.{k}")
        return out
    if isinstance(want, list):
        if not isinstance(got, list):
            return [f"{where}: model {short(want)} / trail {short(got)}"]
        out = []
        if len(want) != len(got):
            out.append(f"{where}: model has {len(want)} items, trail {len(got)}")
        for i, (w, g) in enumerate(zip(want, got, strict=False)):
            out += differences(w, g, f"{at}[{i}]")
        return out
    if same(want, got):
        return []
    return [f"{where}: model {short(want)} / trail {short(got)}"]


def same(want: Any, got: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        if isinstance(want, float) or isinstance(got, float):
            return abs(want - got) <= TOLERANCE
        return want == got
    return bool(want == got)


def order_key(row: dict[str, Any], order: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(json.dumps(row.get(f), sort_keys=True) if not isinstance(row.get(f), float)
                 else f"{row.get(f):.9f}" for f in order)  # fmt: skip


def compare_page(want: Page, got: Any) -> list[str]:
    """A sorted page: the sequence of sort keys must be the model's; the rows of each tie
    group must be rows of the model's group, all of them when the group lies inside the page."""
    if not isinstance(got, list) or not all(isinstance(r, dict) for r in got):
        return differences(want.rows, got, "")
    positional = differences(want.rows, got, "")
    if not positional:
        return []
    if [order_key(r, want.order) for r in got] != [order_key(r, want.order) for r in want.rows]:
        return positional
    for group in {order_key(r, want.order) for r in got}:
        pool = [r for r in want.full if order_key(r, want.order) == group]
        mine = [r for r in got if order_key(r, want.order) == group]
        page_rows = [r for r in want.rows if order_key(r, want.order) == group]
        for row in mine:
            match = next((p for p in pool if not differences(p, row, "")), None)
            if match is None:
                return positional
            pool.remove(match)
        whole = len([r for r in want.full if order_key(r, want.order) == group])
        if len(page_rows) == whole and pool:
            return positional
    return []


def short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def only_after_compaction(diffs: list[Diff]) -> list[Diff]:
    """The COMPACTED differences that the same query did not show FRESH (new or other)."""
    fresh = [d for d in diffs if d.phase == FRESH]
    return [d for d in diffs
            if d.phase == COMPACTED and not any(d.same_as(f) for f in fresh)]  # fmt: skip


def report(diffs: list[Diff], max_lines: int = 80) -> str:
    """`render` of the FRESH differences and of the COMPACTED ones that are not the same."""
    fresh = [d for d in diffs if d.phase != COMPACTED]
    after = only_after_compaction(diffs)
    same = len([d for d in diffs if d.phase == COMPACTED]) - len(after)
    note = [f"({same} more, after compaction, the same as fresh)"] if same else []
    return "\n".join([render(fresh + after, max_lines), *note])


def render(diffs: list[Diff], max_lines: int = 80) -> str:
    lines = []
    for d in diffs:
        query = urllib.parse.urlencode([(k, v) for k, vs in d.params.items() for v in vs])
        what = d.endpoint if d.endpoint.startswith("(") else f"/api/v1/statistics/{d.endpoint}"
        lines.append(f"[{d.phase}] {what}" + (f"?{query}" if query else ""))
        lines += [f"    {p}" for p in d.problems[:12]]
        if len(d.problems) > 12:
            lines.append(f"    ... {len(d.problems) - 12} more")
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... {len(lines) - max_lines} more lines"]
    return "\n".join(lines)


def describe(traffic: Traffic) -> str:
    """The traffic as one line per hit, for a failure report."""
    lines = [f"sites: {[(s.key, s.hostname, s.timezone) for s in traffic.sites]}"]
    for h in traffic.hits:
        d = h["dims"]
        extra = ""
        if h["kind"] == "event":
            extra = f" event={h['event_name']!r} meta={h['event_meta']} ni={h['non_interactive']}"
            extra += f" dur={h['event_duration']}"
        lines.append(
            f"{h['request']['time']} {h['site']} {h['kind']:10} {h['ip']:>14} "
            f"{d['browser']}/{d['os']} {h['path'] or '-'} ref={d['referrer_name']!r} "
            f"utm={d['utm_source']!r}/{d['utm_medium']!r} tags={h['tags']}{extra}"
        )
    return "\n".join(lines)

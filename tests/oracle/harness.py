"""Generated traffic through a real trail server, every statistics endpoint against the model.

    oracle = Oracle(server)                     # a started tests.server.TrailServer
    loaded = oracle.load(traffic)               # fresh sites, hits sent, rows visible
    diffs = oracle.compare(loaded, "site0", params)
    print(render(diffs))

Numbers must be equal (floats to 1e-9). Lists whose order the API leaves open among ties
(`reports.Page`) may order tied rows either way, also across the page boundary. Session ids
are the server's own: they are mapped to the model's through the unfiltered session list.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.oracle import model
from tests.oracle.reports import Page
from tests.oracle.sessions import Tables, ingest
from tests.oracle.traffic import Site, Traffic
from tests.server import TrailServer

GEO_DB = Path(__file__).resolve().parents[2] / "rust_core" / "tests" / "data" / "geo-test.mmdb"
# A server for the oracle: rows sealed every 200 ms, the GeoIP test fixture for countries.
SERVER_ENV = {"TRAIL_SEAL_INTERVAL_MS": "200", "TRAIL_GEOIP_DB": str(GEO_DB)}
ENDPOINTS = [e for e in model.REPORTS]
BATCH = {"page_view": "/api/v1/hit/batch", "event": "/api/v1/event/batch",
         "keep_alive": "/api/v1/session/batch"}  # fmt: skip
TOLERANCE = 1e-9


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


class Oracle:
    def __init__(self, server: TrailServer) -> None:
        self.server = server

    # -- loading -----------------------------------------------------------------------------

    def load(self, traffic: Traffic, attempts: int = 3) -> Loaded:
        """Fresh sites for `traffic` (renamed to unique hostnames), its hits sent in order, and
        the rows visible. Retried with new sites if a session sweep ran meanwhile."""
        for attempt in range(attempts):
            try:
                return self._load(traffic)
            except SessionsSwept:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _load(self, traffic: Traffic) -> Loaded:
        traffic = renamed(traffic, uuid.uuid4().hex[:10])
        log = self.server.data_dir.parent / f"server-{self.server.port}.log"
        log_size = log.stat().st_size if log.exists() else 0
        site_ids, keys = {}, {}
        for site in traffic.sites:
            site_ids[site.key], keys[site.key] = self.server.create_site(
                site.hostname, site.timezone
            )
        for kind, site_key, bodies in batches(traffic.hits):
            r = self.server.call("POST", BATCH[kind], bodies, key=keys[site_key])
            assert r.status == 200, (kind, r.status, r.body[:300])
        if log.exists() and "swept" in log.read_bytes()[log_size:].decode("utf-8", "replace"):
            raise SessionsSwept()
        tables = ingest(traffic.hits)
        loaded = Loaded(traffic, site_ids, tables)
        for site in traffic.sites:
            self._wait_visible(loaded, site)
            self._map_sessions(loaded, site)
        return loaded

    def _full_range(self, loaded: Loaded, site: Site) -> dict[str, list[str]]:
        tz = ZoneInfo(site.timezone)
        first = min((h["time"] for h in loaded.traffic.hits), default=loaded.traffic.now)
        start = datetime.fromtimestamp(first / 1000, UTC).astimezone(tz).date()
        today = datetime.now(UTC).astimezone(tz).date()
        return {"from": [(start - timedelta(days=1)).isoformat()], "to": [today.isoformat()]}

    def _wait_visible(self, loaded: Loaded, site: Site, timeout: float = 20) -> None:
        """Until the unfiltered totals and event count of the whole range are the model's; then
        one more seal interval, for rows (keep-alives) that change neither."""
        span = self._full_range(loaded, site)
        tables = loaded.tables.for_site(site.key)
        want_total = model.answer(tables, site.timezone, "total", span, now_ms())
        want = (want_total["visitors"], want_total["sessions"], want_total["views"],
                len([e for e in tables.events]))  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            total = self.get("total", loaded.site_ids[site.key], span)
            events = self.get("events", loaded.site_ids[site.key], span)
            if not isinstance(total, dict) or not isinstance(events, list):
                break
            got = (total["visitors"], total["sessions"], total["views"],
                   sum(e["count"] for e in events))  # fmt: skip
            if got == want:
                break
            time.sleep(0.2)
        time.sleep(0.6)

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

    def compare(
        self,
        loaded: Loaded,
        site_key: str,
        params: dict[str, list[str]],
        endpoints: list[str] | None = None,
    ) -> list[Diff]:
        """Every endpoint (or `endpoints`) with `params` on the server and in the model."""
        site = loaded.site(site_key)
        tables = loaded.tables.for_site(site_key)
        diffs = []
        if loaded.identity_problems:
            diffs.append(Diff("(visitor identity)", {}, list(loaded.identity_problems)))
        for endpoint in endpoints or ENDPOINTS:
            query = self.required(endpoint, loaded, site_key, params)
            now = now_ms()
            got = self.get(
                endpoint, loaded.site_ids[site_key], server_params(query, loaded, site_key)
            )
            want = model.answer(tables, site.timezone, endpoint, query, now)
            got = self.to_model_ids(endpoint, got, loaded, site_key)
            if endpoint == "overview" and isinstance(got, dict):
                got.pop("member", None)
            problems = compare_answer(want, got)
            if problems:
                diffs.append(Diff(endpoint, query, problems))
        return diffs

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
            keys = Counter(k for e in tables.events for k in e["event_meta_keys"])
            q["event_meta_key"] = [keys.most_common(1)[0][0] if keys else "plan"]
        if endpoint in ("tag/details", "options/tag/value") and not q.get("tag"):
            keys = Counter(k for pv in tables.page_views for k in pv["tag_keys"])
            q["tag"] = [keys.most_common(1)[0][0] if keys else "author"]
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


def render(diffs: list[Diff], max_lines: int = 80) -> str:
    lines = []
    for d in diffs:
        query = urllib.parse.urlencode([(k, v) for k, vs in d.params.items() for v in vs])
        lines.append(f"/api/v1/statistics/{d.endpoint}?{query}")
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

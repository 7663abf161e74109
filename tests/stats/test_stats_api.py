"""The statistics routes of a real `trail serve` over loopback HTTP: routing, shapes, errors.

The site's rows are real segment files written into the server's data directory for a domain
created through the API; the queries scan them like any other segment.
"""

from __future__ import annotations

import io
import urllib.parse
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from segment_rows import SiteData

from tests.server import Reply, TrailServer
from tests.test_authz_matrix import registered_routes

DAY = "2024-03-10"
SPAN = {"from": DAY, "to": DAY}
REPORT_NAMES = [
    "total", "visitor", "page", "page/entry", "page/exit", "event/page", "hostname", "referrer",
    "channel", "utm/source", "utm/medium", "utm/campaign", "utm/content", "utm/term", "os",
    "os/version", "browser", "browser/version", "country", "region", "city", "language",
    "platform", "screen", "tags", "tag/details", "hours", "minutes", "weekdays",
    "duration/session", "duration/page", "events", "event/meta", "event/list", "goals",
    "funnel", "growth", "active", "overview", "session/list", "session/details", "keywords",
    "options/referrer/name", "options/hostname", "options/page", "options/referrer",
    "options/event", "options/country", "options/region", "options/city", "options/language",
    "options/metadata", "options/utm/source", "options/utm/medium", "options/utm/campaign",
    "options/utm/content", "options/utm/term", "options/tag", "options/tag/value",
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    data = tmp_path_factory.mktemp("stats-api") / "data"
    data.mkdir()
    s = TrailServer(data, workers=1).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def site(server: TrailServer) -> str:
    """A domain with one visitor: one session of "/" and, 9 s later, "/a" (tagged author=jane)."""
    site_id, _ = server.create_site("stats-api.example")
    data = SiteData(server.data_dir, site_id)
    data.visit(
        1, 1, [(f"{DAY} 10:00:00", "/"), (f"{DAY} 10:00:09", "/a")], tags={1: {"author": "jane"}}
    )
    data.write()
    return site_id


def get(server: TrailServer, path: str, **params: str) -> Reply:
    query = urllib.parse.urlencode(params)
    return server.call("GET", f"/api/v1/statistics{path}?{query}", key=server.admin_key)


def report(server: TrailServer, site: str, name: str, **params: str) -> Any:
    """The JSON of a successful report over the test day."""
    r = get(server, f"/{name}", id=site, **SPAN, **params)
    assert r.status == 200, (name, r.body)
    return r.json()


def pirsch_error(r: Reply, status: int) -> dict[str, Any]:
    """The body of an error reply: `{"validation": {field: message}, "error": [message]}`."""
    assert r.status == status, r.body
    body = r.json()
    assert set(body) == {"validation", "error"} and body["error"], body
    return body


def test_routes_and_shapes(server: TrailServer, site: str) -> None:
    total = report(server, site, "total")
    # one visitor, one session of 2 views that did not bounce
    assert total["visitors"] == 1 and total["views"] == 2 and total["bounce_rate"] == 0.0
    assert [p["path"] for p in report(server, site, "page")] == ["/", "/a"]
    r = get(server, "/active", id=site)
    assert r.status == 200 and set(r.json()) == {"stats", "countries", "visitors"}
    for name in (
        "page/entry",
        "page/exit",
        "referrer",
        "platform",
        "hours",
        "weekdays",
        "duration/session",
        "growth",
        "os",
        "browser/version",
        "country",
        "region",
        "city",
        "language",
        "screen",
        "channel",
        "utm/source",
        "utm/term",
    ):
        assert report(server, site, name) is not None, name
    assert report(server, site, "os") == [{"visitors": 1, "relative_visitors": 1.0, "os": ""}]
    assert report(server, site, "duration/session")[0]["average_time_spent_seconds"] == 9


def test_every_report_route_is_registered(server: TrailServer, site: str) -> None:
    # The real app's router holds exactly these statistics reads...
    routes = registered_routes()
    registered = {p for m, p in routes if m == "GET" and p.startswith("/api/v1/statistics")}
    assert registered == {f"/api/v1/statistics/{n}" for n in REPORT_NAMES} | {"/api/v1/statistics"}
    # ...and the running server routes each of them to its handler, not to the catch-all.
    assert "no route" in pirsch_error(get(server, "/nope", id=site, **SPAN), 404)["error"][0]
    unrouted = []
    for name in ["", *(f"/{n}" for n in REPORT_NAMES)]:
        r = get(server, name, id=site, **SPAN)
        if r.status not in (200, 400) or b"no route" in r.body:
            unrouted.append(f"{name}: {r.status} {r.body[:120]!r}")
    assert not unrouted, unrouted


def test_list_reports(server: TrailServer, site: str) -> None:
    for name in ("hostname", "tags", "minutes", "duration/page", "events", "event/list",
                 "session/list", "options/page"):  # fmt: skip
        assert isinstance(report(server, site, name), list), name
    assert report(server, site, "options/page") == ["/", "/a"]
    # Without `tag` (the Go SDK's Tags() asks so): every key/value pair.
    jane = {"key": "author", "value": "jane", "visitors": 1, "views": 1,
            "relative_visitors": 1.0, "relative_views": 0.5}  # fmt: skip
    assert report(server, site, "tag/details") == [jane]
    assert report(server, site, "tag/details", tag="author") == [jane]
    assert report(server, site, "tag/details", tag="kind") == []
    assert report(server, site, "session/list")[0]["visitor_id"] == "1"


# (report, query keys left out, extra query, the field the 400 names; None: keywords' message)
ERRORS = [
    ("visitor", ("id",), {}, "id"),
    ("visitor", ("from", "to"), {}, "from"),
    ("visitor", ("to",), {}, "to"),
    ("visitor", (), {"tz": "Nowhere/Land"}, "tz"),
    ("visitor", (), {"scale": "hour"}, "scale"),
    ("event/meta", (), {"event": "x"}, "event_meta_key"),
    ("event/page", (), {}, "event"),
    ("options/tag/value", (), {}, "tag"),
    ("session/details", (), {"visitor_id": "1"}, "session_id"),
    ("session/details", (), {"visitor_id": "x", "session_id": "1"}, "visitor_id"),
    ("page", (), {"include_avg_time_on_page": "maybe"}, "include_avg_time_on_page"),
    ("total", (), {"custom_metric_key": "amount"}, "custom_metric_type"),
    ("total", (), {"pattern": "("}, "pattern"),
    ("page", (), {"limit": "-1"}, "limit"),
    ("page", (), {"offset": "x"}, "offset"),
    ("page", (), {"direction": "up"}, "direction"),
    ("page", (), {"from_time": "25:00"}, "from_time"),
    ("platform", (), {"platform": "tablet"}, "platform"),
    ("keywords", (), {}, None),
]


@pytest.mark.parametrize(
    ("name", "leave_out", "extra", "field"), ERRORS, ids=[f"{e[0]}-{e[3]}" for e in ERRORS]
)
def test_errors_name_the_field(
    server: TrailServer,
    site: str,
    name: str,
    leave_out: tuple[str, ...],
    extra: dict[str, str],
    field: str | None,
) -> None:
    query = {k: v for k, v in {"id": site, **SPAN}.items() if k not in leave_out}
    body = pirsch_error(get(server, f"/{name}", **query, **extra), 400)
    if field:
        assert field in body["validation"]
    else:
        assert "Search Console" in body["error"][0]


def test_unknown_domain_is_404(server: TrailServer, site: str) -> None:
    body = pirsch_error(get(server, "/visitor", id="other", **SPAN), 404)
    assert body["validation"] == {}


def test_export_route(server: TrailServer, site: str) -> None:
    r = get(server, "", id=site, **SPAN, pages="true", os="1", utm="false")
    assert r.status == 200, r.body
    assert sorted(zipfile.ZipFile(io.BytesIO(r.body)).namelist()) == ["os.csv", "pages.csv"]

"""The statistics routes with the HTTP edge faked: routing, validation errors, output shape."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from segment_rows import SITE, SiteData

from trail.api import pirsch_stats


class FakeApiError(Exception):
    def __init__(self, status: int, message: str, validation: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.validation = status, message, validation or {}


@dataclass
class FakeSite:
    id: str = SITE
    timezone: str = "UTC"
    group_by_title: bool = False
    active_visitors_seconds: int = 600


@dataclass
class Ctx:
    data_dir: Path


class FakeApp:
    def __init__(self) -> None:
        self.routes: dict[str, Any] = {}

    def get(self, path: str):
        def add(fn):
            self.routes[path] = fn
            return fn

        return add


@pytest.fixture
def app(site: SiteData, monkeypatch: pytest.MonkeyPatch) -> FakeApp:
    site.visit(1, 1, [("2024-03-10 10:00:00", "/"), ("2024-03-10 10:00:09", "/a")])
    site.write()
    common = types.ModuleType("trail.api.common")
    common.ApiError = FakeApiError  # type: ignore[attr-defined]
    common.handler = lambda fn: fn  # type: ignore[attr-defined]
    common.offloaded = lambda fn: fn  # type: ignore[attr-defined]
    common.json_response = lambda obj, status=200, headers=None: ("json", status, obj)  # type: ignore[attr-defined]
    common.query_params = lambda request: request  # type: ignore[attr-defined]

    def authorize_site(ctx, request, site_id, scope):
        assert scope == "statistics"
        if site_id != SITE:
            raise FakeApiError(404, "domain not found")
        return FakeSite()

    common.authorize_site = authorize_site  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "trail.api.common", common)
    app = FakeApp()
    pirsch_stats.register(app, Ctx(site.data_dir))
    return app


def call(app: FakeApp, name: str, **params: str):
    return app.routes[f"/api/v1/statistics/{name}"]({k: [v] for k, v in params.items()})


def test_routes_and_shapes(app: FakeApp) -> None:
    assert {
        "/api/v1/statistics/total",
        "/api/v1/statistics/visitor",
        "/api/v1/statistics/page",
        "/api/v1/statistics/active",
    } <= set(app.routes)
    kind, status, body = call(app, "total", id=SITE, **{"from": "2024-03-10", "to": "2024-03-10"})
    assert (kind, status) == ("json", 200)
    # one visitor, one session of 2 views that did not bounce
    assert body["visitors"] == 1 and body["views"] == 2 and body["bounce_rate"] == 0.0
    _, _, pages = call(app, "page", id=SITE, **{"from": "2024-03-10", "to": "2024-03-10"})
    assert [p["path"] for p in pages] == ["/", "/a"]
    _, _, active = call(app, "active", id=SITE)
    assert set(active) == {"stats", "countries", "visitors"}
    day = {"id": SITE, "from": "2024-03-10", "to": "2024-03-10"}
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
        kind, status, body = call(app, name, **day)
        assert status == 200 and body is not None, name
    assert call(app, "os", **day)[2] == [{"visitors": 1, "relative_visitors": 1.0, "os": ""}]
    assert call(app, "duration/session", **day)[2][0]["average_time_spent_seconds"] == 9


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({}, 400, "id"),
        ({"id": SITE}, 400, "from"),
        ({"id": SITE, "from": "2024-03-10"}, 400, "to"),
        ({"id": SITE, "from": "2024-03-10", "to": "2024-03-10", "tz": "Nowhere/Land"}, 400, "tz"),
        ({"id": SITE, "from": "2024-03-10", "to": "2024-03-10", "scale": "hour"}, 400, "scale"),
        ({"id": "other", "from": "2024-03-10", "to": "2024-03-10"}, 404, None),
    ],
)
def test_errors(app: FakeApp, params, status, field) -> None:
    with pytest.raises(FakeApiError) as e:
        call(app, "visitor", **params)
    assert e.value.status == status
    if field:
        assert field in e.value.validation


def test_every_issue_3_route_is_registered(app: FakeApp) -> None:
    names = [
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
    assert {f"/api/v1/statistics/{n}" for n in names} | {"/api/v1/statistics"} == set(app.routes)
    day = {"id": SITE, "from": "2024-03-10", "to": "2024-03-10"}
    for name in ("hostname", "tags", "minutes", "duration/page", "events", "event/list",
                 "session/list", "options/page"):  # fmt: skip
        _, status, body = call(app, name, **day)
        assert status == 200 and isinstance(body, list), name
    assert call(app, "options/page", **day)[2] == ["/", "/a"]
    assert call(app, "session/list", **day)[2][0]["visitor_id"] == "1"


@pytest.mark.parametrize(
    ("name", "params", "status", "field"),
    [
        ("event/meta", {"event": "x"}, 400, "event_meta_key"),
        ("event/page", {}, 400, "event"),
        ("tag/details", {}, 400, "tag"),
        ("options/tag/value", {}, 400, "tag"),
        ("session/details", {"visitor_id": "1"}, 400, "session_id"),
        ("session/details", {"visitor_id": "x", "session_id": "1"}, 400, "visitor_id"),
        ("page", {"include_avg_time_on_page": "maybe"}, 400, "include_avg_time_on_page"),
        ("total", {"custom_metric_key": "amount"}, 400, "custom_metric_type"),
        ("total", {"pattern": "("}, 400, "pattern"),
        ("page", {"limit": "-1"}, 400, "limit"),
        ("page", {"offset": "x"}, 400, "offset"),
        ("page", {"direction": "up"}, 400, "direction"),
        ("page", {"from_time": "25:00"}, 400, "from_time"),
        ("platform", {"platform": "tablet"}, 400, "platform"),
        ("keywords", {}, 400, None),
    ],
)
def test_new_route_errors(app: FakeApp, name, params, status, field) -> None:
    with pytest.raises(FakeApiError) as e:
        call(app, name, id=SITE, **{"from": "2024-03-10", "to": "2024-03-10", **params})
    assert e.value.status == status
    if field:
        assert field in e.value.validation
    else:
        assert "Search Console" in e.value.message


def test_export_route(app: FakeApp) -> None:
    import io
    import zipfile

    params = {"id": [SITE], "from": ["2024-03-10"], "to": ["2024-03-10"], "pages": ["true"],
              "os": ["1"], "utm": ["false"]}  # fmt: skip
    r = app.routes["/api/v1/statistics"](params)
    assert r.status_code == 200
    body = r.description if isinstance(r.description, bytes) else bytes(r.description)
    assert sorted(zipfile.ZipFile(io.BytesIO(body)).namelist()) == ["os.csv", "pages.csv"]

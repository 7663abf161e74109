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

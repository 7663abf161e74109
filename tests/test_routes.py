"""The route tables: every URL registered once, found with one grep in its handler's module,
and the report paths in step with the reports the services know."""

from __future__ import annotations

import inspect
import sys
import threading

from trail import app
from trail.api import health
from trail.api.pirsch import statistics as pirsch_statistics
from trail.api.routing import Route, ThreadStates
from trail.api.tinytrail import reports as tinytrail_reports
from trail.services import statistics


def all_routes() -> list[Route]:
    tables = [health.routes, *app.PIRSCH, *app.TINYTRAIL, *app.DASHBOARD, app.fallback]
    return [route for table in tables for route in table.table]


def test_every_method_and_path_is_registered_once() -> None:
    seen: dict[tuple[str, str], str] = {}
    for route in all_routes():
        key = (route.method, route.path)
        assert key not in seen, f"{key} registered by {seen[key]} and {route.handler.__module__}"
        seen[key] = route.handler.__module__
    assert ("post", "/api/v1/hit") in seen and ("get", "/api/v1/hit") in seen
    assert len(seen) > 150


def test_the_path_of_every_route_is_written_out_in_its_handlers_module() -> None:
    for route in all_routes():
        source = inspect.getsource(sys.modules[route.handler.__module__])
        assert f'"{route.path}"' in source, (route.path, route.handler.__module__)


def test_handlers_live_in_the_api_packages() -> None:
    for route in all_routes():
        module = route.handler.__module__
        if route.path == "/*path":
            assert route.handler is app.no_route
            continue
        assert module.startswith("trail.api."), module
        assert module not in ("trail.api.routing", "trail.api.http"), module


def test_statistics_paths_are_the_reports_the_service_runs() -> None:
    paths = {p.removeprefix(pirsch_statistics.PREFIX) for p in pirsch_statistics.REPORT_PATHS}
    assert paths == set(statistics.REPORTS) | set(statistics.CONTEXT_REPORTS)
    assert len(paths) == len(pirsch_statistics.REPORT_PATHS)


def test_tinytrail_report_paths_are_the_reports() -> None:
    paths = {p.removeprefix(tinytrail_reports.PREFIX) for p in tinytrail_reports.REPORT_PATHS}
    assert paths == set(tinytrail_reports.REPORTS)


def test_thread_states_are_kept_once_per_thread_up_to_the_limit() -> None:
    states = ThreadStates(limit=2)
    alive = threading.Barrier(3)  # all three alive at once: three distinct idents

    def serve() -> None:  # what a bound route does on each request
        for _ in range(3):
            if threading.get_ident() not in states.kept:
                states.keep(threading.get_ident())
        alive.wait()

    threads = [threading.Thread(target=serve) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(states.kept) == 2

"""Pirsch conversion goals (`/api/v1/goal`, `/goal/regex`) and funnels (`/api/v1/funnel`).

Reads need the `statistics` scope on the domain, writes the `domains` scope with write access.
Definitions are validated here, once; the stores and reports trust them.
"""

from __future__ import annotations

import math
from typing import Any

from robyn import Response

from trail.api.http import json_object, json_response, query_params, query_value
from trail.api.pirsch.auth import authenticate, authorize_site, require_scope
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, FieldError
from trail.stats.filters import FilterError, parse_filter
from trail.stats.goals import step_params
from trail.storage.goals import GoalStore, glob_to_regex, goal_store

routes = Routes()

MAX_BODY = 64 << 10
MAX_NAME = 255
MAX_STEPS = 20
_OPTIONAL_STRINGS = ("event_name", "event_meta_key", "event_meta_value", "custom_metric_key")
# Request field -> stored field; 0 means "no target".
_TARGETS = {
    "visitors": "visitor_goal",
    "cr": "cr_goal",
    "custom_metric_total_goal": "custom_metric_total_goal",
    "custom_metric_avg_goal": "custom_metric_avg_goal",
}


def _store(ctx: Context) -> GoalStore:
    return goal_store(ctx.meta)


def _writer(ctx: Context, request: Any, domain_id: str) -> None:
    """404 unless the caller sees the domain; 403 unless it may change its settings."""
    authorize_site(ctx, request, domain_id, "domains")
    require_scope(authenticate(ctx, request), "domains", write=True)


def _string(body: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise FieldError(key, "required")
        return None
    if not isinstance(value, str):
        raise FieldError(key, "must be a string")
    if len(value) > 2000:
        raise FieldError(key, "too long")
    return value.strip()


def _domain_id(body: dict[str, Any]) -> str:
    return _string(body, "domain_id", required=True) or ""


# -- goals ----------------------------------------------------------------------------------


@routes.get("/api/v1/goal")
def list_goals(ctx: Context, request: Any) -> Response:
    params = query_params(request)
    domain_id = query_value(params, "id")
    if not domain_id:
        raise FieldError("id", "required")
    site = authorize_site(ctx, request, domain_id, "statistics")
    found = _store(ctx).list_goals(site.id)
    search = query_value(params, "search").lower()
    return json_response([g for g in found if search in g["name"].lower()])


def validate_goal(body: dict[str, Any]) -> dict[str, Any]:
    """The stored form of a create/update request; ApiError naming the first bad field."""
    name = _string(body, "name", required=True) or ""
    if len(name) > MAX_NAME:
        raise FieldError("name", f"at most {MAX_NAME} characters")
    goal: dict[str, Any] = {"name": name, "path_pattern": _string(body, "path_pattern")}
    goal["pattern"] = glob_to_regex(goal["path_pattern"]) if goal["path_pattern"] else None
    for key in _OPTIONAL_STRINGS:
        goal[key] = _string(body, key)
    goal["custom_metric_type"] = _string(body, "custom_metric_type")
    if goal["custom_metric_type"] not in (None, "integer", "float"):
        raise FieldError("custom_metric_type", "must be integer or float")
    if bool(goal["custom_metric_key"]) != bool(goal["custom_metric_type"]):
        raise FieldError(
            "custom_metric_type", "custom_metric_key and custom_metric_type go together"
        )
    if not goal["path_pattern"] and not goal["event_name"]:
        raise FieldError("path_pattern", "set a path pattern and/or an event name")
    if goal["event_meta_key"] and goal["event_meta_value"] is None:
        raise FieldError("event_meta_value", "required with event_meta_key")
    for request_key, stored in _TARGETS.items():
        goal[stored] = _target(body, request_key)
    for key in ("delete_reached", "email_reached"):
        value = body.get(key, False)
        if not isinstance(value, bool):
            raise FieldError(key, "must be true or false")
        goal[key] = value
    return goal


def _target(body: dict[str, Any], key: str) -> float | int | None:
    value = body.get(key)
    if value is None or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldError(key, "must be a number")
    if value < 0:
        raise FieldError(key, "must not be negative")
    return value


def _definition(
    ctx: Context, request: Any, validate: Any, id_required: bool = False
) -> dict[str, Any]:
    """The goal or funnel a write names: validated, its domain writable by the caller, with its
    `id` when it updates one."""
    body = json_object(request, MAX_BODY)
    domain_id = _domain_id(body)
    _writer(ctx, request, domain_id)
    definition = {**validate(body), "domain_id": domain_id}
    definition_id = _string(body, "id", required=id_required)
    if definition_id:
        definition["id"] = definition_id
    return definition


def save_goal(ctx: Context, request: Any, update: bool = False) -> Response:
    goal = _definition(ctx, request, validate_goal, id_required=update)
    try:
        return json_response(_store(ctx).save_goal(goal))
    except KeyError:
        raise ApiError(404, "goal not found") from None


@routes.delete("/api/v1/goal")
def delete_goal(ctx: Context, request: Any) -> Response:
    goal_id = query_value(query_params(request), "id")
    if not goal_id:
        raise FieldError("id", "required")
    goal = _store(ctx).get_goal(goal_id)
    if goal is None:
        authenticate(ctx, request)  # a bad credential is still a 401, not a 404
        raise ApiError(404, "goal not found")
    _writer(ctx, request, goal["domain_id"])
    _store(ctx).delete_goal(goal_id)
    return Response(200, {}, b"")


@routes.post("/api/v1/goal/regex")
def goal_regex(ctx: Context, request: Any) -> Response:
    """`{regex, sample}` -> `{match}` (is the regex valid, does it match); `{path_pattern}` ->
    `{regex}`: the regex a goal stores for that glob."""
    authenticate(ctx, request)
    body = json_object(request, MAX_BODY)
    glob = _string(body, "path_pattern")
    if glob is not None:
        return json_response({"regex": glob_to_regex(glob)})
    regex = _string(body, "regex", required=True) or ""
    sample = body.get("sample", "")
    if not isinstance(sample, str):
        raise FieldError("sample", "must be a string")
    import polars as pl  # the engine that runs goal patterns decides what is valid

    try:
        matched = bool(pl.select(pl.lit(sample).str.contains(regex)).item())
    except Exception:  # noqa: BLE001  polars raises ComputeError and friends for bad patterns
        raise FieldError("regex", "invalid regular expression") from None
    return json_response({"match": matched, "regex": regex})


# -- funnels --------------------------------------------------------------------------------


@routes.get("/api/v1/funnel")
def list_funnels(ctx: Context, request: Any) -> Response:
    params = query_params(request)
    domain_id = query_value(params, "id")
    if not domain_id:
        raise FieldError("id", "required")
    site = authorize_site(ctx, request, domain_id, "statistics")
    search = query_value(params, "search").lower()
    found = _store(ctx).list_funnels(site.id)
    return json_response([f for f in found if search in f["name"].lower()])


def validate_funnel(body: dict[str, Any]) -> dict[str, Any]:
    """{name, steps: [{name, filter}]} with at least two steps whose filters parse."""
    name = _string(body, "name", required=True) or ""
    if len(name) > MAX_NAME:
        raise FieldError("name", f"at most {MAX_NAME} characters")
    steps = body.get("steps")
    if not isinstance(steps, list) or not 2 <= len(steps) <= MAX_STEPS:
        raise FieldError("steps", f"a funnel needs 2 to {MAX_STEPS} steps")
    out = []
    for i, step in enumerate(steps):
        where = f"steps[{i}]"
        if not isinstance(step, dict):
            raise FieldError(where, "must be an object")
        step_name = step.get("name") or f"Step {i + 1}"
        if not isinstance(step_name, str) or len(step_name) > MAX_NAME:
            raise FieldError(f"{where}.name", "must be a string")
        step_filter = step.get("filter") or {}
        try:
            parse_filter({**step_params(step_filter), "from": ["2000-01-01"], "to": ["2000-01-01"]})
        except FilterError as e:
            raise FieldError(f"{where}.filter.{e.field}", e.problem) from None
        out.append({"name": step_name, "filter": step_filter})
    return {"name": name, "steps": out}


@routes.post("/api/v1/funnel")
def save_funnel(ctx: Context, request: Any) -> Response:
    funnel = _definition(ctx, request, validate_funnel)
    try:
        return json_response(_store(ctx).save_funnel(funnel))
    except KeyError:
        raise ApiError(404, "funnel not found") from None


@routes.delete("/api/v1/funnel")
def delete_funnel(ctx: Context, request: Any) -> Response:
    funnel_id = query_value(query_params(request), "id")
    if not funnel_id:
        raise FieldError("id", "required")
    funnel = _store(ctx).get_funnel(funnel_id)
    if funnel is None:
        authenticate(ctx, request)
        raise ApiError(404, "funnel not found")
    _writer(ctx, request, funnel["domain_id"])
    _store(ctx).delete_funnel(funnel_id)
    return Response(200, {}, b"")


@routes.post("/api/v1/goal")
def create_goal(ctx: Context, request: Any) -> Response:
    return save_goal(ctx, request)


@routes.put("/api/v1/goal")
def update_goal(ctx: Context, request: Any) -> Response:
    return save_goal(ctx, request, update=True)

"""Pirsch domain settings: identification code, hostname, subdomain, toggles, time zone,
metadata, settings and custom domain (`/api/v1/domain/...`)."""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.common import ApiError, handler, json_response, query_params, query_value
from trail.api.pirsch_manage import HOSTNAME_RE, SUBDOMAIN_RE, _valid_timezone
from trail.api.resources import body_object, caller, invalid, site_in_body, string_field
from trail.context import Context
from trail.storage.meta import Site, random_alnum

TOGGLES = {"public": "public", "scripts": "disable_scripts", "title": "group_by_title"}
# Settings trail itself reads; anything else in `settings` is kept for the caller's UI.
BOOL_SETTINGS = ("allow_any_hostname",)
MAX_SETTINGS_BYTES = 64 * 1024


def register(app: Any, ctx: Context) -> None:
    app.put("/api/v1/domain")(handler(lambda request: reset_identification_code(ctx, request)))
    for path, attr in TOGGLES.items():
        app.post(f"/api/v1/domain/{path}")(handler(_toggle(ctx, attr)))
    for path, fn in FIELD_UPDATES.items():
        app.post(f"/api/v1/domain/{path}")(handler(_updater(ctx, fn)))
    app.get("/api/v1/domain/custom")(handler(lambda request: custom_domain_exists(ctx, request)))


def _site(ctx: Context, request: Any) -> tuple[Site, dict[str, Any]]:
    caller(ctx, request)
    body = body_object(ctx, request)
    return site_in_body(ctx, request, body), body


def reset_identification_code(ctx: Context, request: Any) -> Response:
    caller(ctx, request)
    body = body_object(ctx, request)
    site = site_in_body(ctx, request, body, field="id")
    updated = ctx.meta.update_site(site.id, {"identification_code": random_alnum(32)})
    return json_response({"identification_code": updated.identification_code if updated else ""})


def _toggle(ctx: Context, attr: str) -> Any:
    def toggle(request: Any) -> Response:
        site, _ = _site(ctx, request)
        return _saved(ctx, site, {attr: not getattr(site, attr)})

    toggle.__name__ = f"toggle_{attr}"
    return toggle


def _updater(ctx: Context, parse: Any) -> Any:
    def update(request: Any) -> Response:
        site, body = _site(ctx, request)
        errors: dict[str, str] = {}
        fields = parse(site, body, errors)
        invalid(errors, "domain")
        return _saved(ctx, site, fields)

    update.__name__ = f"update_{parse.__name__}"
    return update


def _saved(ctx: Context, site: Site, fields: dict[str, Any]) -> Response:
    try:
        updated = ctx.meta.update_site(site.id, fields)
    except KeyError as e:
        name = str(e.args[0])
        raise ApiError(
            400,
            f"{name} already in use",
            {"hostname" if name == "custom_domain" else name: "already in use"},
        ) from None
    if updated is None:
        raise ApiError(404, "domain not found")
    return json_response(updated.to_pirsch())


# -- field parsers: (site, body, errors) -> the fields to store ---------------------------------


def hostname(site: Site, body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    value = string_field(body, "hostname", errors, max_len=253).lower().rstrip(".")
    if value and not HOSTNAME_RE.match(value):
        errors["hostname"] = "must be a host name like example.com (no scheme, port or path)"
    return {"hostname": value}


def subdomain(site: Site, body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    value = string_field(body, "subdomain", errors, max_len=63).lower()
    if value and not SUBDOMAIN_RE.match(value):
        errors["subdomain"] = "must be 1-63 letters, digits or hyphens"
    return {"subdomain": value}


def active(site: Site, body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    seconds = body.get("time")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 60 <= seconds <= 86400:
        errors["time"] = "must be a number of seconds between 60 and 86400"
    return {"active_visitors_seconds": seconds}


def timezone(site: Site, body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    value = string_field(body, "timezone", errors, max_len=64)
    if value and not _valid_timezone(value):
        errors["timezone"] = f"unknown time zone {value!r}"
    return {"timezone": value}


def metadata(site: Site, body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    value = body.get("metadata")
    if not isinstance(value, dict):
        errors["metadata"] = "must be a JSON object"
    return {"metadata": value}


def settings(site: Site, body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """Merge `settings` into the site's; known keys are type-checked."""
    value = body.get("settings")
    if not isinstance(value, dict):
        errors["settings"] = "must be a JSON object"
        return {}
    for key in BOOL_SETTINGS:
        if key in value and not isinstance(value[key], bool):
            errors[f"settings.{key}"] = "must be true or false"
    if len(repr(value)) > MAX_SETTINGS_BYTES:
        errors["settings"] = f"larger than {MAX_SETTINGS_BYTES} bytes"
    return {"settings": {**site.settings, **value}}


def custom(site: Site, body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """Set (or with an empty hostname clear) the custom domain; one dashboard per custom domain."""
    value = string_field(body, "hostname", errors, required=False, max_len=253).lower().rstrip(".")
    if value and not HOSTNAME_RE.match(value):
        errors["hostname"] = "must be a host name like stats.example.com"
    return {"custom_domain": value or None}


FIELD_UPDATES = {
    "hostname": hostname,
    "subdomain": subdomain,
    "active": active,
    "timezone": timezone,
    "metadata": metadata,
    "settings": settings,
    "custom": custom,
}


def custom_domain_exists(ctx: Context, request: Any) -> Response:
    """Whether a custom domain is taken (by any dashboard: it must be unique)."""
    caller(ctx, request)
    host = query_value(query_params(request), "domain").lower().rstrip(".")
    if not host:
        raise ApiError(400, "domain is required", {"domain": "required"})
    return json_response(any(s.custom_domain == host for s in ctx.meta.all_sites()))

"""Pirsch domain settings (`POST /api/v1/domain/<setting>`): the public/scripts/title toggles,
hostname, subdomain, active-visitor window, time zone, metadata, settings and custom domain.

Each answers the changed domain object; a bad value is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.http import body_object, json_response, query_params, query_value, string_field
from trail.api.pirsch.auth import caller, site_in_body
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, FieldError, check_fields
from trail.services.sites import domain_record
from trail.storage.meta import Site
from trail.validation import (
    HOSTNAME_MAX,
    HOSTNAME_PROBLEM,
    SUBDOMAIN_PROBLEM,
    is_hostname,
    is_subdomain,
    is_timezone,
    normal_hostname,
)

routes = Routes()
# Settings trail itself reads; anything else in `settings` is kept for the caller's UI.
BOOL_SETTINGS = ("allow_any_hostname",)
MAX_SETTINGS_BYTES = 64 * 1024


def _site(ctx: Context, request: Any) -> tuple[Site, dict[str, Any]]:
    caller(ctx, request)
    body = body_object(ctx, request)
    return site_in_body(ctx, request, body), body


def _save(ctx: Context, site: Site, fields: dict[str, Any]) -> Response:
    try:
        updated = ctx.meta.update_site(site.id, fields)
    except KeyError as e:
        name = str(e.args[0])
        raise FieldError(
            "hostname" if name == "custom_domain" else name, "already in use"
        ) from None
    if updated is None:
        raise ApiError(404, "domain not found")
    return json_response(domain_record(ctx, updated))


def _toggle(ctx: Context, request: Any, attr: str) -> Response:
    site, _ = _site(ctx, request)
    return _save(ctx, site, {attr: not getattr(site, attr)})


def _update(ctx: Context, request: Any, parse: Any) -> Response:
    site, body = _site(ctx, request)
    errors: dict[str, str] = {}
    fields = parse(site, body, errors)
    check_fields(errors, "domain")
    return _save(ctx, site, fields)


@routes.post("/api/v1/domain/public")
def toggle_public(ctx: Context, request: Any) -> Response:
    return _toggle(ctx, request, "public")


@routes.post("/api/v1/domain/scripts")
def toggle_scripts(ctx: Context, request: Any) -> Response:
    return _toggle(ctx, request, "disable_scripts")


@routes.post("/api/v1/domain/title")
def toggle_title(ctx: Context, request: Any) -> Response:
    return _toggle(ctx, request, "group_by_title")


@routes.post("/api/v1/domain/hostname")
def update_hostname(ctx: Context, request: Any) -> Response:
    return _update(ctx, request, hostname)


@routes.post("/api/v1/domain/subdomain")
def update_subdomain(ctx: Context, request: Any) -> Response:
    return _update(ctx, request, subdomain)


@routes.post("/api/v1/domain/active")
def update_active(ctx: Context, request: Any) -> Response:
    return _update(ctx, request, active)


@routes.post("/api/v1/domain/timezone")
def update_timezone(ctx: Context, request: Any) -> Response:
    return _update(ctx, request, timezone)


@routes.post("/api/v1/domain/metadata")
def update_metadata(ctx: Context, request: Any) -> Response:
    return _update(ctx, request, metadata)


@routes.post("/api/v1/domain/settings")
def update_settings(ctx: Context, request: Any) -> Response:
    return _update(ctx, request, settings)


@routes.post("/api/v1/domain/custom")
def update_custom_domain(ctx: Context, request: Any) -> Response:
    return _update(ctx, request, custom)


@routes.get("/api/v1/domain/custom")
def custom_domain_exists(ctx: Context, request: Any) -> Response:
    """Whether a custom domain is taken (by any dashboard: it must be unique)."""
    caller(ctx, request)
    host = normal_hostname(query_value(query_params(request), "domain"))
    if not host:
        raise FieldError("domain", "required")
    return json_response(any(s.custom_domain == host for s in ctx.meta.all_sites()))


# -- field parsers: (site, body, errors) -> the fields to store ---------------------------------


def hostname(site: Site, body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    value = normal_hostname(string_field(body, "hostname", errors, max_len=HOSTNAME_MAX))
    if value and not is_hostname(value):
        errors["hostname"] = HOSTNAME_PROBLEM
    return {"hostname": value}


def subdomain(site: Site, body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    value = string_field(body, "subdomain", errors, max_len=63).lower()
    if value and not is_subdomain(value):
        errors["subdomain"] = SUBDOMAIN_PROBLEM
    return {"subdomain": value}


def active(site: Site, body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    seconds = body.get("time")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 60 <= seconds <= 86400:
        errors["time"] = "must be a number of seconds between 60 and 86400"
    return {"active_visitors_seconds": seconds}


def timezone(site: Site, body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    value = string_field(body, "timezone", errors, max_len=64)
    if value and not is_timezone(value):
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
    value = dict(value)
    for key in (k for k in BOOL_SETTINGS if k in value):
        # The domain object lists settings as strings ("true"), the way the SDKs decode them:
        # a client that sends back what it read must be understood.
        flag = value[key] == "true" if value[key] in ("true", "false") else value[key]
        if isinstance(flag, bool):
            value[key] = flag
        else:
            errors[f"settings.{key}"] = "must be true or false"
    if len(repr(value)) > MAX_SETTINGS_BYTES:
        errors["settings"] = f"larger than {MAX_SETTINGS_BYTES} bytes"
    return {"settings": {**site.settings, **value}}


def custom(site: Site, body: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """Set (or with an empty hostname clear) the custom domain; one dashboard per custom domain."""
    value = string_field(body, "hostname", errors, required=False, max_len=HOSTNAME_MAX)
    value = normal_hostname(value)
    if value and not is_hostname(value):
        errors["hostname"] = "must be a host name like stats.example.com"
    return {"custom_domain": value or None}

"""Pirsch themes (`/api/v1/theme...`, `/api/v1/domain/theme`): dashboard look settings.

A theme belongs to a user, an organization or a site. Requests are JSON or multipart form data
(field `data` = the JSON, files logo_light / logo_dark / favicon); files are stored under
<data_dir>/themes/<owner>/<name> and served by GET /api/v1/theme/file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
from robyn import Response

from trail.api.http import (
    body_object,
    empty,
    json_response,
    query_params,
    query_value,
    string_field,
)
from trail.api.pirsch.auth import authorize_site, caller, site_in_body
from trail.api.pirsch.member import organization
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, check_fields
from trail.services.sites import domain_record
from trail.storage.documents import Records, records
from trail.storage.meta import Principal, Site

routes = Routes()

FILES = ("logo_light", "logo_dark", "favicon")
MAX_FILE_BYTES = 1 << 20
MAX_SETTINGS_BYTES = 64 * 1024
# What a stored file may be: sniffed from its first bytes, never taken from the client.
SIGNATURES = {
    b"\x89PNG": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF8": "image/gif",
    b"RIFF": "image/webp",
    b"\x00\x00\x01\x00": "image/x-icon",
}


# -- request parsing ---------------------------------------------------------------------------


def form(ctx: Context, request: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(the JSON data, the uploaded files) of a multipart or JSON request.

    Robyn 0.88 parses multipart bodies itself and keys uploaded files by their *file name*
    (the form field name is lost), so a file is recognised by its file name's stem:
    logo_light.png, logo_dark.svg... or favicon.ico."""
    content_type = request.headers.get("content-type") or ""
    if not content_type.lower().startswith("multipart/form-data"):
        return body_object(ctx, request), {}
    raw = (getattr(request, "form_data", None) or {}).get("data") or "{}"
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(
            400, "the data field is not valid JSON", {"data": "must be a JSON object"}
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            400, "the data field is not a JSON object", {"data": "must be a JSON object"}
        )
    files: dict[str, bytes] = {}
    errors: dict[str, str] = {}
    for filename, content in (getattr(request, "files", None) or {}).items():
        stem = Path(str(filename)).stem
        if stem not in FILES:
            errors[str(filename)] = "name the file logo_light.*, logo_dark.* or favicon.*"
        elif len(content) > MAX_FILE_BYTES:
            errors[stem] = f"larger than {MAX_FILE_BYTES} bytes"
        elif _mime(bytes(content)) is None:
            errors[stem] = "must be a PNG, JPEG, GIF, WebP or ICO image"
        else:
            files[stem] = bytes(content)
    check_fields(errors, "theme files")
    return data, files


def _mime(content: bytes) -> str | None:
    return next((m for sig, m in SIGNATURES.items() if content.startswith(sig)), None)


def _settings(data: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    value = data.get("settings", {})
    if value is None:
        return {}
    if not isinstance(value, dict) or len(orjson.dumps(value)) > MAX_SETTINGS_BYTES:
        errors["settings"] = f"must be a JSON object of at most {MAX_SETTINGS_BYTES} bytes"
        return {}
    return value


def _store_files(
    ctx: Context, owner: str, files: dict[str, bytes], settings: dict[str, Any], query: str
) -> None:
    folder = Path(ctx.data_dir) / "themes" / owner
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(content)
        tmp.replace(folder / name)
        settings[name] = f"/api/v1/theme/file?{query}&file={name}"


# -- access ------------------------------------------------------------------------------------


def theme_access(
    ctx: Context, request: Any, principal: Principal, rec: dict[str, Any] | None, role: str
) -> dict[str, Any]:
    """`rec` if the caller holds `role` on its owner (user, organization or site); 404 otherwise."""
    if rec is None:
        raise ApiError(404, "theme not found")
    try:
        if rec.get("organization_id"):
            organization(ctx, request, rec["organization_id"], role)
        elif rec.get("domain_id"):
            authorize_site(ctx, request, rec["domain_id"], "themes", role=role)
        elif (
            principal.user is None
            or principal.domain_id is not None
            or rec.get("user_id") != principal.user.id
        ):
            raise ApiError(404, "theme not found")
    except ApiError as e:
        raise ApiError(404, "theme not found") if e.status == 404 else e from None
    return rec


@routes.get("/api/v1/theme")
def list_themes(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, "themes")
    principal = caller(ctx, request, "themes")
    params = query_params(request)
    org_id = query_value(params, "organization_id")
    if org_id:
        return json_response(
            store.find(organization_id=organization(ctx, request, org_id, "Viewer").id)
        )
    host = query_value(params, "domain").lower() or None
    sub = query_value(params, "subdomain").lower() or None
    if host or sub:
        sites = [
            s
            for s in ctx.meta.list_sites_for(principal)
            if s.subdomain == sub or host in (s.hostname, s.custom_domain)
        ]
        ids = {s.theme_id for s in sites if s.theme_id}
        return json_response([t for t in (store.get(i) for i in ids) if t])
    if principal.user is None or principal.domain_id is not None:
        return json_response([])
    themes = store.find(user_id=principal.user.id, organization_id=None, domain_id=None)
    if query_value(params, "include_organizations").lower() == "true":
        orgs = {a.id for a in ctx.meta.all_accounts() if a.organization and principal.org_role(a)}
        themes += [t for t in store.find() if t.get("organization_id") in orgs]
    return json_response(themes)


@routes.post("/api/v1/theme")
def save_theme(ctx: Context, request: Any) -> Response:
    """Create (no id), update (id) or copy (copy_id) a theme."""
    store = records(ctx.meta, "themes")
    principal = caller(ctx, request, "themes")
    data, files = form(ctx, request)
    errors: dict[str, str] = {}
    name = string_field(data, "name", errors, max_len=100)
    settings = _settings(data, errors)
    check_fields(errors, "theme")
    if data.get("id"):
        rec = theme_access(ctx, request, principal, store.get(str(data["id"])), "Admin")
    else:
        owner = _new_owner(ctx, request, principal, data)
        if data.get("copy_id"):
            source = theme_access(
                ctx, request, principal, store.get(str(data["copy_id"])), "Viewer"
            )
            settings = {**source.get("settings", {}), **settings}
        rec = store.create({**owner, "name": name, "settings": {}, "is_default": False})
    merged = {**rec.get("settings", {}), **settings}
    _store_files(ctx, rec["id"], files, merged, f"theme_id={rec['id']}")
    return json_response(store.merge(rec["id"], {"name": name, "settings": merged}))


def _new_owner(
    ctx: Context, request: Any, principal: Principal, data: dict[str, Any]
) -> dict[str, Any]:
    owner: dict[str, Any] = {"user_id": None, "organization_id": None, "domain_id": None}
    if data.get("organization_id"):
        owner["organization_id"] = organization(
            ctx, request, str(data["organization_id"]), "Admin"
        ).id
    elif data.get("domain_id"):
        owner["domain_id"] = authorize_site(
            ctx, request, str(data["domain_id"]), "themes", write=True
        ).id
    elif principal.user is None or principal.domain_id is not None:
        raise ApiError(403, "a domain client can only create themes for its domain (set domain_id)")
    else:
        owner["user_id"] = principal.user.id
    return owner


@routes.delete("/api/v1/theme")
def delete_theme(ctx: Context, request: Any) -> Response:
    """Delete a theme; `keep_settings=true` copies its settings into the sites that used it."""
    store = records(ctx.meta, "themes")
    principal = caller(ctx, request, "themes")
    params = query_params(request)
    rec = theme_access(ctx, request, principal, store.get(query_value(params, "id")), "Admin")
    keep = query_value(params, "keep_settings").lower() == "true"
    for site in ctx.meta.all_sites():
        if site.theme_id == rec["id"]:
            merged = (
                {**rec.get("settings", {}), **site.theme_settings} if keep else site.theme_settings
            )
            ctx.meta.update_site(site.id, {"theme_id": None, "theme_settings": merged})
    if not keep:
        shutil.rmtree(Path(ctx.data_dir) / "themes" / rec["id"], ignore_errors=True)
    store.delete(rec["id"])
    return empty()


def _file_target(
    ctx: Context, store: Records, request: Any, role: str
) -> tuple[str, str, Site | None, dict[str, Any] | None]:
    """(folder owner, file name, site, theme) named by theme_id or domain_id and file."""
    principal = caller(ctx, request, "themes")
    params = query_params(request)
    name = query_value(params, "file")
    if name not in FILES:
        raise ApiError(
            400, "file must be logo_light, logo_dark or favicon", {"file": "unknown file"}
        )
    domain_id = query_value(params, "domain_id")
    if domain_id:
        site = authorize_site(ctx, request, domain_id, "themes", role=role)
        return f"domain-{site.id}", name, site, None
    rec = theme_access(ctx, request, principal, store.get(query_value(params, "theme_id")), role)
    return rec["id"], name, None, rec


@routes.get("/api/v1/theme/file")
def get_file(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, "themes")
    owner, name, _, _ = _file_target(ctx, store, request, "Viewer")
    path = Path(ctx.data_dir) / "themes" / owner / name
    if not path.is_file():
        raise ApiError(404, "file not found")
    content = path.read_bytes()
    return Response(200, {"content-type": _mime(content) or "application/octet-stream"}, content)


@routes.delete("/api/v1/theme/file")
def delete_file(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, "themes")
    owner, name, site, rec = _file_target(ctx, store, request, "Admin")
    (Path(ctx.data_dir) / "themes" / owner / name).unlink(missing_ok=True)
    if site is not None:
        ctx.meta.update_site(
            site.id, {"theme_settings": {k: v for k, v in site.theme_settings.items() if k != name}}
        )
    elif rec is not None:
        store.merge(
            rec["id"], {"settings": {k: v for k, v in rec.get("settings", {}).items() if k != name}}
        )
    return empty()


@routes.put("/api/v1/domain/theme")
def set_base_theme(ctx: Context, request: Any) -> Response:
    store = records(ctx.meta, "themes")
    principal = caller(ctx, request, "themes")
    body = body_object(ctx, request)
    site = site_in_body(ctx, request, body, scope="themes")
    theme_id = body.get("theme_id") or None
    settings: dict[str, Any] = {}
    if theme_id is not None:
        settings = theme_access(ctx, request, principal, store.get(str(theme_id)), "Viewer").get(
            "settings", {}
        )
    ctx.meta.update_site(site.id, {"theme_id": theme_id})
    return json_response(settings)


@routes.post("/api/v1/domain/theme")
def save_domain_theme(ctx: Context, request: Any) -> Response:
    caller(ctx, request, "themes")
    data, files = form(ctx, request)
    site = site_in_body(ctx, request, data, scope="themes")
    errors: dict[str, str] = {}
    settings = {**site.theme_settings, **_settings(data, errors)}
    check_fields(errors, "theme")
    _store_files(ctx, f"domain-{site.id}", files, settings, f"domain_id={site.id}")
    updated = ctx.meta.update_site(site.id, {"theme_settings": settings})
    return json_response(domain_record(ctx, updated) if updated else {})

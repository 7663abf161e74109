"""Importing statistics from Plausible and Fathom: `POST /api/v1/import/plausible`, `POST
/api/v1/import/fathom` (multipart: `domain` = the domain id, `file` = the export zip), `GET
/api/v1/import?domain_id=` and `DELETE /api/v1/import?domain_id=` (trail.services.imports).

The request checks the whole archive and queues a job; the maintenance process runs it. A bad
archive answers 400 naming `file` with the file, line and column at fault, and nothing is kept.
Robyn parses multipart bodies itself and hands over the text fields by name but the files by
their file names only (the raw body is gone), so the upload must carry exactly one file, at most
trail.importers.archive.MAX_UPLOAD_BYTES long.

Callers need the `domains` scope and, as for the domain's other settings, the Admin role to
import or cancel; a Viewer may read the jobs. GET answers the newest job of the domain (Pirsch answers one job), with every job under `jobs`;
404 when there is none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trail.api.http import empty, json_response, query_params, query_value
from trail.api.pirsch.auth import authenticate, authorize_site
from trail.api.routing import Routes
from trail.errors import ApiError, FieldError
from trail.importers.archive import MAX_UPLOAD_BYTES
from trail.services import imports

if TYPE_CHECKING:
    from robyn import Response

    from trail.context import Context
    from trail.storage.models import Site

routes = Routes()


@routes.route("post", "/api/v1/import/plausible", offload=True)
def import_plausible(ctx: Context, request: Any) -> Response:
    return _queue(ctx, request, "plausible")


@routes.route("post", "/api/v1/import/fathom", offload=True)
def import_fathom(ctx: Context, request: Any) -> Response:
    return _queue(ctx, request, "fathom")


def _queue(ctx: Context, request: Any, kind: str) -> Response:
    authenticate(ctx, request)  # 401 before any look at the body
    if not (request.headers.get("content-type") or "").startswith("multipart/form-data"):
        raise FieldError("body", "expected multipart/form-data with the fields domain and file")
    site = _site(ctx, request, _text(request.form_data, "domain", "domain_id"))
    files = list((request.files or {}).items())
    if not files or not files[0][1]:
        raise FieldError("file", "required: the export's zip file")
    if len(files) > 1:
        raise FieldError("file", f"expected one file, got {len(files)}")
    data = files[0][1]
    if len(data) > MAX_UPLOAD_BYTES:
        raise FieldError("file", f"larger than {MAX_UPLOAD_BYTES} bytes")
    upload = imports.upload_file(ctx.data_dir)
    try:
        upload.write_bytes(bytes(data))
        job = imports.queue(ctx.meta, ctx.data_dir, site.id, kind, upload)
    finally:
        upload.unlink(missing_ok=True)
    return json_response(imports.public(job))


def _text(form: dict[str, str] | None, *names: str) -> str | None:
    for name in names:
        value = (form or {}).get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _site(ctx: Context, request: Any, domain_id: str | None) -> Site:
    site_id = (domain_id or "").strip()
    if not site_id:
        raise FieldError("domain", "required: the domain id")
    return authorize_site(ctx, request, site_id, "domains", write=True, role="Admin")


@routes.get("/api/v1/import")
def get_import(ctx: Context, request: Any) -> Response:
    site = _site_in_query(ctx, request)
    jobs = [imports.public(j) for j in imports.jobs_of(ctx.meta, site.id)]
    if not jobs:
        raise ApiError(404, "no import job for this domain")
    return json_response({**jobs[0], "jobs": jobs})


@routes.delete("/api/v1/import")
def delete_import(ctx: Context, request: Any) -> Response:
    site = _site_in_query(ctx, request)
    imports.cancel(ctx.meta, ctx.data_dir, site.id)
    return empty()


def _site_in_query(ctx: Context, request: Any) -> Site:
    site_id = query_value(query_params(request), "domain_id")
    if not site_id:
        authenticate(ctx, request)
        raise FieldError("domain_id", "required: the domain id")
    return authorize_site(ctx, request, site_id, "domains")

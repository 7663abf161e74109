"""`GET /api/v1/export?id=<domain id>&from=YYYY-MM-DD&to=YYYY-MM-DD&format=parquet|csv`: a
site's raw rows as a zip of the files `trail export` writes (trail.export, docs/export.md).

Reading needs credentials with the `statistics` scope and at least the Viewer role on the site,
as the statistics do; unlike them, neither a public domain nor an access link opens it (those
show reports, not every row). The zip is built in memory; its files and the zip may each be at
most trail.export.MAX_API_BYTES (100 MiB, `TRAIL_EXPORT_MAX_BYTES`), a larger export answers
413 naming the limit.
"""

from __future__ import annotations

from typing import Any

from robyn import Response

from trail.api.http import query_params, query_value
from trail.api.pirsch.auth import authenticate, require_role, require_scope
from trail.api.routing import Routes
from trail.context import Context
from trail.errors import ApiError, FieldError

routes = Routes()


@routes.get("/api/v1/export", offload=True)
def get_export(ctx: Context, request: Any) -> Response:
    # pyarrow, which the export writes with, costs a worker ~35 MiB RSS: only an export loads it.
    from trail import export

    params = query_params(request)
    site_id = query_value(params, "id")
    if not site_id:
        raise FieldError("id", "required")
    principal = authenticate(ctx, request)
    site = ctx.meta.get_site(site_id)
    role = principal.site_role(site) if site is not None else None
    if site is None or role is None:
        raise ApiError(404, "domain not found")
    require_scope(principal, "statistics")
    require_role(role, "Viewer")
    fmt = query_value(params, "format").lower() or "parquet"
    if fmt not in export.FORMATS:
        raise FieldError("format", "parquet or csv")
    info = export.SiteInfo.of(site)
    try:
        first = export.parse_date("from", query_value(params, "from"))
        last = export.parse_date("to", query_value(params, "to"))
        data, _ = export.export_zip(ctx.data_dir, info, first, last, fmt)
    except export.TooLarge as e:
        raise ApiError(413, e.problem) from None
    except export.ExportError as e:
        raise FieldError(e.field or "id", e.problem) from None
    name = export.zip_name(info, first, last)
    headers = {
        "content-type": "application/zip",
        "content-disposition": f'attachment; filename="{name}"',
    }
    return Response(200, headers, data)

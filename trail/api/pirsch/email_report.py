"""Pirsch email report settings (`/api/v1/report`): who gets a summary of a domain, how often.

Sending is the maintenance process's job (trail.services.email_reports); these routes only
store the settings.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING, Any

from trail.api.http import body_object, json_response, text_field
from trail.api.pirsch.auth import delete_record, record_in_reach, site_for, site_from_query
from trail.api.routing import Routes
from trail.errors import check_fields
from trail.services.email_reports import REPORTS, first_report, rfc3339
from trail.storage.documents import records

routes = Routes()

if TYPE_CHECKING:
    from robyn import Response

    from trail.context import Context

EMAIL_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
LINK_TO = ("", "dashboard", "public", "custom")
MAX_INTERVAL_WEEKS = 52
MAX_RECIPIENTS = 50


# -- email reports ----------------------------------------------------------------------------


@routes.get("/api/v1/report")
def list_reports(ctx: Context, request: Any) -> Response:
    site = site_from_query(ctx, request, "id")
    return json_response([public(r) for r in records(ctx.meta, REPORTS).find(domain_id=site.id)])


@routes.post("/api/v1/report")
def create_reports(ctx: Context, request: Any) -> Response:
    """One report per recipient in `emails`; answers the list of created reports."""
    body = body_object(ctx, request)
    errors: dict[str, str] = {}
    emails = body.get("emails")
    if not isinstance(emails, list) or not emails or len(emails) > MAX_RECIPIENTS:
        errors["emails"] = f"must be a list of 1 to {MAX_RECIPIENTS} email addresses"
        emails = []
    bad = [e for e in emails if not isinstance(e, str) or not EMAIL_RE.match(e.strip())]
    if bad:
        errors["emails"] = f"not an email address: {bad[0]!r}"
    settings = _settings(body, errors, require_interval=True)
    reply_to = text_field(body, "reply_to", errors, max_len=320)
    if reply_to and not EMAIL_RE.match(reply_to):
        errors["reply_to"] = "not an email address"
    start = _start_date(body, errors)
    site = site_for(ctx, request, body.get("domain_id"))
    check_fields(errors, "email report")
    due = rfc3339(first_report(site.timezone or "UTC", settings["interval"], start))
    store = records(ctx.meta, REPORTS)
    created = [
        store.create(
            {
                "domain_id": site.id,
                "email": email.strip(),
                **settings,
                "reply_to": reply_to,
                "next_report": due,
            }
        )
        for email in dict.fromkeys(e.strip() for e in emails)
    ]
    return json_response([public(r) for r in created])


@routes.put("/api/v1/report")
def update_report(ctx: Context, request: Any) -> Response:
    body = body_object(ctx, request)
    store = records(ctx.meta, REPORTS)
    record, site = record_in_reach(ctx, request, store, body.get("id"), "report")
    errors: dict[str, str] = {}
    settings = _settings(body, errors, require_interval=False)
    check_fields(errors, "email report")
    changes: dict[str, Any] = {**settings}
    if settings.get("interval", record["interval"]) != record["interval"]:
        changes["next_report"] = rfc3339(first_report(site.timezone or "UTC", settings["interval"]))
    updated = store.merge(record["id"], changes)
    return json_response(public(updated or record))


def _settings(
    body: dict[str, Any], errors: dict[str, str], require_interval: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    interval = body.get("interval")
    if interval is not None or require_interval:
        if (
            not isinstance(interval, int)
            or isinstance(interval, bool)
            or not 0 <= interval <= MAX_INTERVAL_WEEKS
        ):
            errors["interval"] = (
                f"must be 0 (daily) or a number of weeks up to {MAX_INTERVAL_WEEKS}"
            )
        else:
            out["interval"] = interval
    if "link_to" in body:
        if body["link_to"] not in LINK_TO:
            errors["link_to"] = "must be dashboard, public or custom"
        else:
            out["link_to"] = body["link_to"] or "dashboard"
    elif require_interval:
        out["link_to"] = "dashboard"
    return out


def _start_date(body: dict[str, Any], errors: dict[str, str]) -> date | None:
    value = body.get("start_date")
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        errors["start_date"] = "must be a date YYYY-MM-DD"
        return None


def public(record: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "def_time",
        "mod_time",
        "domain_id",
        "email",
        "interval",
        "link_to",
        "reply_to",
        "next_report",
    )
    # Pirsch's OpenAPI file has reply_to as an email address: left out when there is none.
    return {k: record.get(k) for k in keys if k != "reply_to" or record.get(k)}


@routes.delete("/api/v1/report")
def delete_report(ctx: Context, request: Any) -> Response:
    return delete_record(ctx, request, records(ctx.meta, REPORTS), "report")

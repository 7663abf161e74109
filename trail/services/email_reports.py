"""Email reports: a summary of the last period, sent on each report's interval by maintenance.

A report record is one recipient: {id, domain_id, email, interval, link_to, reply_to,
next_report}. `interval` 0 = daily, n = every n weeks. `next_report` is a local midnight of the
site's time zone (RFC3339 UTC); the report sent then covers the local days before it. The numbers
come from the statistics report functions (trail.stats.reports), never recomputed here.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from trail.services import mail
from trail.storage.documents import Record, records

if TYPE_CHECKING:
    from trail.config import Config
    from trail.storage.meta import MetaStore, Site

log = logging.getLogger("trail.email_reports")

REPORTS = "email_reports"
TOP = 5


def period_days(interval: int) -> int:
    return 1 if interval == 0 else 7 * interval


def local_midnight(day: date, tz: str) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(tz)).astimezone(UTC)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(value: str) -> datetime:
    return datetime.fromisoformat(value)


def first_report(
    tz: str, interval: int, start_date: date | None = None, now: datetime | None = None
) -> datetime:
    """When a new report is first sent: `start_date`, else the next local midnight (a Monday
    for weekly reports)."""
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()
    day = start_date or today + timedelta(days=1)
    if start_date is None and interval > 0:
        day += timedelta(days=(7 - day.weekday()) % 7)
    return local_midnight(day, tz)


def send_due(meta: MetaStore, config: Config, now: datetime | None = None) -> int:
    """Send every report whose time has come; returns how many were sent. A report whose mail
    fails stays due and is tried again next round."""
    now = now or datetime.now(UTC)
    store = records(meta, REPORTS)
    sent = 0
    for report in store.find():
        due = parse_rfc3339(report["next_report"])
        if due > now:
            continue
        site = meta.get_site(report["domain_id"])
        if site is None:
            continue
        try:
            send_report(config, site, report, due)
        except mail.MailError as e:
            log.warning("email report %s not sent: %s", report["id"], e)
            continue
        following = next_after(due, site.timezone, int(report["interval"]), now)
        store.merge(report["id"], {"next_report": rfc3339(following)}, touch=False)
        sent += 1
    return sent


def next_after(due: datetime, tz: str, interval: int, now: datetime) -> datetime:
    """The first report time after `now` on the report's schedule (missed ones are skipped)."""
    step = period_days(interval)
    day = due.astimezone(ZoneInfo(tz)).date()
    while True:
        day += timedelta(days=step)
        if local_midnight(day, tz) > now:
            return local_midnight(day, tz)


def send_report(config: Config, site: Site, report: Record, due: datetime) -> None:
    last = due.astimezone(ZoneInfo(site.timezone)).date() - timedelta(days=1)
    first = last - timedelta(days=period_days(int(report["interval"])) - 1)
    data = summary(Path(config.data_dir), site, first, last)
    subject = f"{site.hostname}: {data['total']['visitors']} visitors, {data['total']['views']} page views ({_span(first, last)})"
    mail.send(
        config,
        [report["email"]],
        subject,
        render_text(site, first, last, data),
        render_html(site, first, last, data),
        reply_to=report.get("reply_to") or "",
    )


def summary(data_dir: Path, site: Site, first: date, last: date) -> dict[str, Any]:
    """Totals, top pages and top referrers of the local days first..last."""
    from trail.stats import reports
    from trail.stats.filters import parse_filter

    params = {
        "id": [site.id],
        "from": [first.isoformat()],
        "to": [last.isoformat()],
        "limit": [str(TOP)],
    }
    f = parse_filter(params, default_tz=site.timezone or "UTC")
    return {
        "total": reports.total(data_dir, f),
        "pages": reports.page(data_dir, f),
        "referrers": reports.referrer(data_dir, f),
    }


def _span(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"


def _lines(data: dict[str, Any]) -> list[tuple[str, str]]:
    t = data["total"]
    return [
        ("Visitors", str(t["visitors"])),
        ("Page views", str(t["views"])),
        ("Sessions", str(t["sessions"])),
        ("Bounce rate", f"{t['bounce_rate'] * 100:.0f}%"),
    ]


def _tops(data: dict[str, Any]) -> list[tuple[str, list[tuple[str, int]]]]:
    pages = [(p["path"], int(p["visitors"])) for p in data["pages"][:TOP]]
    refs = [
        (r.get("referrer_name") or r.get("referrer") or "(direct)", int(r["visitors"]))
        for r in data["referrers"][:TOP]
    ]
    return [("Top pages", pages), ("Top referrers", refs)]


def render_text(site: Site, first: date, last: date, data: dict[str, Any]) -> str:
    out = [f"trail report for {site.hostname}, {_span(first, last)} ({site.timezone})", ""]
    out += [f"{label}: {value}" for label, value in _lines(data)]
    for title, items in _tops(data):
        out += ["", f"{title}:"] + [f"  {visitors:>6}  {name}" for name, visitors in items]
        if not items:
            out.append("  (none)")
    return "\n".join(out) + "\n"


def render_html(site: Site, first: date, last: date, data: dict[str, Any]) -> str:
    e = html.escape
    rows = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _lines(data))
    parts = [
        f"<h1>{e(site.hostname)}</h1><p>{e(_span(first, last))} ({e(site.timezone)})</p><table>{rows}</table>"
    ]
    for title, items in _tops(data):
        lis = (
            "".join(f"<li>{e(name)}: {visitors}</li>" for name, visitors in items)
            or "<li>(none)</li>"
        )
        parts.append(f"<h2>{e(title)}</h2><ol>{lis}</ol>")
    return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"

"""Traffic spike notifications and traffic warnings, evaluated by the maintenance process.

Settings per site in the `traffic_alerts` sub-db (keyed by domain id): a spike mail goes out when
the site's active visitors reach `spike_threshold` (at most once per SPIKE_COOLDOWN_SECONDS); a
warning mail when no page view arrived in the last `warning_threshold` days (once per quiet
spell: it re-arms when traffic returns). Recipients: the users of the site's account that have an
email address, and the site's email report recipients.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from trail.services import mail
from trail.services.email_reports import REPORTS
from trail.storage.documents import Record, records

if TYPE_CHECKING:
    from trail.config import Config
    from trail.storage.meta import MetaStore, Site

log = logging.getLogger("trail.traffic_alerts")

ALERTS = "traffic_alerts"
SPIKE_COOLDOWN_SECONDS = 6 * 3600
DEFAULTS: dict[str, Any] = {
    "spike_enabled": False,
    "spike_threshold": 100,
    "spike_notified": 0.0,
    "warning_enabled": False,
    "warning_threshold": 7,
    "warning_sent": False,
}


def settings(meta: MetaStore, site_id: str) -> Record:
    return {
        **DEFAULTS,
        **(records(meta, ALERTS).get(site_id) or {"id": site_id, "domain_id": site_id}),
    }


def change(meta: MetaStore, site_id: str, fields: dict[str, Any]) -> Record:
    """Merge `fields` into a site's settings (creating them); returns the new settings."""
    store = records(meta, ALERTS)
    if store.get(site_id) is None:
        store.create({**DEFAULTS, "domain_id": site_id}, record_id=site_id)
    updated = store.update(site_id, lambda r: {**DEFAULTS, **r, **fields})
    return updated or settings(meta, site_id)


def toggle(meta: MetaStore, site_id: str, kind: str) -> Record:
    return change(
        meta, site_id, {f"{kind}_enabled": not settings(meta, site_id)[f"{kind}_enabled"]}
    )


def recipients(meta: MetaStore, site: Site) -> list[str]:
    users = [
        u.get("email")
        for u in records(meta, "users").find()
        if u.get("account_id") == site.account_id
    ]
    reports = [r.get("email") for r in records(meta, REPORTS).find(domain_id=site.id)]
    return sorted({e for e in users + reports if e})


def evaluate(meta: MetaStore, config: Config, now: float | None = None) -> int:
    """Check every site with alerts on; returns how many mails were sent."""
    now = time.time() if now is None else now
    sent = 0
    for rec in records(meta, ALERTS).find():
        alert = {**DEFAULTS, **rec}
        site = meta.get_site(alert["domain_id"])
        if site is None or not (alert["spike_enabled"] or alert["warning_enabled"]):
            continue
        to = recipients(meta, site)
        if not to:
            continue
        try:
            if alert["spike_enabled"]:
                sent += _check_spike(meta, config, site, alert, to, now)
            if alert["warning_enabled"]:
                sent += _check_warning(meta, config, site, alert, to, now)
        except mail.MailError as e:
            log.warning("traffic alert for %s not sent: %s", site.id, e)
    return sent


def _check_spike(
    meta: MetaStore, config: Config, site: Site, alert: Record, to: list[str], now: float
) -> int:
    from trail.stats import reports
    from trail.stats.filters import Filter

    if now - float(alert["spike_notified"]) < SPIKE_COOLDOWN_SECONDS:
        return 0
    f = Filter(
        site_id=site.id, tz=ZoneInfo(site.timezone or "UTC"), start=site.active_visitors_seconds
    )
    visitors = int(
        reports.active(Path(config.data_dir), f, now=datetime.fromtimestamp(now, UTC))["visitors"]
    )
    if visitors < int(alert["spike_threshold"]):
        return 0
    minutes = site.active_visitors_seconds // 60
    text = (
        f"Traffic spike on {site.hostname}: {visitors} visitors in the last {minutes} minutes "
        f"(your threshold is {alert['spike_threshold']}).\n"
    )
    mail.send(
        config,
        to,
        f"Traffic spike on {site.hostname}: {visitors} active visitors",
        text,
        f"<p>{_html(text)}</p>",
    )
    change(meta, site.id, {"spike_notified": now})
    return 1


def _check_warning(
    meta: MetaStore, config: Config, site: Site, alert: Record, to: list[str], now: float
) -> int:
    from trail.stats import reports
    from trail.stats.filters import parse_filter

    days = int(alert["warning_threshold"])
    today = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(site.timezone or "UTC")).date()
    params = {
        "id": [site.id],
        "from": [(today - timedelta(days=days)).isoformat()],
        "to": [today.isoformat()],
    }
    f = parse_filter(
        params, default_tz=site.timezone or "UTC", now=datetime.fromtimestamp(now, UTC)
    )
    views = int(reports.total(Path(config.data_dir), f)["views"])
    if views > 0:
        if alert["warning_sent"]:
            change(meta, site.id, {"warning_sent": False})
        return 0
    if alert["warning_sent"]:
        return 0
    text = (
        f"trail has not received any page views for {site.hostname} in the last {days} days. "
        "Is the tracking script or integration still installed?\n"
    )
    mail.send(
        config, to, f"No traffic on {site.hostname} for {days} days", text, f"<p>{_html(text)}</p>"
    )
    change(meta, site.id, {"warning_sent": True})
    return 1


def _html(text: str) -> str:
    import html

    return html.escape(text.strip())

"""Maintenance tasks that talk to the outside world: webhooks, email reports, traffic alerts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("trail.maintenance")

WEBHOOK_INTERVAL = 5.0
MAIL_INTERVAL = 60.0


def deliver_webhooks(state: Any) -> None:
    from trail.services import webhooks

    webhooks.run_round(state.meta, Path(state.config.data_dir))


def send_email_reports(state: Any) -> None:
    from trail.services import email_reports, mail

    if mail.mail_enabled(state.config):
        email_reports.send_due(state.meta, state.config)


def check_traffic_alerts(state: Any) -> None:
    from trail.services import mail, traffic_alerts

    if mail.mail_enabled(state.config):
        traffic_alerts.evaluate(state.meta, state.config)


def tasks(task_type: Any) -> list[Any]:
    """The Task entries for maintenance.default_tasks."""
    return [
        task_type("webhooks", WEBHOOK_INTERVAL, deliver_webhooks),
        task_type("email_reports", MAIL_INTERVAL, send_email_reports),
        task_type("traffic_alerts", MAIL_INTERVAL, check_traffic_alerts),
    ]

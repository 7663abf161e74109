"""Outgoing mail through the configured SMTP server (smtp_* settings); plain text + HTML."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trail.config import Config

log = logging.getLogger("trail.mail")
TIMEOUT_SECONDS = 20.0


class MailError(Exception):
    """Mail could not be handed to the SMTP server; the caller retries next round."""


def mail_enabled(config: Config) -> bool:
    return bool(config.smtp_host)


def build_message(
    config: Config, to: list[str], subject: str, text: str, html: str, reply_to: str = ""
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = config.smtp_from
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=config.smtp_from.rpartition("@")[2] or None)
    if reply_to:
        message["Reply-To"] = reply_to
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send(
    config: Config, to: list[str], subject: str, text: str, html: str, reply_to: str = ""
) -> None:
    """Send one message to `to`; raises MailError when mail is off or the server refuses."""
    if not mail_enabled(config):
        raise MailError("smtp_host is not configured")
    message = build_message(config, to, subject, text, html, reply_to)
    try:
        with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
            if config.smtp_starttls:
                smtp.starttls()
            if config.smtp_user:
                smtp.login(config.smtp_user, config.smtp_password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as e:
        raise MailError(f"SMTP {config.smtp_host}:{config.smtp_port}: {e}") from e
    log.info("mail %r sent to %d recipient(s)", subject, len(to))

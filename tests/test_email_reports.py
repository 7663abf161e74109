"""Email reports and traffic notifications: CRUD through a real server, then the maintenance
task functions run in-process over that server's data dir, mailing a real SMTP server (aiosmtpd)
on loopback."""

from __future__ import annotations

import email
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.server import TrailServer, free_port
from tests.test_ingest_e2e import CHROME_WIN, FIREFOX_MAC, wait_for
from trail.config import Config, ConfigError, load

FAST_SEAL = {"TRAIL_SEAL_INTERVAL_MS": "200"}


class Inbox:
    """aiosmtpd handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    s = TrailServer(tmp_path_factory.mktemp("reports") / "data", workers=1, env=FAST_SEAL).start()
    yield s
    s.stop()


def parts(message: Message) -> dict[str, str]:
    return {
        p.get_content_type(): p.get_payload(decode=True).decode().replace("\r\n", "\n")
        for p in message.walk()
        if p.get_content_type() in ("text/plain", "text/html")
    }


def test_smtp_settings_are_validated(tmp_path: Path) -> None:
    env = {
        "TRAIL_SMTP_HOST": "mail.example.com",
        "TRAIL_SMTP_PORT": "2525",
        "TRAIL_SMTP_STARTTLS": "off",
        "TRAIL_SMTP_FROM": "stats@example.com",
        "TRAIL_DATA_DIR": str(tmp_path),
    }
    config = load(env=env)
    assert (config.smtp_host, config.smtp_port, config.smtp_starttls, config.smtp_from) == (
        "mail.example.com",
        2525,
        False,
        "stats@example.com",
    )
    with pytest.raises(ConfigError, match="smtp_port"):
        load(env={**env, "TRAIL_SMTP_PORT": "70000"})
    with pytest.raises(ConfigError, match="smtp_from"):
        load(env={**env, "TRAIL_SMTP_FROM": "nobody"})


def test_email_report_crud_and_validation(server: TrailServer) -> None:
    site, key = server.create_site("crud.example")
    admin = server.admin_key
    for body, field in [
        ({"interval": 0}, "emails"),
        ({"emails": ["not-an-address"], "interval": 0}, "emails"),
        ({"emails": ["a@example.com"]}, "interval"),
        ({"emails": ["a@example.com"], "interval": -1}, "interval"),
        ({"emails": ["a@example.com"], "interval": 1, "link_to": "elsewhere"}, "link_to"),
        ({"emails": ["a@example.com"], "interval": 1, "start_date": "tomorrow"}, "start_date"),
    ]:
        r = server.call("POST", "/api/v1/report", {"domain_id": site, **body}, key=admin)
        assert r.status == 400 and field in r.json()["validation"], (body, r.body)
    r = server.call(
        "POST",
        "/api/v1/report",
        {
            "domain_id": site,
            "emails": ["a@example.com", "b@example.com"],
            "interval": 1,
            "link_to": "public",
        },
        key=admin,
    )
    assert r.status == 200, r.body
    a, b = r.json()
    assert (a["email"], b["email"], a["interval"], a["link_to"]) == (
        "a@example.com",
        "b@example.com",
        1,
        "public",
    )
    # Weekly reports start on the next Monday, 00:00 in the site's time zone (UTC here).
    first = datetime.fromisoformat(a["next_report"])
    assert (
        first.weekday() == 0
        and first.time().isoformat() == "00:00:00"
        and first > datetime.now(UTC)
    )
    r = server.call(
        "PUT", "/api/v1/report", {"id": a["id"], "interval": 0, "link_to": "dashboard"}, key=admin
    )
    assert (r.json()["interval"], r.json()["link_to"]) == (0, "dashboard")
    assert r.json()["next_report"].startswith(
        (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    )
    listed = server.call("GET", f"/api/v1/report?id={site}", key=admin).json()
    assert [x["id"] for x in listed] == [a["id"], b["id"]]
    assert server.call("GET", f"/api/v1/report?id={site}", key=key).status == 403
    assert (
        server.call("PUT", "/api/v1/report", {"id": "nope", "interval": 1}, key=admin).status == 404
    )
    assert server.call("DELETE", f"/api/v1/report?id={b['id']}", key=admin).status == 200
    assert [x["id"] for x in server.call("GET", f"/api/v1/report?id={site}", key=admin).json()] == [
        a["id"]
    ]
    # Traffic notifications: toggle and configure.
    r = server.call("PUT", "/api/v1/traffic/spike", {"domain_id": site}, key=admin)
    assert r.json() == {"domain_id": site, "enabled": True, "threshold": 100}
    r = server.call(
        "POST", "/api/v1/traffic/spike", {"domain_id": site, "threshold": 25}, key=admin
    )
    assert r.json() == {"domain_id": site, "enabled": True, "threshold": 25}
    assert (
        server.call("PUT", "/api/v1/traffic/spike", {"domain_id": site}, key=admin).json()[
            "enabled"
        ]
        is False
    )
    r = server.call(
        "POST", "/api/v1/traffic/warning", {"domain_id": site, "threshold": 0}, key=admin
    )
    assert r.status == 400 and "threshold" in r.json()["validation"]
    assert (
        server.call("PUT", "/api/v1/traffic/warning", {"domain_id": "nope"}, key=admin).status
        == 404
    )


def test_reports_and_alerts_are_mailed(tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    from trail.services import email_reports, traffic_alerts
    from trail.storage.meta import MetaStore

    inbox, port = smtp
    s = TrailServer(tmp_path / "data", workers=1, env=FAST_SEAL).start()
    admin = s.admin_key
    today = datetime.now(UTC).date()
    try:
        site, key = s.create_site("example.com")
        quiet, _ = s.create_site("quiet.example")
        hits = [
            {
                "url": "https://example.com/",
                "ip": "81.2.69.1",
                "user_agent": CHROME_WIN,
                "referrer": "https://www.google.com/",
            },
            {"url": "https://example.com/pricing", "ip": "81.2.69.1", "user_agent": CHROME_WIN},
            {"url": "https://example.com/", "ip": "81.2.69.2", "user_agent": FIREFOX_MAC},
        ]
        for h in hits:
            assert s.call("POST", "/api/v1/hit", h, key=key).status == 200
        tomorrow = (today + timedelta(days=1)).isoformat()
        r = s.call(
            "POST",
            "/api/v1/report",
            {
                "domain_id": site,
                "emails": ["owner@example.com"],
                "interval": 0,
                "start_date": tomorrow,
                "reply_to": "team@example.com",
            },
            key=admin,
        )
        assert r.status == 200, r.body
        report = r.json()[0]
        r = s.call(
            "POST",
            "/api/v1/report",
            {
                "domain_id": quiet,
                "emails": ["quiet@example.com"],
                "interval": 4,
                "start_date": "2030-01-01",
            },
            key=admin,
        )
        assert r.status == 200, r.body
        for path, body in [
            ("PUT", {"domain_id": site}),
            ("POST", {"domain_id": site, "threshold": 2}),
        ]:
            assert s.call(path, "/api/v1/traffic/spike", body, key=admin).status == 200
        for path, body in [
            ("PUT", {"domain_id": quiet}),
            ("POST", {"domain_id": quiet, "threshold": 1}),
        ]:
            assert s.call(path, "/api/v1/traffic/warning", body, key=admin).status == 200
        wait_for(
            lambda: s.stats("total", site, **{"from": today.isoformat(), "to": today.isoformat()}),
            lambda t: t["views"] >= 3,
        )
    finally:
        s.stop()

    config = Config(
        data_dir=str(s.data_dir),
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_from="trail@example.com",
    )
    meta = MetaStore.open(s.data_dir / "meta")
    try:
        # Not due before tomorrow 00:00 (UTC, the site's zone); then it covers today.
        assert email_reports.send_due(meta, config) == 0
        at = datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC) + timedelta(
            minutes=1
        )
        assert email_reports.send_due(meta, config, now=at) == 1
        assert email_reports.send_due(meta, config, now=at) == 0  # moved to the day after
        [(to, message)] = inbox.messages
        assert to == ["owner@example.com"]
        assert message["Reply-To"] == "team@example.com" and message["From"] == "trail@example.com"
        assert message["Subject"] == f"example.com: 2 visitors, 3 page views ({today.isoformat()})"
        body = parts(message)
        # Two visitors, three page views, V2 bounced (1 of 2 sessions): 50 %.
        for line in ("Visitors: 2", "Page views: 3", "Sessions: 2", "Bounce rate: 50%"):
            assert line in body["text/plain"]
        assert "Top pages:\n       2  /\n       1  /pricing" in body["text/plain"]
        assert "Google" in body["text/plain"]
        assert (
            "<h1>example.com</h1>" in body["text/html"]
            and "<li>/pricing: 1</li>" in body["text/html"]
        )
        stored = [
            r
            for r in email_reports.records(meta, email_reports.REPORTS).find()
            if r["id"] == report["id"]
        ]
        assert stored[0]["next_report"].startswith((today + timedelta(days=2)).isoformat())

        # Traffic: example.com has 2 active visitors (threshold 2), quiet.example had no page
        # view in the last day (threshold 1). Each is mailed once.
        inbox.messages.clear()
        assert traffic_alerts.evaluate(meta, config, now=time.time()) == 2
        subjects = {to[0]: m["Subject"] for to, m in inbox.messages}
        assert subjects == {
            "owner@example.com": "Traffic spike on example.com: 2 active visitors",
            "quiet@example.com": "No traffic on quiet.example for 1 days",
        }
        assert traffic_alerts.evaluate(meta, config, now=time.time()) == 0
    finally:
        meta.close()

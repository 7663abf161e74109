"""bench/goatcounter_peer.py's own logic without Go: the acknowledged-vs-stored count after a
SIGKILL, run for trail alone through a real server at a tiny size, and the one-line skip when
there is no `go` command. The GoatCounter part itself needs Go and runs only in `make bench`."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from bench import goatcounter_peer as peer


def test_trail_keeps_every_acknowledged_page_view_after_kill9(tmp_path: Path) -> None:
    # One client: the kill comes between two requests, so nothing is in flight and what was
    # acknowledged is exactly what must be stored. 30 answers from 12 distinct page views: the
    # stream goes round them.
    r = peer.trail_acked_vs_stored(tmp_path, peer.KillAt(acked=30), threads=1, n=12)
    assert r["sent"] == r["acked"] == 30 and r["in_flight"] == 0 and r["failed"] == 0
    assert r["kill_ms"] > 0
    assert r["stored"] == r["acked"]


def test_requests_as_the_trackers_send_them() -> None:
    views = peer.page_views(8, seed=3)
    assert len(views) == 8 and len({v["who"]["ip"] for v in views}) >= 2
    view = next(v for v in peer.page_views(200, seed=3) if "?" in v["url"] and v["referrer"])
    count = peer.goatcounter_count(view, "ab12z")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(count.target).query)
    path, _, search = view["url"].removeprefix(f"https://{peer.traffic.HOSTNAME}").partition("?")
    assert count.method == "POST" and count.body == b""
    assert query["p"] == [f"{path}?{search}"] and query["q"] == [f"?{search}"]
    assert query["r"] == [view["referrer"]] and query["b"] == ["0"] and query["rnd"] == ["ab12z"]
    assert count.headers["Host"] == peer.VHOST
    assert count.headers["X-Forwarded-For"] == view["who"]["ip"]
    collect = peer.trail_collect(view, "site-id")
    assert collect.target == "/api/v1/collect" and b'"website_id": "site-id"' in collect.body


def test_build_without_go_skips_with_one_line(tmp_path: Path) -> None:
    lines: list[str] = []
    binary, commands = peer.build(None, tmp_path, lines.append)
    assert binary is None and commands == []
    assert len(lines) == 1 and "skipping the GoatCounter peer" in lines[0]
    assert list(tmp_path.iterdir()) == []

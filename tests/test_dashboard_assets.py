"""The dashboard's assets in two compression passes (trail/api/dashboard/pages.py): the fast one
serves at once, the smallest replaces it under the same names; in-process and through a real
server right after its start."""

from __future__ import annotations

import gzip
from pathlib import Path

import brotli
import pytest

from tests.server import TrailServer, request
from tests.test_stats_e2e import wait_for
from trail.api.dashboard import pages

MAP = "vendor/countries-110m.json"


@pytest.fixture(autouse=True)
def fresh_bundles() -> None:
    """Each test starts without a bundle in this process."""
    pages._bundles.clear()


def decoded(body: bytes, encoding: str | None) -> bytes:
    if encoding == "br":
        return bytes(brotli.decompress(body))
    return gzip.decompress(body) if encoding == "gzip" else body


def test_the_smallest_pass_keeps_names_and_contents() -> None:
    fast = pages.bundle()
    assert pages._bundles == {6: fast}
    pages._smallest()
    small = pages.bundle()
    assert small is pages._bundles[9] and small is not fast
    assert small.urls == fast.urls and small.pages == fast.pages
    assert set(small.assets) == set(fast.assets)
    for file, url in fast.urls.items():
        content = (pages.STATIC / file).read_bytes()
        name = url.removeprefix("/assets/")
        for bundle in (fast, small):
            variants, _ = bundle.assets[name]
            for encoding, body in variants.items():
                assert decoded(body, encoding) == content, (file, encoding)
        before, after = fast.assets[name][0], small.assets[name][0]
        if "br" in after:
            assert after["br"] == brotli.compress(content, quality=11)
            assert len(after["br"]) <= len(before.get("br", content))
    # The map's data: the second pass is worth it.
    name = fast.urls[MAP].removeprefix("/assets/")
    assert len(small.assets[name][0]["br"]) < len(fast.assets[name][0]["br"])


def test_a_fresh_server_serves_the_assets_at_once(tmp_path: Path) -> None:
    url = pages._build_bundle().urls[MAP]
    content = (pages.STATIC / MAP).read_bytes()
    smallest = brotli.compress(content, quality=11)
    server = TrailServer(tmp_path / "data", workers=1).start()
    try:
        assert request("GET", server.url + "/signin").status == 200
        first = request("GET", server.url + url, headers={"accept-encoding": "br"})
        assert first.status == 200, first.body
        assert decoded(first.body, first.headers.get("content-encoding")) == content
        # Later the same name answers the smallest brotli.
        later = wait_for(
            lambda: request("GET", server.url + url, headers={"accept-encoding": "br"}),
            lambda r: r.body == smallest,
            timeout=120,
        )
        assert later.body == smallest and later.headers["content-encoding"] == "br"
        assert later.headers["cache-control"] == pages.ASSET_CACHE
    finally:
        assert server.stop() == 0

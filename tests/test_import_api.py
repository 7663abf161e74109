"""Importing statistics through the Pirsch API (trail.api.pirsch.imports): uploads checked in the
request, jobs run by the maintenance process of a real server, bad archives refused with nothing
changed, and a job killed with the server halfway run again to the same rows."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import create_user
from tests.importers.import_exports import (
    VISITORS_HEADER,
    Plausible,
    bomb,
    days,
    fathom_zip,
    multipart,
    zip_of,
)
from tests.server import Reply, TrailServer, request
from trail.importers import aggregates
from trail.storage import imported

MAX_UPLOAD = 4 << 20
ENV = {"TRAIL_IMPORT_JOBS_INTERVAL_S": "0.2", "TRAIL_IMPORT_MAX_BYTES": str(MAX_UPLOAD)}
V = "imported_visitors_20240101_20240102.csv"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrailServer]:
    data_dir = tmp_path_factory.mktemp("imports") / "data"
    data_dir.mkdir()
    s = TrailServer(data_dir, workers=2, env=ENV).start()
    yield s
    assert s.stop() == 0


def upload(
    s: TrailServer, kind: str, site: str | None, data: bytes | None, key: str | None = None
) -> Reply:
    content_type, body = multipart({"domain": site} if site else {}, data)
    headers = {"Content-Type": content_type}
    if key or s.admin_key:
        headers["Authorization"] = f"Bearer {key or s.admin_key}"
    return request("POST", f"{s.url}/api/v1/import/{kind}", body, headers, timeout=60)


def wait_done(s: TrailServer, site: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = s.call("GET", f"/api/v1/import?domain_id={site}", key=s.admin_key).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise TimeoutError(job)


def tables(data_dir: Path, site: str) -> dict[str, pl.DataFrame]:
    return {t: imported.read(data_dir, site, t) for t in imported.TABLES}


def test_plausible_upload_is_queued_and_run(server: TrailServer) -> None:
    site, _ = server.create_site("plausible-api.example")
    export = Plausible(days(date(2024, 1, 20), 45)).build()
    r = upload(server, "plausible", site, export.zip())
    assert r.status == 200, r.body
    job = r.json()
    assert job["state"] == "queued" and job["type"] == "plausible" and job["domain_id"] == site
    assert (job["from"], job["to"]) == ("2024-01-20", "2024-03-04")
    assert job["google_user_id"] == "" and job["domain"] == ""
    done = wait_done(server, site)
    assert done["state"] == "done", done
    assert done["progress"] == 1.0 and done["errors"] == []
    assert done["stored_rows"]["visitors"] == 45 and done["jobs"][0]["id"] == job["id"]
    rows = imported.read(server.data_dir, site, "visitors")
    assert dict(zip(rows["date"], rows["visitors"], strict=True)) == {
        d: v[0] for d, v in export.visitors.items()
    }
    assert not (server.data_dir / "imports" / f"{job['id']}.zip").exists()
    # The statistics add the imported days (the site has no collected data).
    total = server.stats("total", site, **{"from": "2024-01-20", "to": "2024-03-04"})
    assert total["visitors"] == sum(v[0] for v in export.visitors.values())
    assert total["views"] == sum(v[1] for v in export.visitors.values())
    domain = server.call("GET", f"/api/v1/domain?id={site}", key=server.admin_key).json()
    assert domain[0]["imported_statistics"] is True


def test_fathom_upload_is_queued_and_run(server: TrailServer) -> None:
    site, _ = server.create_site("fathom-api.example")
    r = upload(server, "fathom", site, fathom_zip())
    assert r.status == 200, r.body
    assert r.json()["from"] == "2026-09-02" and r.json()["to"] == "2026-09-08"
    done = wait_done(server, site)
    assert done["state"] == "done", done
    assert imported.read(server.data_dir, site, "visitors")["visitors"].sum() == 70
    assert imported.read(server.data_dir, site, "browser")["visitors"].sum() == 70


BAD = [
    ("plausible", b"this is not a zip", "file: not a zip archive"),
    ("plausible", bomb(), "refused as a zip bomb"),
    ("plausible", zip_of({V: "date,visitors,pageviews,bounces,visits,duration\n"}),
     f"file: {V}, line 1, column 'visit_duration': missing column"),
    ("plausible", zip_of({V: f"{VISITORS_HEADER}\n2024-01-01,1,1,1,1,1\n2024-01-32,1,1,1,1,1\n"}),
     f"file: {V}, line 3, column 'date': not a date"),
    ("plausible", zip_of({V: f"{VISITORS_HEADER}\n2024-01-01,1,1,1,one,1\n"}),
     f"file: {V}, line 2, column 'visits': not a whole number"),
    ("plausible", os.urandom(MAX_UPLOAD + 1), f"file: larger than {MAX_UPLOAD} bytes"),
    ("fathom", zip_of({"Pages.csv": "Page,Visitors,Pageviews\n"}), "file: Summary.csv"),
    ("fathom", Plausible(days(date(2024, 1, 1), 3)).build().zip(),
     "not a file of a Fathom export"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "data", "message"), BAD, ids=[m[:30] for _, _, m in BAD])
def test_bad_archives_answer_400_and_change_nothing(
    server: TrailServer, kind: str, data: bytes, message: str
) -> None:
    site, _ = server.create_site(f"bad-{uuid.uuid4().hex[:12]}.example")
    export = Plausible(days(date(2023, 5, 1), 5)).build()
    assert upload(server, "plausible", site, export.zip()).status == 200
    wait_done(server, site)
    before = tables(server.data_dir, site)
    jobs = server.call("GET", f"/api/v1/import?domain_id={site}", key=server.admin_key).json()
    r = upload(server, kind, site, data)
    assert r.status == 400, r.body
    assert message in r.json()["error"][0], r.json()
    assert list(r.json()["validation"]) in (["file"], ["body"])
    after = server.call("GET", f"/api/v1/import?domain_id={site}", key=server.admin_key).json()
    assert after["jobs"] == jobs["jobs"]
    assert all(tables(server.data_dir, site)[t].equals(before[t]) for t in before)
    assert os.listdir(server.data_dir / "imports") == []


def test_request_errors_name_the_field(server: TrailServer) -> None:
    site, _ = server.create_site("fields.example")
    data = fathom_zip()
    r = upload(server, "fathom", None, data)
    assert r.status == 400 and r.json()["validation"] == {"domain": "required: the domain id"}
    r = upload(server, "fathom", site, None)
    assert r.status == 400 and "file" in r.json()["validation"]
    r = server.call("POST", "/api/v1/import/fathom", {"domain": site}, key=server.admin_key)
    assert r.status == 400 and "body" in r.json()["validation"]
    r = server.call("GET", "/api/v1/import", key=server.admin_key)
    assert r.status == 400 and "domain_id" in r.json()["validation"]
    assert (
        server.call("GET", f"/api/v1/import?domain_id={site}", key=server.admin_key).status == 404
    )


def test_authorization(server: TrailServer) -> None:
    site, _ = server.create_site("authz-import.example")
    other = create_user(server.data_dir, "user")
    r = upload(server, "fathom", site, fathom_zip(), key=other["api_key"])
    assert r.status == 404  # another user's domain does not exist for them
    content_type, body = multipart({"domain": site}, fathom_zip())
    r = request("POST", f"{server.url}/api/v1/import/fathom", body, {"Content-Type": content_type})
    assert r.status == 401
    r = server.call("GET", f"/api/v1/import?domain_id={site}", key=other["api_key"])
    assert r.status == 404
    r = server.call("DELETE", f"/api/v1/import?domain_id={site}", key=other["api_key"])
    assert r.status == 404
    assert os.listdir(server.data_dir / "imports") == []


def test_delete_cancels_and_removes_the_jobs(server: TrailServer) -> None:
    site, _ = server.create_site("cancel-import.example")
    assert upload(server, "fathom", site, fathom_zip()).status == 200
    r = server.call("DELETE", f"/api/v1/import?domain_id={site}", key=server.admin_key)
    assert r.status == 200
    assert (
        server.call("GET", f"/api/v1/import?domain_id={site}", key=server.admin_key).status == 404
    )
    deadline = time.monotonic() + 10
    while os.listdir(server.data_dir / "imports") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert os.listdir(server.data_dir / "imports") == []


def test_a_job_killed_halfway_runs_again_to_the_same_rows(tmp_path: Path) -> None:
    export = Plausible(days(date(2021, 1, 1), 3 * 366), more_pages=150).build()
    archive = tmp_path / "export.zip"
    archive.write_bytes(export.zip())
    aggregates.run("plausible", archive, tmp_path / "clean", "reference")

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    s = TrailServer(data_dir, workers=1, env=ENV).start()
    try:
        site, _ = s.create_site("killed.example")
        assert upload(s, "plausible", site, archive.read_bytes()).status == 200
        deadline = time.monotonic() + 120
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = s.call("GET", f"/api/v1/import?domain_id={site}", key=s.admin_key).json()
            if job["state"] == "running" and job["progress"] > 0.6 or job["state"] == "done":
                break
            time.sleep(0.05)
        assert job["state"] == "running", job  # caught in its writing pass
        s.kill9()
    finally:
        if s.proc is not None and s.proc.poll() is None:
            s.stop()
    assert imported.has_any(data_dir, site)
    key = s.admin_key
    s = TrailServer(data_dir, workers=1, env=ENV).start()
    s.admin_key = key  # shown at the first start only
    try:
        done = wait_done(s, site, timeout=120)
        assert done["state"] == "done", done
    finally:
        assert s.stop() == 0
    want = tables(tmp_path / "clean", "reference")
    got = tables(data_dir, site)
    assert all(got[t].equals(want[t]) for t in want)


def test_concurrent_uploads_for_one_domain_queue_one_job(tmp_path: Path) -> None:
    # Uploads for one domain at the same instant, in two worker processes: the check for a
    # queued or running job and the queueing are one meta-store write, so exactly one is
    # queued. No job runs meanwhile (the maintenance process looks once an hour here).
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {**ENV, "TRAIL_IMPORT_JOBS_INTERVAL_S": "3600"}
    s = TrailServer(data_dir, workers=2, env=env).start()
    try:
        site, _ = s.create_site("concurrent-import.example")
        archive = Plausible(days(date(2024, 1, 1), 200), more_pages=20).build().zip()
        start = threading.Barrier(6)

        def send(_: int) -> Reply:
            start.wait()
            return upload(s, "plausible", site, archive)

        with ThreadPoolExecutor(6) as pool:
            replies = list(pool.map(send, range(6)))
        assert sorted(r.status for r in replies) == [200] + [400] * 5, [r.body for r in replies]
        for r in replies:
            if r.status == 400:
                assert "domain" in r.body.decode() and "queued or running" in r.body.decode()
        jobs = s.call("GET", f"/api/v1/import?domain_id={site}", key=s.admin_key).json()["jobs"]
        assert [j["state"] for j in jobs] == ["queued"]
        assert sorted(os.listdir(data_dir / "imports")) == [f"{jobs[0]['id']}.zip"]
    finally:
        assert s.stop() == 0

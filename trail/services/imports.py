"""Import jobs: a Plausible or Fathom export uploaded through the Pirsch API, checked in the
request, run by the maintenance process.

A job is a document of the meta env's `import_jobs` table:

    {id, def_time, mod_time, domain_id, type: plausible|fathom, state, progress (0..1),
     rows, total_bytes, from, to, errors: [...], notes: [...], stored_rows: {table: n},
     started, finished}

with Pirsch's job fields beside them (`google_user_id`, `google_user_email`, `domain`: empty).
States: `queued` (the archive is saved at <data_dir>/imports/<job id>.zip), `running`, `done`,
`failed` (errors say why). The request checks the whole archive (trail.importers.aggregates
`inspect`), so a queued job only fails on a full disk or the like. The maintenance process runs
queued jobs one at a time in a thread of its own; a job found `running` when none runs was cut
short by a stop and is run again from the start, which gives the same rows (imports replace
whole days). Deleting the jobs (DELETE /api/v1/import) cancels a queued or running one: the
runner stops before its next month and the archive goes; rows imported so far stay (DELETE
/api/v1/statistics with kind `imported` removes them). A site keeps one queued or running job
at a time. The jobs of a deleted site go with it (trail.storage.cascade), their archives with
the next sweep.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from trail.errors import FieldError
from trail.importers import aggregates
from trail.importers.archive import ImportFormatError
from trail.storage.documents import Record, records
from trail.storage.models import now_rfc3339
from trail.storage.tables import tables_of

log = logging.getLogger("trail.imports")
KIND = "import_jobs"
DIR = "imports"
ACTIVE = ("queued", "running")
PUBLIC = (
    "id", "def_time", "mod_time", "domain_id", "type", "google_user_id", "google_user_email",
    "domain", "from", "to", "state", "progress", "rows", "total_bytes", "errors",
    "notes", "stored_rows", "started", "finished",
)  # fmt: skip
# How often a running job writes its progress and looks for its cancellation.
UPDATE_EVERY_S = 1.0
# An archive without a job is a request that died between saving it and queueing the job, or a
# job deleted meanwhile: removed once it is this old.
ORPHAN_AGE_S = 3600.0


def archive_path(data_dir: Path | str, job_id: str) -> Path:
    return Path(data_dir) / DIR / f"{job_id}.zip"


def public(job: Record) -> dict[str, Any]:
    """A job as the API answers it."""
    return {k: job.get(k) for k in PUBLIC}


def jobs_of(meta: Any, site_id: str) -> list[Record]:
    """The site's jobs, newest first."""
    return list(reversed(records(meta, KIND).find(domain_id=site_id)))


BUSY = "an import of this domain is queued or running already"


def queue(meta: Any, data_dir: Path | str, site_id: str, kind: str, upload: Path) -> Record:
    """Check the archive at `upload` (a file under <data_dir>/imports, moved into place or
    removed here) and queue a job for it; FieldError("file") naming the file, line and column
    for a bad archive, FieldError("domain") while another import of the site is queued or
    running.

    Looking for a queued or running job and creating the new one are one write transaction of
    the meta store (LMDB and PostgreSQL both run one writer at a time), so of two uploads for a
    site at the same instant, in two workers, one is queued and the other refused."""
    try:
        if any(j["state"] in ACTIVE for j in jobs_of(meta, site_id)):
            raise FieldError("domain", BUSY)  # early, before the archive is read
        try:
            plan = aggregates.inspect(kind, upload)
        except ImportFormatError as e:
            raise FieldError("file", str(e)) from None
        job_id = uuid.uuid4().hex[:16]
        os.replace(upload, archive_path(data_dir, job_id))
    finally:
        upload.unlink(missing_ok=True)
    try:
        return _create_unless_busy(meta, site_id, job_id, kind, plan)
    except BaseException:
        archive_path(data_dir, job_id).unlink(missing_ok=True)
        raise


def _create_unless_busy(
    meta: Any, site_id: str, job_id: str, kind: str, plan: aggregates.Plan
) -> Record:
    store = records(meta, KIND)
    with tables_of(meta.env).write() as txn:
        if any(j["state"] in ACTIVE for j in store.find(txn, domain_id=site_id)):
            raise FieldError("domain", BUSY)
        return store.create(
            {
                "domain_id": site_id,
                "type": kind,
                "google_user_id": "",
                "google_user_email": "",
                "domain": "",
                "from": plan.first.isoformat(),
                "to": plan.last.isoformat(),
                "state": "queued",
                "progress": 0.0,
                "rows": 0,
                "total_bytes": plan.total_bytes,
                "errors": [],
                "notes": plan.notes,
                "stored_rows": {},
                "started": None,
                "finished": None,
            },
            record_id=job_id,
            txn=txn,
        )


def upload_file(data_dir: Path | str) -> Path:
    """A new file under <data_dir>/imports for an upload to be written to."""
    folder = Path(data_dir) / DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f".upload-{uuid.uuid4().hex}.zip"


def cancel(meta: Any, data_dir: Path | str, site_id: str) -> int:
    """Remove the site's jobs (a running one stops before its next month); how many went."""
    store = records(meta, KIND)
    jobs = jobs_of(meta, site_id)
    for job in jobs:
        store.delete(job["id"])
        if job["state"] != "running":  # the runner removes the archive of a running job
            archive_path(data_dir, job["id"]).unlink(missing_ok=True)
    return len(jobs)


# -- running (the maintenance process) ---------------------------------------------------------


def run_pending(meta: Any, data_dir: Path | str) -> int:
    """Run the queued jobs (and those a stop cut short), oldest first; how many ran."""
    ran = 0
    while (job := _next(meta)) is not None:
        run_job(meta, data_dir, job)
        ran += 1
    sweep_archives(meta, data_dir)
    return ran


def _next(meta: Any) -> Record | None:
    pending = [j for j in records(meta, KIND).find() if j.get("state") in ACTIVE]
    return min(pending, key=lambda j: (j["def_time"], j["id"])) if pending else None


def run_job(meta: Any, data_dir: Path | str, job: Record) -> None:
    """Run one job to its end, writing its state and progress as it goes."""
    store = records(meta, KIND)
    job_id = job["id"]
    path = archive_path(data_dir, job_id)
    if meta.get_site(job["domain_id"]) is None or not path.exists():
        _finish(store, job_id, "failed", ["the archive or the domain is gone"])
        path.unlink(missing_ok=True)
        return
    store.merge(job_id, {"state": "running", "started": now_rfc3339(), "errors": []})
    log.info("import job %s (%s) for site %s started", job_id, job["type"], job["domain_id"])
    watch = _Watch(store, job_id)
    try:
        summary = aggregates.run(
            job["type"], path, data_dir, job["domain_id"], watch.progress, watch.cancelled
        )
    except aggregates.Cancelled:
        log.info("import job %s cancelled", job_id)
        path.unlink(missing_ok=True)
        return
    except (ImportFormatError, ValueError, OSError) as e:
        log.warning("import job %s failed: %s", job_id, e)
        _finish(store, job_id, "failed", [str(e)])
        path.unlink(missing_ok=True)
        return
    fields = {"rows": summary.source_rows, "stored_rows": summary.stored_rows}
    _finish(store, job_id, "done", [], fields)
    path.unlink(missing_ok=True)
    log.info("import job %s done: %d rows in %.1f s", job_id, summary.source_rows, summary.seconds)


def _finish(
    store: Any, job_id: str, state: str, errors: list[str], fields: dict[str, Any] | None = None
) -> None:
    done = {"progress": 1.0} if state == "done" else {}
    change = {"state": state, "errors": errors, "finished": now_rfc3339(), **done, **(fields or {})}
    store.merge(job_id, change)


class _Watch:
    """A running job's progress, written at most once a second, and whether it was deleted."""

    def __init__(self, store: Any, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self.last = 0.0
        self.gone = False

    def progress(self, phase: str, rows: int, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < UPDATE_EVERY_S:
            return
        self.last = now
        # Half for checking the archive, half for writing it.
        share = (0.5 if phase == "writing" else 0.0) + (
            0.5 * min(done / total, 1.0) if total else 0
        )
        fields = {"progress": round(share, 4), "rows": rows}
        if self.store.merge(self.job_id, fields) is None:
            self.gone = True

    def cancelled(self) -> bool:
        return self.gone or self.store.get(self.job_id) is None


def sweep_archives(meta: Any, data_dir: Path | str) -> None:
    """Remove archives and unfinished uploads that no queued or running job holds, once they are
    older than any request still writing or checking one."""
    folder = Path(data_dir) / DIR
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    held = {f"{j['id']}.zip" for j in records(meta, KIND).find() if j.get("state") in ACTIVE}
    now = time.time()
    for name in names:
        if name in held:
            continue
        try:
            if now - (folder / name).stat().st_mtime > ORPHAN_AGE_S:
                (folder / name).unlink()
        except FileNotFoundError:
            pass


class Runner:
    """Runs pending jobs in a thread of its own, so a long import holds up no other task."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None

    def poke(self, meta: Any, data_dir: Path | str) -> None:
        """Start the thread when jobs wait and it is not running."""
        if self.thread is not None and self.thread.is_alive():
            return
        if _next(meta) is None:
            sweep_archives(meta, data_dir)
            return
        self.thread = threading.Thread(
            target=self._run, args=(meta, data_dir), name="import-jobs", daemon=True
        )
        self.thread.start()

    @staticmethod
    def _run(meta: Any, data_dir: Path | str) -> None:
        try:
            run_pending(meta, data_dir)
        except Exception:
            log.exception("import jobs failed")

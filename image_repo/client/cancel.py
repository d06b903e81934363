"""``image_repo ingest --cancel JOB``: stop the run that holds the job, then remove its unfinished imports."""
from __future__ import annotations

import logging
import os
import signal
import socket
import time

from ..host.owners import pid_alive as _alive
from .http import RepoClient, RequestFailed
from .jobfile import JobFile

log = logging.getLogger("image_repo.client")


def _is_ingest(pid: int) -> bool:
    """Only signal a process that is an image_repo ingest (the pid may have been reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return b"image_repo" in cmdline and b"ingest" in cmdline


def stop_run(pid: int, wait: float = 30.0) -> None:
    """SIGTERM (finish the files in flight), then SIGKILL if it has not gone within ``wait`` seconds."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        log.warning("run %d did not stop in %.0f s; killing it", pid, wait)
        os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)


def cancel_job(client: RepoClient, job: JobFile) -> int:
    """Stop the job's running process (on this host), cancel its unfinished imports; how many were removed."""
    state = job.load()
    if state.runs:
        last = state.runs[-1]
        pid = int(last.get("pid", 0))
        if last.get("host") == socket.gethostname() and pid > 0 and pid != os.getpid() and _alive(pid) \
                and _is_ingest(pid):
            log.info("stopping run %d", pid)
            stop_run(pid)
        state = job.load()  # the stopped run may have finished more
    removed = 0
    for path, import_id in state.imports.items():
        try:
            client.cancel_import(import_id)
            removed += 1
        except RequestFailed as e:
            log.warning("%s: import %s not cancelled: %s", path, import_id, e)
            continue
        job.record("import-gone", path=path, id=import_id)
    job.record("cancel", time=time.time())
    job.close()
    return removed

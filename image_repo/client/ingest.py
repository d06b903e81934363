"""Ingest a directory tree: N workers, direct-to-store imports when offered, resumable through a job file."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .http import RepoClient, RequestFailed, file_sha256
from .jobfile import JobFile, JobState
from .naming import NameMapper, upload_target
from .progress import Progress

log = logging.getLogger("image_repo.client")

FINAL = ("done", "failed")


class Stopped(Exception):
    """The run was asked to stop before this file was started."""


@dataclass(frozen=True)
class Item:
    rel: str
    path: Path
    name: str
    size: int
    mtime_ns: int


@dataclass
class Summary:
    stored: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    bytes_sent: int = 0
    seconds: float = 0.0
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stopped


def scan(root: Path, mapper: NameMapper) -> Iterator[Item]:
    """Files under ``root`` the mapper selects, in path order; hidden files and directories are left out."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            if fname.startswith("."):
                continue
            path = Path(dirpath) / fname
            rel = PurePosixPath(path.relative_to(root).as_posix())
            if not mapper.wanted(rel):
                continue
            name = mapper.name(rel)
            if name is None:
                continue
            st = path.stat()
            yield Item(str(rel), path, name, st.st_size, st.st_mtime_ns)


class Ingest:
    """One run of a job: ``run(items)`` stores each file once, skipping what the job file says is done."""

    def __init__(self, client: RepoClient, job: JobFile, *, workers: int = 4, replace: bool = False,
                 direct: bool | None = None, progress: Progress | None = None, poll: float = 0.05) -> None:
        self.client, self.job, self.workers, self.replace = client, job, max(1, workers), replace
        self.direct = direct
        self.progress = progress or Progress(enabled=False)
        self.poll = poll
        self.stop = threading.Event()
        self.state = JobState()
        self.summary = Summary()
        self._lock = threading.Lock()

    def run(self, items: list[Item]) -> Summary:
        started = time.monotonic()
        self.state = self.job.load()
        if self.direct is None:
            self.direct = self.client.imports_offered()
        log.info("%d files; %s", len(items), "direct-to-store imports" if self.direct else "plain uploads")
        self.job.start_run()
        self.progress.start(len(items), sum(i.size for i in items))
        with ThreadPoolExecutor(self.workers, thread_name_prefix="ingest") as pool:
            for _ in pool.map(self._one, items):
                pass
        self.progress.close()
        self.summary.stopped = self.stop.is_set()
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _one(self, item: Item) -> None:
        if self.stop.is_set():
            return
        try:
            outcome = self._store(item)
        except (RequestFailed, OSError) as e:
            reason = str(e)
            self.job.record("failed", path=item.rel, reason=reason)
            log.error("%s: %s", item.rel, reason)
            with self._lock:
                self.summary.failed[item.rel] = reason
            self.progress.advance(item.size, sent=False)
            return
        with self._lock:
            if outcome == "stored":
                self.summary.stored += 1
                self.summary.bytes_sent += item.size
            else:
                self.summary.skipped += 1
        log.debug("%s -> %s: %s", item.rel, item.name, outcome)
        self.progress.advance(item.size, sent=outcome == "stored")

    def _store(self, item: Item) -> str:
        done = self.state.done.get(item.rel)
        if done and done.get("size") == item.size and done.get("mtime_ns") == item.mtime_ns \
                and done.get("name") == item.name:
            return "skipped"  # done in an earlier run and unchanged since: not even read
        sha = file_sha256(item.path)
        if done and done.get("sha256") == sha and done.get("name") == item.name:
            self._done(item, sha)
            return "skipped"
        if self.direct:
            return self._direct(item, sha)
        return self._plain(item, sha)

    def _done(self, item: Item, sha: str) -> None:
        self.job.record("done", path=item.rel, name=item.name, sha256=sha, size=item.size, mtime_ns=item.mtime_ns)

    def _plain(self, item: Item, sha: str) -> str:
        if item.rel in self.state.sending and self.client.stored_sha256(item.name) == sha:
            self._done(item, sha)  # sent by a run that was killed before it could say so
            return "skipped"
        self.job.record("sending", path=item.rel)
        self.client.upload(item.path, upload_target(item.name, PurePosixPath(item.rel)), sha, replace=self.replace)
        self._done(item, sha)
        return "stored"

    def _direct(self, item: Item, sha: str) -> str:
        pending = self.state.imports.get(item.rel)
        if pending:
            outcome = self._resume_import(item, sha, pending)
            if outcome:
                return outcome
        rec = self.client.create_import(item.name, sha, item.size, replace=self.replace)
        if rec.get("state") == "done":
            self._done(item, sha)  # the server already holds these bytes under this name
            return "skipped"
        import_id = str(rec["id"])
        self.job.record("import", path=item.rel, id=import_id)
        self.client.send_bytes(rec["upload_url"], rec.get("upload_method", "PUT"), item.path,
                               rec.get("upload_headers") or {})
        self._finish(item, sha, self.client.complete_import(import_id))
        return "stored"

    def _resume_import(self, item: Item, sha: str, import_id: str) -> str | None:
        """Pick up an import a killed run left: finished or finishing -> its outcome; else cancel it."""
        try:
            rec = self.client.get_import(import_id)
        except RequestFailed as e:
            if e.status != 404:
                raise
            rec = {}
        if rec.get("sha256") == sha and rec.get("state") in ("uploaded", "processing", "done"):
            if rec.get("state") == "uploaded":
                rec = self.client.complete_import(import_id)
            self._finish(item, sha, rec)
            return "stored"
        if rec.get("state") not in FINAL and rec:
            self.client.cancel_import(import_id)  # created, maybe half sent: start over
        self.job.record("import-gone", path=item.rel, id=import_id)
        return None

    def _finish(self, item: Item, sha: str, rec: dict[str, Any]) -> None:
        delay = self.poll
        while rec.get("state") not in FINAL:
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
            rec = self.client.get_import(str(rec["id"]))
        if rec["state"] == "failed":
            self.job.record("import-gone", path=item.rel, id=rec["id"])
            raise RequestFailed(f"import {rec['id']} failed: {rec.get('reason') or 'no reason given'}")
        self._done(item, sha)

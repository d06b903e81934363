"""The job file of an ingest: an append-only log of JSON lines, so a killed run loses nothing.

Each line is written whole with one ``write()`` on an ``O_APPEND`` descriptor, so a kill
at any moment leaves at most a torn last line, which loading ignores. Records (``t``):

- ``run``: a run started (pid, host), so ``--cancel`` can find and stop it
- ``sending``: a plain upload of ``path`` began (its outcome is checked on resume)
- ``import``: import ``id`` was created for ``path`` (its staging object may exist)
- ``done``: ``path`` is stored as ``name`` with ``sha256`` (size and mtime let a rerun skip it unread)
- ``failed``: ``path`` failed with ``reason`` (tried again on the next run)
- ``cancel``: the job was cancelled
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def default_job_dir() -> Path:
    """Where job files live unless ``--job-file`` says otherwise (XDG state directory)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "image_repo" / "jobs"


def job_id(server: str, root: Path, prefix: str, naming: str) -> str:
    """The same command (server, tree, prefix, naming) always names the same job, so rerunning resumes it."""
    text = "\n".join([server.rstrip("/"), str(root.resolve()), prefix, naming])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class JobState:
    """What the log says so far, replayed."""

    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)
    """path -> import id, for imports created but not (yet) recorded done."""
    sending: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    cancelled: bool = False


class JobFile:
    """One job's log: replay it with ``load()``, add to it with ``record()`` (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def load(self) -> JobState:
        state = JobState()
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return state
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # torn by a kill mid-write
            if not isinstance(rec, dict):
                continue
            kind, path = rec.get("t"), rec.get("path")
            if kind == "run":
                state.runs.append(rec)
                state.cancelled = False
            elif kind == "cancel":
                state.cancelled = True
            elif not isinstance(path, str):
                continue
            elif kind == "done":
                state.done[path] = rec
                state.imports.pop(path, None)
                state.sending.discard(path)
                state.failed.pop(path, None)
            elif kind == "import":
                state.imports[path] = str(rec.get("id"))
            elif kind == "import-gone":
                state.imports.pop(path, None)
            elif kind == "sending":
                state.sending.add(path)
            elif kind == "failed":
                state.failed[path] = str(rec.get("reason"))
        return state

    def record(self, kind: str, **fields: Any) -> None:
        line = (json.dumps({"t": kind, **fields}, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.write(self._fd, line)

    def start_run(self) -> None:
        self.record("run", pid=os.getpid(), host=socket.gethostname(), time=time.time())

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

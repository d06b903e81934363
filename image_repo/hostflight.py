"""Single flight across the worker processes of one host: a lock file per key.

``SingleFlight`` (concurrency.py) makes concurrent requests for one new derivative in one
process derive it once. Gunicorn runs one process per core, so without this each worker
that receives such a request derives it too. ``HostFlight.hold(key)`` takes an exclusive
``flock`` on ``<dir>/<sha256 of key>.lock``: the first worker derives; the others wait,
then find the result in the disk cache (which every worker of the host shares).

Lock files are removed by their holder before it unlocks, so they do not pile up. A waiter
may then hold a lock on a file that is no longer in the directory; it checks after locking
that the path still names the file it locked and starts over if not, so two holders can
never both believe they hold the same key.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("image_repo.service")

POLL_FIRST = 0.002
POLL_MAX = 0.05


class HostFlight:
    """Per-key exclusive locks shared by every process using ``directory``."""

    def __init__(self, directory: str, *, timeout: float = 60.0) -> None:
        self.directory = directory
        self.timeout = timeout
        self.enabled = True
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as e:
            self._disable(e)

    def _path(self, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return os.path.join(self.directory, digest + ".lock")

    @contextmanager
    def hold(self, key: str) -> Iterator[bool]:
        """Hold ``key``'s lock for the block; yields True if another process held it first (so look again).

        Never raises for a lock problem: past ``timeout``, or with an unusable directory, the
        block runs without the lock (a duplicate derivation is better than a failed request).
        """
        fd, waited = self._acquire(key) if self.enabled else (None, False)
        try:
            yield waited
        finally:
            if fd is not None:
                self._release(key, fd)

    def _acquire(self, key: str) -> tuple[int | None, bool]:
        path = self._path(key)
        deadline = time.monotonic() + self.timeout
        waited = False
        delay = POLL_FIRST
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as e:
                self._disable(e)
                return None, waited
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    self._disable(e)
                    return None, waited
                waited = True
                if time.monotonic() > deadline:
                    log.warning("waited %.0f s for another worker to make %r; making it here too", self.timeout, key)
                    return None, waited
                time.sleep(delay)
                delay = min(delay * 2, POLL_MAX)
                continue
            if _same_file(fd, path):
                return fd, waited
            os.close(fd)  # the holder removed it before we got it: lock the current file instead

    def _release(self, key: str, fd: int) -> None:
        try:
            os.unlink(self._path(key))  # under the lock: a waiter sees the path is gone and retries
        except OSError:
            pass
        os.close(fd)  # releases the flock

    def _disable(self, e: OSError) -> None:
        if self.enabled:
            self.enabled = False
            log.warning("derivation locks at %s disabled (one derivation per worker, not per host): %s",
                        self.directory, e.strerror or e)


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)

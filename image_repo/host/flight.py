"""One derivation per key at a time: within a worker (SingleFlight) and across the host (HostFlight).

``SingleFlight`` makes concurrent requests for one new derivative in one process derive it
once. Gunicorn runs one process per core, so without ``HostFlight`` each worker that
receives such a request derives it too. ``HostFlight.hold(key)`` takes an exclusive
``flock`` on ``<dir>/<stripe>.lock``, the stripe chosen by the key's SHA-256: the first
worker derives; the others wait, then find the result in a level of the cache that every
worker of the host shares and that is written before the lock is released.

A fixed set of lock files, made once and never removed: creating and removing a file per
derivation costs two metadata writes (~0.3 ms each on a busy ext4), more than the lock.
Two keys that share a stripe only wait for each other; the second then finds nothing in
the cache and derives its own.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar, cast

log = logging.getLogger("image_repo.service")

T = TypeVar("T")

STRIPES = 4096
POLL_FIRST = 0.002
POLL_MAX = 0.05


class SingleFlight:
    """Concurrent calls for the same key run the work once; the others wait for its result."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}

    def run(self, key: str, work: Callable[[], T]) -> T:
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = _Call()
        if not leader:
            call.done.wait()
            if call.error is not None:
                raise call.error
            return cast(T, call.result)  # the leader stored work()'s T
        try:
            result = work()
            call.result = result
            return result
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            with self._lock:
                del self._calls[key]
            call.done.set()


class _Call:
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None


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
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        return os.path.join(self.directory, f"{int.from_bytes(digest[:4], 'big') % STRIPES:03x}.lock")

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
                os.close(fd)  # releases the flock

    def _acquire(self, key: str) -> tuple[int | None, bool]:
        try:
            fd = os.open(self._path(key), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            self._disable(e)
            return None, False
        deadline = time.monotonic() + self.timeout
        waited = False
        delay = POLL_FIRST
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd, waited
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    self._disable(e)
                    return None, waited
            waited = True
            if time.monotonic() > deadline:
                os.close(fd)
                log.warning("waited %.0f s for another worker to make %r; making it here too", self.timeout, key)
                return None, waited
            time.sleep(delay)
            delay = min(delay * 2, POLL_MAX)

    def _disable(self, e: OSError) -> None:
        if self.enabled:
            self.enabled = False
            log.warning("derivation locks at %s disabled (one derivation per worker, not per host): %s",
                        self.directory, e.strerror or e)

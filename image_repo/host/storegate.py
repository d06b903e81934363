"""A bound on the request threads of a worker that wait on a remote store (Swift, S3) at once.

A stalled store holds each thread that asks it something for up to the store's timeout (times
its retries). Without a bound, a few seconds of stall take every thread of a worker, and
then cache hits and ``/healthz``, which need no store at all, queue behind them. With it, at
most ``limit`` threads wait on the stores; a thread that finds no free slot within
``WAIT`` seconds is answered 503 with ``Retry-After`` (``StoreBusy``), or, for a cache hit,
served from what the worker last knew of the original (Originals.find takes it as any other
unavailable store). So at least ``threads - limit`` threads always answer what needs no store.

Background threads (writes behind an answer, imports) have bounds of their own and are not
counted: they must not take the slots of request threads (``exempt_thread``).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import StorageUnavailable

WAIT = 0.25
"""Seconds a request thread waits for a slot: long enough for a healthy store's calls to end
(milliseconds), short enough that a stalled store costs requests little more than a 503."""

_background = threading.local()


class StoreBusy(StorageUnavailable):
    """Every slot is held by a thread waiting on a store: it is slow or stalled; come back shortly."""

    default_message = "the storage is not answering in time; retry shortly"
    retry_after = 2


def exempt_thread() -> None:
    """Mark the calling thread as background work: its store calls take no slot (a pool's initializer)."""
    _background.exempt = True


class StoreGate:
    """At most ``limit`` request threads inside store calls at once; the rest get ``StoreBusy``."""

    def __init__(self, limit: int, wait: float = WAIT) -> None:
        self.limit = max(1, limit)
        self.wait = wait
        self._slots = threading.BoundedSemaphore(self.limit)
        self._lock = threading.Lock()
        self._held = threading.local()  # a call inside a call (a client made on first use) takes no second slot
        self.refused = 0
        self.in_use = 0

    @contextmanager
    def slot(self, what: str) -> Iterator[None]:
        """Hold a slot for the store call ``what`` (a description for the 503's message)."""
        if getattr(_background, "exempt", False) or getattr(self._held, "depth", 0):
            yield
            return
        if not self._slots.acquire(timeout=self.wait):
            with self._lock:
                self.refused += 1
            raise StoreBusy(f"{what}: {self.limit} requests of this worker are already waiting on the storage; "
                            "retry shortly")
        self._held.depth = 1
        with self._lock:
            self.in_use += 1
        try:
            yield
        finally:
            self._held.depth = 0
            with self._lock:
                self.in_use -= 1
            self._slots.release()

    def stats(self) -> dict[str, int]:
        """The limit, slots held now, and requests refused so far (for /metrics)."""
        with self._lock:
            return {"limit": self.limit, "in_use": self.in_use, "refused": self.refused}


class OpenGate:
    """The gate of a store no worker limits (the CLI, tests, a local store): every call goes through."""

    limit = 0
    refused = 0

    @contextmanager
    def slot(self, what: str) -> Iterator[None]:
        yield

    def stats(self) -> dict[str, int]:
        return {"limit": 0, "in_use": 0, "refused": 0}


OPEN = OpenGate()

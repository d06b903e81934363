"""A bound on the request threads of a worker that wait on a remote store (Swift, S3) at once.

A stalled store holds each thread that asks it something for up to the store's timeout (times
its retries). Without a bound, a few seconds of stall take every thread of a worker, and
then cache hits and ``/healthz``, which need no store at all, queue behind them. With it, at
most ``limit`` threads are inside store calls; the others wait for a slot while the store
makes progress (a slow but working store: its calls end and free their slots), and give up
as soon as it has made none for ``STALLED`` seconds: they are answered 503 with Retry-After
(``StoreBusy``), or, for a cache hit, from what the worker last knew of the original
(Originals.find takes it as any other unavailable store). So ``threads - limit`` threads are
always free for what needs no store.

Background threads (writes behind an answer, imports, checks of originals) have bounds of
their own and are not counted: they must not take the slots of request threads (``exempt_thread``).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import StorageUnavailable

STALLED = 2.0
"""Seconds with every slot held and no store call ending (nor a slot taken) after which the store
is taken as stalled. A working store, however loaded, ends calls faster than that; a single call
that takes longer (a very large upload) holds one slot, not all of them."""
_POLL = 0.05

_background = threading.local()


class StoreBusy(StorageUnavailable):
    """Every slot is held by a thread waiting on a store that has stopped answering; come back shortly."""

    default_message = "the storage is not answering; retry shortly"
    retry_after = 2


def exempt_thread() -> None:
    """Mark the calling thread as background work: its store calls take no slot (a pool's initializer)."""
    _background.exempt = True


class StoreGate:
    """At most ``limit`` request threads inside store calls at once; waiters give up when the store stalls."""

    def __init__(self, limit: int, stalled: float = STALLED) -> None:
        self.limit = max(1, limit)
        self.stalled = stalled
        self._slots = threading.BoundedSemaphore(self.limit)
        self._lock = threading.Lock()
        self._held = threading.local()  # a call inside a call (a client made on first use) takes no second slot
        self._progress = time.monotonic()  # when a slot was last taken or given back
        self.refused = 0
        self.in_use = 0

    @contextmanager
    def slot(self, what: str) -> Iterator[None]:
        """Hold a slot for the store call ``what`` (a description for the 503's message)."""
        if getattr(_background, "exempt", False) or getattr(self._held, "depth", 0):
            yield
            return
        self._acquire(what)
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            with self._lock:
                self.in_use -= 1
                self._progress = time.monotonic()
            self._slots.release()

    def _acquire(self, what: str) -> None:
        while not self._slots.acquire(timeout=_POLL):
            with self._lock:
                if time.monotonic() - self._progress < self.stalled:
                    continue  # the store is working: its calls end and free slots
                self.refused += 1
            raise StoreBusy(f"{what}: {self.limit} requests of this worker wait on the storage, which has "
                            f"answered none of them for {self.stalled:g} s; retry shortly")
        with self._lock:
            self.in_use += 1
            self._progress = time.monotonic()

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

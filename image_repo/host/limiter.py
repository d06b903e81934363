"""A bound on derivations at once within one worker, and on those waiting behind them."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import Overloaded
from ..metrics.figures import REFUSED, RUNNING, WAITING


class Limiter:
    """At most ``running`` holders at once and ``queued`` waiting; past that, ``Overloaded`` (503).

    Both numbers are in /metrics (image_repo_derivations_running and _waiting, summed over workers).
    """

    def __init__(self, running: int, queued: int) -> None:
        self._slots = threading.BoundedSemaphore(max(1, running))
        self._lock = threading.Lock()
        self._waiting = 0
        self._max_waiting = max(0, queued)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self._max_waiting:
                    REFUSED.inc()
                    raise Overloaded("too many images being made at once; retry shortly")
                self._waiting += 1
            WAITING.inc()
            try:
                self._slots.acquire()
            finally:
                WAITING.dec()
                with self._lock:
                    self._waiting -= 1
        RUNNING.inc()
        try:
            yield
        finally:
            RUNNING.dec()
            self._slots.release()

"""Single flight per key, and a bound on derivations at once, within one process."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar, cast

from .errors import Overloaded

T = TypeVar("T")


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


class Limiter:
    """At most ``running`` holders at once and ``queued`` waiting; past that, ``Overloaded`` (503)."""

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
                    raise Overloaded("too many images being made at once; retry shortly")
                self._waiting += 1
            try:
                self._slots.acquire()
            finally:
                with self._lock:
                    self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

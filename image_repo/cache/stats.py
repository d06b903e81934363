"""Counters each cache level keeps (hits, misses, puts, evictions, errors) for /metrics."""
from __future__ import annotations

import threading

FIELDS = ("hits", "misses", "puts", "evictions", "errors")


class Counters:
    """Plain ints under a lock: cheap enough for every cache operation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(FIELDS, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def snapshot(self) -> dict[str, int]:
        """A copy of the counts."""
        with self._lock:
            return dict(self._counts)

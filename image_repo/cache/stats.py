"""Counters each cache level keeps (hits, misses, puts, evictions, errors) for /metrics."""
from __future__ import annotations

import threading
from typing import Any

from ..metrics.figures import cache_counters

FIELDS = ("hits", "misses", "puts", "evictions", "errors")


class Counters:
    """Plain ints under a lock: cheap enough for every cache operation.

    With a ``level``, the ``exported`` fields also go to the Prometheus figures of that level
    (the JSON of /metrics shows the ints, per worker; Prometheus sums them over workers).
    """

    def __init__(self, level: str | None = None, exported: tuple[str, ...] = FIELDS) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(FIELDS, 0)
        self._exported: dict[str, Any] = {}
        if level is not None:
            self._exported = cache_counters(level, exported)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n
        exported = self._exported.get(name)
        if exported is not None:
            exported.inc(n)

    def snapshot(self) -> dict[str, int]:
        """A copy of the counts."""
        with self._lock:
            return dict(self._counts)

"""Counts of the hot path kept in this process's memory and written to the shared files once a second.

In multiprocess mode each prometheus_client increment is a lock, a getpid and an mmap write
(~1.2 us; a histogram observation ~3 us): a memory-cache hit, ~0.2 ms of CPU, would spend
~5% of itself on its five figures. Here an increment is a dict update under one lock (for
all of a request's figures at once), and a flusher thread adds each child's total to its
file every ``INTERVAL`` seconds, at exit, and before this process answers a scrape. So a
scrape can miss up to ``INTERVAL`` seconds of another worker's counts, never lose them
(save a worker killed with SIGKILL: its last second).

Outside multiprocess mode (one process, tests) every count goes straight to the metric.
Histogram batches use the child's bucket values (``_upper_bounds``, ``_buckets``, ``_sum``),
as its own ``observe`` does; prometheus-client is pinned below 1.0 and the tests read them back.
"""
from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from prometheus_client import values

INTERVAL = 1.0
DEFER = bool(getattr(values.ValueClass, "_multiprocess", False))
"""Whether counts are batched: only where they are files (multiprocess mode)."""


class Pending:
    """Increments waiting to be written: counter child -> amount, histogram child -> [sum, bucket counts...]."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[Any, float] = {}
        self.observed: dict[Any, list[float]] = {}
        self.flusher: threading.Thread | None = None
        self.wake = threading.Event()

    def count(self, child: Any, amount: float = 1.0) -> None:
        """Add ``amount`` to a counter child (or gauge child, as an increment)."""
        if not DEFER:
            child.inc(amount)
            return
        with self.lock:
            self.counts[child] = self.counts.get(child, 0.0) + amount
        if self.flusher is None:
            self.start()

    def request(self, counter: Any, histogram: Any, seconds: float, sent_counter: Any, sent: int) -> None:
        """A request's three figures under one lock: its count, its latency, its bytes."""
        if not DEFER:
            counter.inc()
            histogram.observe(seconds)
            if sent:
                sent_counter.inc(sent)
            return
        with self.lock:
            counts = self.counts
            counts[counter] = counts.get(counter, 0.0) + 1.0
            if sent:
                counts[sent_counter] = counts.get(sent_counter, 0.0) + sent
            self._observe(histogram, seconds)
        if self.flusher is None:
            self.start()

    def _observe(self, histogram: Any, seconds: float) -> None:
        tally = self.observed.get(histogram)
        bounds = histogram._upper_bounds
        if tally is None:
            tally = self.observed[histogram] = [0.0] * (len(bounds) + 1)
        tally[0] += seconds
        for i, bound in enumerate(bounds):
            if seconds <= bound:
                tally[i + 1] += 1
                return

    def flush(self) -> None:
        """Write every pending increment to its metric (the shared files)."""
        with self.lock:
            counts, self.counts = self.counts, {}
            observed, self.observed = self.observed, {}
        for child, amount in counts.items():
            child.inc(amount)
        for histogram, tally in observed.items():
            histogram._sum.inc(tally[0])
            for bucket, n in zip(histogram._buckets, tally[1:]):
                if n:
                    bucket.inc(n)

    def start(self) -> None:
        with self.lock:
            if self.flusher is not None:
                return
            self.flusher = threading.Thread(target=self._run, name="metrics-flush", daemon=True)
        self.flusher.start()

    def _run(self) -> None:
        while not self.wake.wait(INTERVAL):
            self.flush()

    def after_fork(self) -> None:
        """In a new child: nothing pending from the parent, no flusher yet (threads do not survive a fork)."""
        self.lock = threading.Lock()
        self.counts, self.observed = {}, {}
        self.flusher, self.wake = None, threading.Event()


PENDING = Pending()
os.register_at_fork(after_in_child=PENDING.after_fork)
atexit.register(PENDING.flush)  # a worker's last second of counts, when it exits normally


class Deferred:
    """A metric child whose ``inc`` goes through PENDING: a drop-in for a counter child on a hot path."""

    __slots__ = ("child",)

    def __init__(self, child: Any) -> None:
        self.child = child

    def inc(self, amount: float = 1.0) -> None:
        PENDING.count(self.child, amount)

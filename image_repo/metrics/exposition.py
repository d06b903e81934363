"""``/metrics`` in the Prometheus text format (or OpenMetrics when asked), summed over workers."""
from __future__ import annotations

import os
import threading

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from . import figures  # noqa: F401 - the metrics exist before the first scrape
from .multiproc import ENV
from .pending import PENDING

_registry: CollectorRegistry | None = None
_lock = threading.Lock()


def registry() -> CollectorRegistry:
    """Every worker's figures summed (multiprocess mode), else this process's own registry."""
    global _registry
    with _lock:
        if _registry is None:
            # prometheus_client's own switch, set by web/server.py from the metrics_dir setting.
            directory = os.environ.get(ENV)
            if directory:
                _registry = CollectorRegistry()
                MultiProcessCollector(_registry, path=directory)
            else:
                _registry = REGISTRY
        return _registry


def render(accept: str | None) -> tuple[bytes, str]:
    """The figures as the ``Accept`` header prefers (text format 0.0.4 or OpenMetrics), and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    PENDING.flush()  # this worker's own counts are current; the others' at most pending.INTERVAL old
    return encoder(registry()), content_type

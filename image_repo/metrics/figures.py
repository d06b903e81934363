"""The metrics, each declared once, and the small functions the parts count through.

Importing this module creates the metrics (in multiprocess mode, this worker's files), so
only a serving or working process imports it, never the Gunicorn master (see __init__.py).
The figures of the hot path (requests, cache levels, service events) are batched through
pending.py: ~0.3 us a count instead of ~1-3 us for a write to the shared file. Label values
are bounded: routes are the app's rule strings, methods a fixed set, levels, backends and
states our own names.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from .. import __version__
from .pending import PENDING, Deferred

# A memory-cache hit takes ~0.2 ms, a derivation 5 ms to seconds: buckets that tell them apart.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DERIVATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
UNMATCHED = "unmatched"
"""The route of a request no rule matched (404, 405): one label for every such path."""

BUILD = Gauge("image_repo_build_info", "The running version (always 1).", ["version"], multiprocess_mode="max")
BUILD.labels(__version__).set(1)

REQUESTS = Counter("image_repo_http_requests", "HTTP requests answered, by route (the app's rule), method and status.",
                   ["route", "method", "status"])
LATENCY = Histogram("image_repo_http_request_duration_seconds",
                    "Seconds from a request's arrival to the last byte of its answer sent, by route.",
                    ["route"], buckets=REQUEST_BUCKETS)
BYTES = Counter("image_repo_http_response_bytes", "Bytes of answer bodies sent, by route.", ["route"])

CACHE_FIELDS = {"hits": "hits", "misses": "misses", "puts": "writes", "errors": "errors", "evictions": "evictions"}
CACHE: dict[str, Counter] = {
    field: Counter(f"image_repo_cache_{name}", f"Cache {name} by level (memory: per worker; disk: this host; store: the cache store).",
                   ["level"])
    for field, name in CACHE_FIELDS.items()
}

DERIVATIONS = Counter("image_repo_derivations", "Derived images made (found in no cache level).")
DERIVATION_SECONDS = Histogram("image_repo_derivation_duration_seconds",
                               "Seconds making one derived image (any wait for a derivation slot, decode, resize, encode).",
                               buckets=DERIVATION_BUCKETS)
RUNNING = Gauge("image_repo_derivations_running", "Derivations being made now (summed over live workers).",
                multiprocess_mode="livesum")
WAITING = Gauge("image_repo_derivations_waiting",
                "Derivations queued behind max_concurrent_derivations: the limiter's queue depth (live workers).",
                multiprocess_mode="livesum")
REFUSED = Counter("image_repo_derivations_refused", "Derivations refused with 503 because the queue was full.")

EVENTS: dict[str, Deferred] = {name: Deferred(counter) for name, counter in {
    "uploads": Counter("image_repo_uploads", "Originals written (POST, PUT, finished imports)."),
    "deletes": Counter("image_repo_deletes", "Originals deleted."),
    "derivations": DERIVATIONS,
    "from_intermediate": Counter("image_repo_derivations_from_intermediate",
                                 "Derivations made from a kept intermediate instead of the original."),
    "intermediates_kept": Counter("image_repo_intermediates_kept", "Intermediates written to the cache."),
    "heap_trims": Counter("image_repo_heap_trims", "Times a worker gave freed heap back to the system."),
}.items()}
"""ImageService.count() names that are exported (cache_hits and fast_hits are per level below)."""

STORE_ERRORS = Counter("image_repo_store_errors",
                       "Store operations that failed (unreachable, refused, timed out), by backend.", ["backend"])
IMPORTS = Counter("image_repo_imports", "Direct imports that entered each state.", ["state"])
PYRAMIDS = Counter("image_repo_pyramid_builds", "Pyramid builds that entered each state.", ["state"])
PYRAMIDS_RUNNING = Gauge("image_repo_pyramid_builds_running", "Pyramid builds running now (live workers).",
                         multiprocess_mode="livesum")

_requests: dict[tuple[str | None, str, int], tuple[Any, Any, Any]] = {}


def request(route: str | None, method: str, status: int, sent: int, seconds: float) -> None:
    """One answered request (from Gunicorn's access hook, which sees fast-path answers too)."""
    if method not in METHODS:
        method = "other"  # any token is a method: the client must not choose how many series there are
    key = (route, method, status)
    children = _requests.get(key)
    if children is None:
        label = route or UNMATCHED
        children = (REQUESTS.labels(label, method, str(status)), LATENCY.labels(label), BYTES.labels(label))
        _requests[key] = children  # bounded: routes x methods x statuses
    PENDING.request(children[0], children[1], seconds, children[2], sent)


def cache_counters(level: str, fields: tuple[str, ...]) -> dict[str, Deferred]:
    """The counter of each of ``fields`` (hits, misses, puts, errors, evictions) for one cache level."""
    return {field: Deferred(CACHE[field].labels(level)) for field in fields}


def store_error(backend: str) -> None:
    """A store operation failed with StorageUnavailable (not a plain miss)."""
    STORE_ERRORS.labels(backend).inc()


def import_state(state: str) -> None:
    """An import entered ``state`` (created, uploaded, processing, done, failed)."""
    IMPORTS.labels(state).inc()


def pyramid_state(state: str) -> None:
    """A pyramid build entered ``state``: for pyramids/ to call on each change of its state record."""
    PYRAMIDS.labels(state).inc()


@contextmanager
def pyramid_building() -> Iterator[None]:
    """Around a pyramid build in this process: counted in image_repo_pyramid_builds_running meanwhile."""
    PYRAMIDS_RUNNING.inc()
    try:
        yield
    finally:
        PYRAMIDS_RUNNING.dec()

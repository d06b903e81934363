"""ImageService: list, upload, get (derive on a miss), meta, url, delete. No Flask here.

Finding originals is in originals.py; intermediates in intermediates.py; one derivation per
key at a time in host/flight.py.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Callable

from .. import names, testpoints
from ..cache.disk import DiskCache
from ..config.settings import Settings
from ..errors import NotConfigured, NotFound, PayloadTooLarge, StorageUnavailable
from ..host.flight import HostFlight, SingleFlight
from ..host.limiter import Limiter
from ..host.storegate import StoreGate
from ..host.writes import HostWrites
from ..imaging import DerivationSpec, Derived, derive, heap
from ..imaging.derive import resample_target
from ..imaging.formats import KINDS, Kind
from ..metrics.figures import DERIVATION_SECONDS, EVENTS
from ..names import Keyed
from ..pyramids.derive import derive_from_source, needs_base
from ..pyramids.service import Pyramids
from ..pyramids.source import TiledSource
from ..storage.base import ObjectInfo, ObjectStore, SupportsTempUrl, content_version, sha256_hex
from . import huge, meta, writes
from .iiif import IIIFImages
from .renderings import Renderings
from .intermediates import Intermediates
from .originals import Original, Originals, literal_prefix
from .writes import Uploaded

log = logging.getLogger("image_repo.service")

__all__ = ["ImageService", "Original", "Rendered", "Uploaded", "bottom_level", "literal_prefix", "same_bytes"]


@dataclass(frozen=True)
class Rendered:
    data: bytes
    content_type: str
    etag: str
    cached: bool
    """True when a cache level had it (no derivation was made for this request)."""


class ImageService:
    """The flow of DESIGN.md section 1, over one originals store and one stacked cache."""

    def __init__(self, settings: Settings, store: ObjectStore, cache: ObjectStore) -> None:
        self.settings = settings
        self.store = store
        self.cache = cache
        # One gate per worker for its remote stores: a stalled store never takes every thread.
        self.gate = StoreGate(settings.store_threads())
        for remote in (store, bottom_level(cache)):
            if hasattr(remote, "gate"):
                remote.gate = self.gate
        # Host-wide state of the workers (locks, the write counter) lives in the disk cache's directory.
        disk = next((level for level in getattr(cache, "levels", []) if isinstance(level, DiskCache)), None)
        host_dir = disk.path if disk is not None else settings.disk_cache_path()
        writes = HostWrites(host_dir)
        self.originals = Originals(settings, store, writes)
        self.name_limits = self.originals.name_limits
        self.intermediates = Intermediates(cache)
        self.pyramids = Pyramids(settings, store, cache, host_dir)
        """Huge images: ``source(original)`` (a TiledSource or None) and ``status(original)`` (pyramids/service.py)."""
        self.iiif = IIIFImages(self, tile_size=settings.iiif_tile_size)
        self.renderings = Renderings(self, store, writes)
        """Saved renderings of multichannel images (service/renderings.py)."""
        self._flight = SingleFlight()
        # Across worker processes: a lock per derived key, where they then find the result in
        # a level they share and that is written before the lock is released (disk, or a local cache store).
        shared = disk is not None or getattr(bottom_level(cache), "local", False)
        self._host_flight = HostFlight(os.path.join(host_dir, ".flight")) if shared else None
        running = settings.max_concurrent_derivations or max(1, settings.threads)
        self._limiter = Limiter(running, settings.max_queued_derivations)
        self._counters = {"derivations": 0, "cache_hits": 0, "uploads": 0, "deletes": 0,
                          "from_intermediate": 0, "intermediates_kept": 0, "fast_hits": 0,
                          "heap_trims": 0, "iiif_renders": 0, "tiles_passed_through": 0,
                          "from_pyramid": 0}
        self._counter_lock = threading.Lock()

    # -- names ---------------------------------------------------------------------------
    def validate_name(self, raw: str) -> str:
        return self.originals.validate_name(raw)

    def count(self, *counters: str) -> None:
        """Add one to each of ``counters`` (of /metrics; the fast path counts its hits here too)."""
        with self._counter_lock:
            for counter in counters:
                self._counters[counter] += 1
        for counter in counters:
            exported = EVENTS.get(counter)
            if exported is not None:
                exported.inc()

    _count = count

    def counters(self) -> dict[str, int]:
        with self._counter_lock:
            return dict(self._counters)

    # -- finding originals (originals.py) -------------------------------------------------
    def list_names(self, regex: str | None = None, prefix: str = "") -> list[str]:
        """Names of every original under ``prefix`` whose whole name ``regex`` matches (RE2)."""
        return self.originals.list_names(regex, prefix)

    def list_page(self, regex: str | None, marker: str, limit: int) -> tuple[list[str], bool]:
        """At most ``limit`` names after ``marker`` (in ``list_names`` order), and whether more follow."""
        return self.originals.list_page(regex, marker, limit)

    def find(self, name: str, *, fresh: bool = False) -> Original | None:
        """The original of ``name``, or None. Trusts what it learned for ``original_stat_ttl`` seconds unless ``fresh``."""
        return self.originals.find(name, fresh=fresh)

    def get_original(self, name: str) -> Original:
        return self.originals.get(name)

    def resolve_path(self, path: str) -> tuple[Original, Kind | None]:
        """The image a GET path names: the exact name first, else the name less a known extension."""
        return self.originals.resolve_path(path)

    # -- derived images ------------------------------------------------------------------
    def etag(self, original: Original, spec: Keyed) -> str:
        """Strong ETag: changes with the original's bytes and with the canonical spec."""
        digest = hashlib.sha256(f"{original.version}\n{spec.key()}".encode()).hexdigest()
        return digest[:32]

    def render(self, original: Original, spec: DerivationSpec) -> Rendered:
        """The derived image: from a cache level if any has it, else made once and cached."""
        key = names.derived_key(original.name, original.version, spec)

        def make() -> bytes:
            with self._limiter.slot():
                return self._derive(original, spec).data

        return self.produce(original, key, KINDS[spec.kind].content_type, self.etag(original, spec), make)

    def slot(self) -> AbstractContextManager[None]:
        """One of this worker's derivation slots (503 past the queue): held while pixels are made."""
        return self._limiter.slot()

    def produce(self, original: Original, key: str, content_type: str, etag: str, make: Callable[[], bytes], *,
                local_only: bool = False) -> Rendered:
        """The derivative under ``key``: from a cache level if any has it, else ``make()`` it once
        (per process and per host) and cache it. The flow every derived image goes through.

        ``local_only``: the levels of this host only, asked and written; for what the cache
        store already holds in another form (a pyramid's stored tiles), which must cost no
        second object there nor a lookup of one.
        """
        get = getattr(self.cache, "get_local", self.cache.get_with_info) if local_only else self.cache.get_with_info
        try:
            data, _ = get(key)
            self._count("cache_hits")
            return Rendered(data, content_type, etag, cached=True)
        except NotFound:
            pass
        except StorageUnavailable:
            log.warning("cache unavailable while reading %s; deriving", key)

        made_here = False

        def once() -> tuple[bytes, bool]:
            nonlocal made_here
            made_here = True
            if self._host_flight is None:
                return self._made_meanwhile(key) or (self._make(original, key, content_type, make, local_only), False)
            with self._host_flight.hold(key):
                return self._made_meanwhile(key) or (self._make(original, key, content_type, make, local_only), False)

        # One derivation per key at a time in this process (SingleFlight) and on this host (HostFlight).
        data, cached = self._flight.run(key, once)
        # A thread that waited for another's derivation made none itself: a hit, for it.
        return Rendered(data, content_type, etag, cached=cached or not made_here)

    def _made_meanwhile(self, key: str) -> tuple[bytes, bool] | None:
        """The derivative if another thread or worker made it since our miss: looked for after
        every acquisition, since the one that made it may have finished before we asked for the
        lock (so we never waited). Only the levels of this host are asked: they are written first."""
        get_local = getattr(self.cache, "get_local", self.cache.get_with_info)
        try:
            data, _ = get_local(key)
        except (NotFound, StorageUnavailable):
            return None
        self._count("cache_hits")
        return data, True

    def _make(self, original: Original, key: str, content_type: str, make: Callable[[], bytes], local_only: bool) -> bytes:
        """Make, count and cache one derived image."""
        with DERIVATION_SECONDS.time():  # the wait for a derivation slot included: what the request waited
            data = make()
        self._count("derivations")
        if heap.settle():  # whatever it decoded (an intermediate, tiles): now and then, the heap is trimmed
            self._count("heap_trims")
        metadata = {"source-version": original.version[:128]}
        try:
            if local_only and hasattr(self.cache, "put_local"):
                self.cache.put_local(key, data, ObjectInfo(key, len(data), content_type, metadata=metadata))
            else:
                # The cache store's copy is written behind the answer where the cache can (TieredStore).
                put = getattr(self.cache, "put_behind", self.cache.put)
                put(key, data, content_type, metadata)
        except StorageUnavailable:
            log.warning("could not write derived image %s to the cache; serving it anyway", key)
        return data

    def read_original(self, original: Original) -> bytes:
        """The original's bytes, refusing them when they changed since ``original`` was found."""
        source, info = self.store.get_with_info(original.ref.key)
        # The original changed between stat and get: never derive other bytes under the old
        # version's key. The hash is only computed when the store's answer names another version.
        if content_version(info) != original.version and not same_bytes(original.info, source):
            self.originals.changed(original.name)
            raise StorageUnavailable("the original changed while it was read; retry")
        return source

    def _derive(self, original: Original, spec: DerivationSpec) -> Derived:
        """From the pyramid when there is one; from the original's intermediate when the target fits
        in it; else from the original (keeping an intermediate). Never from a huge original."""
        max_pixels, max_output_pixels = self.settings.max_pixels, self.settings.max_output_pixels
        pyramid = self.pyramids.source(original) if huge.worth_a_look(self, original) else None
        if (pyramid is not None and needs_base(pyramid.info, spec) and not huge.is_huge(self, original)
                and not huge.is_multichannel(self, original)):
            pyramid = None  # a size only the base level has: from the original, not a JPEG copy of it
        if pyramid is None and (huge.too_big_to_read(self, original) or huge.is_multichannel(self, original)):
            pyramid = self.pyramids.source(original, fresh=True)  # built a moment ago by another process?
            if pyramid is None:
                raise huge.pending(self, original)
        if pyramid is not None:
            return self._from_pyramid(pyramid, spec)
        have = self.intermediates.get(original)
        if have is not None and have.fits(resample_target(have.shown, have.turn, spec)):
            self._count("from_intermediate")
            testpoints.reach("derive")
            return derive(have.data, spec, stand_in=have, max_pixels=max_pixels, max_output_pixels=max_output_pixels,
                          resample=self.settings.resample_filter)
        source = self.read_original(original)
        testpoints.reach("derive")
        try:
            derived = derive(source, spec, keep=self.intermediates.wish(have), max_pixels=max_pixels,
                             max_output_pixels=max_output_pixels, resample=self.settings.resample_filter)
        except PayloadTooLarge:
            if not (self.pyramids.enabled and huge.is_huge(self, original)):
                raise
            pyramid = self.pyramids.source(original, fresh=True)
            if pyramid is None:
                raise huge.pending(self, original) from None
            return self._from_pyramid(pyramid, spec)
        del source
        if heap.release_after_decode(derived.decoded_pixels):
            self._count("heap_trims")
        if derived.intermediate is not None:
            self.intermediates.keep(original, derived.intermediate)
            self._count("intermediates_kept")
        return derived

    def _from_pyramid(self, pyramid: TiledSource, spec: DerivationSpec) -> Derived:
        self._count("from_pyramid")
        return derive_from_source(pyramid, spec, max_pixels=self.settings.max_pixels,
                                  max_output_pixels=self.settings.max_output_pixels,
                                  resample=self.settings.resample_filter)

    def cached_in_store(self, original: Original, spec: DerivationSpec) -> str:
        """The derived key, made and written to the authoritative cache store if it is not there."""
        key = names.derived_key(original.name, original.version, spec)
        bottom = bottom_level(self.cache)
        if bottom.stat(key) is None:
            rendered = self.render(original, spec)
            if bottom.stat(key) is None:
                bottom.put(key, rendered.data, rendered.content_type, {"source-version": original.version[:128]})
        return key

    def temp_url(
        self, original: Original, spec: DerivationSpec, sign_own: Callable[[str], tuple[str, int]]
    ) -> tuple[str, int]:
        """A temporary URL to the derived image: the cache store's own (Swift/S3), else ours."""
        if not self.settings.url_keys():
            raise NotConfigured("url=true needs url_key to be set in the server's configuration")
        key = self.cached_in_store(original, spec)
        bottom = bottom_level(self.cache)
        if isinstance(bottom, SupportsTempUrl):
            return bottom.temp_url(key, "GET", self.settings.url_lifetime)
        return sign_own(key)

    def get_derived(self, key: str) -> tuple[bytes, str]:
        """A derived object by key (for the server's own signed URLs)."""
        data, info = self.cache.get_with_info(key)
        return data, info.content_type or "application/octet-stream"

    def original_bytes(self, original: Original) -> bytes:
        """The stored original byte for byte (``original=true``)."""
        return self.store.get(original.ref.key)

    def metadata(self, original: Original) -> dict[str, object]:
        """What meta=true answers (meta.py)."""
        return meta.metadata(self, original)

    # -- writes (writes.py) --------------------------------------------------------------
    def upload(self, target: str, data: bytes, filename: str | None = None, *, replace: bool = False,
               expected_sha256: str | None = None) -> Uploaded:
        """Store ``data`` as the original of the name ``target`` implies (writes.upload)."""
        return writes.upload(self, target, data, filename, replace=replace, expected_sha256=expected_sha256)

    def delete(self, name: str) -> None:
        """Remove the original (every stored form of it) and its derivatives."""
        writes.delete(self, name)

    def replaced(self, name: str, *, had_original: bool) -> None:
        """After ``name``'s original was written or removed (writes.replaced)."""
        writes.replaced(self, name, had_original=had_original)

    # -- several images ------------------------------------------------------------------
    def select(self, path: str, regex: str | None) -> list[str]:
        """The names a multi-image request selects: under the directory ``path``, matching ``regex``."""
        prefix = path if path == "" or path.endswith("/") else path + "/"
        if prefix:
            self.validate_name(prefix.rstrip("/"))
        selected = self.list_names(regex, prefix=prefix)
        if not selected:
            if regex is not None:
                raise NotFound(f"No images match '{prefix}  regex={regex}'")
            raise NotFound(f"No images found in '{prefix or '/'}'")
        return selected

    def stats(self) -> dict[str, object]:
        levels = getattr(self.cache, "stats", None)
        return {"counters": self.counters(), "cache": levels() if callable(levels) else {},
                "store_gate": self.gate.stats()}

    def ready(self) -> dict[str, str]:
        """Whether each store answers; raises StorageUnavailable naming the first that does not."""
        for label, store in (("store", self.store), ("cache_store", bottom_level(self.cache))):
            try:
                store.stat(".readyz-probe")
            except StorageUnavailable as exc:
                raise StorageUnavailable(f"{label} unavailable: {exc.message}") from None
        return {"store": "ok", "cache_store": "ok"}


def bottom_level(store: ObjectStore) -> ObjectStore:
    """The authoritative level of a stacked cache (the store itself if it is not stacked)."""
    levels = getattr(store, "levels", None)
    return levels[-1] if levels else store


def same_bytes(info: ObjectInfo, data: bytes) -> bool:
    """Whether ``data`` are the bytes ``info`` describes (False when it has no SHA-256 to tell by)."""
    return info.sha256 is not None and len(data) == info.size and sha256_hex(data) == info.sha256


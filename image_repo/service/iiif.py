"""IIIF in the service: the TiledSource of an original, and answers made once and cached like every derivative.

The source is the original's pyramid when it has a ready one (``service.pyramids``, from
the pyramids part), else a WholeImageSource over the original (service/whole.py). What a
whole-image source needs to know of its original (size, EXIF turn) is read from the header
once per version and kept in the cache store beside the derivatives, so info.json and 304s
do not read the original again. Answers are derived objects under the original's
checksum and the request's canonical key (iiif/request.py), through ImageService.produce:
the cache levels, single flight per process and host, the derivation limiter.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from cachetools import LRUCache

from .. import names
from ..cache.memory import MemoryCache
from ..errors import NotFound, PayloadTooLarge, StorageUnavailable
from ..iiif import ImageRequest, Resolved, check_quality
from ..iiif.params import INLINE, QUALITIES
from ..imaging.rendering import parse_inline
from ..imaging.formats import KINDS
from ..imaging.intermediate import Intermediate
from ..pyramids.source import TiledSource
from ..storage.base import ObjectInfo
from . import huge, tiles
from .renderings import Renderings, default_of
from .whole import Described, WholeImageSource, describe, whole_info

if TYPE_CHECKING:
    from .images import ImageService, Original, Rendered

log = logging.getLogger("image_repo.service")

DESCRIBED_VERSION = "1"
WHOLE_READ_LIMIT = 512 * 2**20
"""Originals larger than this are never read whole to serve IIIF: they wait for their pyramid."""


class IIIFImages:
    """The IIIF side of an ImageService."""

    def __init__(self, service: ImageService, *, tile_size: int = 512) -> None:
        self.service = service
        self.tile_size = tile_size
        self._described: LRUCache[tuple[str, str], Described] = LRUCache(maxsize=4096)
        self._lock = threading.Lock()
        levels = getattr(service.cache, "levels", [service.cache])
        self.memory: MemoryCache | None = levels[0] if isinstance(levels[0], MemoryCache) else None

    def source(self, original: Original) -> TiledSource:
        """The original's ready pyramid, else a whole-image source over the original; an original
        beyond max_pixels waits for its pyramid (503 with Retry-After, or 422 when it failed)."""
        svc, pyramids = self.service, self.service.pyramids
        found: TiledSource | None = pyramids.source(original)
        if found is not None:
            return found
        if pyramids.enabled and (huge.too_big_to_read(svc, original) or huge.is_huge(svc, original)
                                 or huge.is_multichannel(svc, original)):
            found = pyramids.source(original, fresh=True)  # built a moment ago by another process?
            if found is None:
                raise huge.pending(svc, original)
            return found
        return self.whole(original)

    def whole(self, original: Original) -> WholeImageSource:
        svc = self.service
        described = self.described(original)
        settings = svc.settings

        def keep(made: Intermediate) -> None:
            svc.intermediates.keep(original, made)
            svc.count("intermediates_kept")

        return WholeImageSource(
            whole_info(described, self.tile_size), described,
            read_original=lambda: self._read_whole(original),
            intermediate=lambda: svc.intermediates.get(original),
            keep=keep if svc.intermediates.enabled else None,
            max_pixels=settings.max_pixels, resample=settings.resample_filter,
        )

    def extra_qualities(self, original: Original, source: TiledSource | None = None) -> tuple[str, ...]:
        """Qualities this image has beyond the API's: the saved renderings of a multichannel image."""
        if source is None:
            source = self.source(original)
        return self.service.renderings.names_for(original, source)

    def resolve(self, original: Original, source: TiledSource, request: ImageRequest) -> Resolved:
        """``request`` in pixels of ``source``, its quality made effective (400s name the part).

        On a multichannel image every quality is a rendering: ``default`` (and ``color``, ``gray``,
        ``bitonal``) its default one, a saved rendering's name that one, ``channels:...`` inline."""
        info = source.info
        quality, rendering = request.quality, None
        if quality.startswith(INLINE):
            rendering = parse_inline(quality[len(INLINE):], "quality")
            Renderings.check(source, rendering, "quality")
        elif info.photometric == "channels" and quality not in QUALITIES:
            rendering = self.service.renderings.named(original, quality, "quality")
        else:
            check_quality(quality, self.extra_qualities(original, source) if quality not in QUALITIES else ())
        resolved = request.resolve(info.width, info.height, max_area=self.service.settings.max_output_pixels)
        if info.photometric == "channels" and rendering is None:
            rendering = default_of(info)
        quality = tiles.effective_quality(resolved.quality, info)
        if quality == resolved.quality and rendering is None:
            return resolved
        return replace(resolved, quality=quality, rendering=rendering)

    def etag(self, original: Original, resolved: Resolved) -> str:
        return self.service.etag(original, resolved)

    def image(self, original: Original, source: TiledSource, resolved: Resolved) -> Rendered:
        """The encoded answer: a cache hit, a stored tile as it is, or a render of the region."""
        svc = self.service
        key = names.derived_key(original.name, original.version, resolved)
        tile = tiles.stored_tile_at(source.info, resolved)
        if tile is not None:
            stored = self.stored_tile(original, source, resolved, tile, self.etag(original, resolved))
            if stored is not None:
                return stored

        def make() -> bytes:
            with svc.slot():
                data = tiles.render(source, resolved, resample=svc.settings.resample_filter)
            svc.count("iiif_renders")
            return data

        # An edge tile (no stored file of its own) is rendered, and kept in this host's levels
        # only, like a stored tile: the cache store holds its pixels already, in the pyramid.
        return svc.produce(original, key, KINDS[resolved.format].content_type, self.etag(original, resolved), make,
                           local_only=tile is not None)

    def stored_tile(self, original: Original, source: TiledSource, resolved: Resolved,
                    tile: tuple[int, int, int], etag: str | None = None) -> Rendered | None:
        """One stored tile as it is (``tile``: level, column, row), or None when it has no bytes of its own.

        Kept in this worker's memory level only. Reading it again costs one pread, or a slice of
        a chunk the host already holds (pyramids/chunks.py): less than the host-wide lock and
        the disk write of a derivation, so it takes neither.
        """
        key = names.derived_key(original.name, original.version, resolved)
        etag = etag or self.etag(original, resolved)
        hit = self.memory_hit(resolved, key, etag)
        if hit is not None:
            return hit
        found = source.stored_tile(*tile)
        if found is None:
            return None
        self.service.count("tiles_passed_through")
        content_type = KINDS[resolved.format].content_type
        if self.memory is not None:
            self.memory.fill(key, found, ObjectInfo(key, len(found), content_type,
                                                    metadata={"source-version": original.version[:128]}))
        return _rendered(found, content_type, etag, cached=False)

    def memory_hit(self, resolved: Resolved, key: str, etag: str) -> Rendered | None:
        """The answer under ``key`` from this worker's memory level, or None (the other levels are not asked)."""
        if self.memory is None:
            return None
        try:
            data, _ = self.memory.get_with_info(key)
        except NotFound:
            return None
        self.service.count("cache_hits")
        return _rendered(data, KINDS[resolved.format].content_type, etag, cached=True)

    # -- what an original is ------------------------------------------------------------------

    def described(self, original: Original) -> Described:
        """Size and turn of the original: remembered, else stored beside its derivatives, else its header."""
        memo_key = (original.name, original.version)
        with self._lock:
            known = self._described.get(memo_key)
        if known is not None:
            return known
        key = f"{names.derived_prefix(original.name)}{original.version}.iiif-described.v{DESCRIBED_VERSION}"
        found = None
        try:
            found = Described.from_json(self.service.cache.get(key))
        except NotFound:
            pass
        except StorageUnavailable:
            log.warning("cache unavailable while reading %s", key)
        if found is None:
            found = describe(self._read_whole(original), max_pixels=self.service.settings.max_pixels)
            put = getattr(self.service.cache, "put_behind", self.service.cache.put)
            try:
                put(key, found.to_json(), "application/json", {"source-version": original.version[:128]})
            except StorageUnavailable:
                log.warning("could not keep %s", key)
        with self._lock:
            self._described[memo_key] = found
        return found

    def _read_whole(self, original: Original) -> bytes:
        if original.info.size > WHOLE_READ_LIMIT:
            raise PayloadTooLarge(
                f"'{original.name}' is {original.info.size / 2**20:.0f} MB and has no pyramid yet; "
                "it is served through IIIF once its pyramid is built"
            )
        return self.service.read_original(original)


def _rendered(data: bytes, content_type: str, etag: str, *, cached: bool) -> Rendered:
    from .images import Rendered  # images.py imports this module

    return Rendered(data, content_type, etag, cached=cached)

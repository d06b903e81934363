"""Originals beyond max_pixels (up to max_pyramid_pixels): accepted by header, never decoded or
read whole, served from their pyramid once it is built (a 503 with Retry-After until then)."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from ..errors import ImageRepoError, PayloadTooLarge, Pending, UnprocessableImage
from ..imaging import probe
from ..imaging.decode import ImageInfo
from ..pyramids.header import Header, check_huge, header_of_bytes, header_of_object

if TYPE_CHECKING:
    from .images import ImageService
    from .originals import Original

LOOK_FOR_PYRAMID_BYTES = 4 * 2**20
"""With a remote cache store, originals smaller than this are derived from their bytes without
asking for a pyramid first (unless they turn out to be beyond max_pixels): their decode costs
less than the round trip of the question."""
READ_WHOLE_BYTES = 32 * 2**20
"""Originals larger than this have their header read first: a huge one must not be read whole."""
_headers: LRUCache[str, Header] = LRUCache(maxsize=4096)
_lock = threading.Lock()


def worth_a_look(svc: ImageService, original: Original) -> bool:
    """Whether to ask for a pyramid before deriving from the original's bytes."""
    if not svc.pyramids.enabled:
        return False
    return bool(getattr(svc.pyramids.bottom, "local", False)) or original.info.size > LOOK_FOR_PYRAMID_BYTES


def header(svc: ImageService, original: Original) -> Header:
    """The original's header (remembered per version), from a few ranged reads."""
    key = f"{original.ref.key}\n{original.version}"
    with _lock:
        hit = _headers.get(key)
    if hit is None:
        hit = header_of_object(svc.store, original.ref.key, original.info.size)
        with _lock:
            _headers[key] = hit
    return hit


def is_huge(svc: ImageService, original: Original) -> bool:
    """Beyond max_pixels: served from a pyramid only."""
    try:
        h = header(svc, original)
    except ImageRepoError:
        return False
    return h.width * h.height > svc.settings.max_pixels


def is_multichannel(svc: ImageService, original: Original) -> bool:
    """A TIFF of N channels: served from its pyramid only (renderings composite its channels)."""
    if original.ref.kind.name != "tif":
        return False
    try:
        return header(svc, original).multichannel
    except ImageRepoError:
        return False


def multichannel_bytes(data: bytes) -> bool:
    """Whether an upload is a TIFF of N channels (its header only)."""
    try:
        return header_of_bytes(data).multichannel
    except ImageRepoError:
        return False


def too_big_to_read(svc: ImageService, original: Original) -> bool:
    """Large in bytes and beyond max_pixels: not even its bytes are read whole."""
    return svc.pyramids.enabled and original.info.size > READ_WHOLE_BYTES and is_huge(svc, original)


def pending(svc: ImageService, original: Original) -> ImageRepoError:
    """What a request that needs ``original``'s pyramid gets while there is none (a build is queued)."""
    status = svc.pyramids.status(original)
    if status["state"] == "failed":
        return UnprocessableImage(f"this image's pyramid could not be built: {status.get('reason')}")
    if status["state"] == "absent":
        svc.pyramids.request(original.name, original.ref.key, original.info)
    return Pending(f"this image is {status['state'] if status['state'] != 'absent' else 'queued'} "
                   "for a tiled pyramid; retry later")


def metadata(svc: ImageService, original: Original) -> dict[str, Any]:
    """meta=true of a huge original: what its header and the store say, and its pyramid."""
    h = header(svc, original)
    return {
        "name": original.name,
        "key": original.ref.key,
        "bytes": original.info.size,
        "sha256": original.info.sha256,
        "content_type": original.info.content_type or h.kind.content_type,
        "format": h.kind.name,
        "width": h.width,
        "height": h.height,
        "bands": h.bands,
        "bits": 16 if h.format in ("ushort", "short") else 8,
        "frames": h.pages,
        "pyramid": svc.pyramids.status(original),
    }


def probe_upload(svc: ImageService, data: bytes) -> ImageInfo:
    """An upload's kind and size: decoded (its first frame) up to max_pixels; beyond that, by header only
    (JPEG, PNG and TIFF up to max_pyramid_pixels; any other kind that big stays a 413)."""
    try:
        return probe(data, max_pixels=svc.settings.max_pixels)
    except PayloadTooLarge as too_large:
        if not svc.pyramids.enabled:
            raise
        try:
            h = header_of_bytes(data)
        except ImageRepoError:
            raise too_large from None
    except UnprocessableImage as unreadable:
        # Pillow reads no TIFF of several planes of samples (planar-separate, 16-bit channels):
        # such a file is a multichannel original, served from its pyramid only, read by libvips and tifffile.
        if not svc.pyramids.enabled or not data.startswith((b"II", b"MM")):
            raise
        try:
            h = header_of_bytes(data)
        except ImageRepoError:
            raise unreadable from None
        if not h.multichannel:
            raise
    check_huge(h, svc.settings.max_pyramid_pixels, len(data))
    return ImageInfo(h.kind, h.width, h.height, h.kind.content_type, h.pages)

"""What ``meta=true`` answers: the original's own metadata (from its header alone when it is huge
or multichannel), its pyramid's state, and for a multichannel image its channels and renderings."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import PayloadTooLarge
from ..imaging import read_metadata
from ..storage.base import sha256_hex
from . import huge

if TYPE_CHECKING:
    from .images import ImageService
    from .originals import Original


def metadata(svc: ImageService, original: Original) -> dict[str, object]:
    """meta=true of ``original``."""
    if huge.too_big_to_read(svc, original) or (svc.pyramids.enabled and huge.is_multichannel(svc, original)):
        return channels_meta(svc, original, huge.metadata(svc, original))
    source = svc.store.get(original.ref.key)
    try:
        meta = read_metadata(source, include_gps=svc.settings.expose_gps)
    except PayloadTooLarge:  # past Pillow's own limit: the header is all we read of it
        return channels_meta(svc, original, huge.metadata(svc, original))
    out: dict[str, object] = {
        "name": original.name,
        "key": original.ref.key,
        "bytes": len(source),
        "sha256": original.info.sha256 or sha256_hex(source),
        "content_type": original.info.content_type or original.ref.kind.content_type,
        **meta,
    }
    if svc.pyramids.enabled:
        out["pyramid"] = svc.pyramids.status(original)
    return out


def channels_meta(svc: ImageService, original: Original, out: dict[str, object]) -> dict[str, object]:
    """With a ready multichannel pyramid: its channels (names, dtype, statistics) and renderings."""
    pyramid = svc.pyramids.source(original, fresh=True) if svc.pyramids.enabled else None
    if pyramid is not None:
        out.update(svc.renderings.describe(pyramid, original))
    return out

"""Where intermediates live: one per original version, in the derived-image cache.

The key is ``<name>/.d/<original version>.intermediate.v<N>``: under the derived prefix,
so a replaced or deleted original drops it with its derivatives, and tied to the
original's version, so a stale one is never used. It is written like a derivative (the
cache levels now, a remote cache store behind the answer) and can be deleted at any time:
the next derivation from the original makes it again. It only ever grows (up to
``max_side``): a derivation that decodes the original larger than the stored
intermediate replaces it.
"""
from __future__ import annotations

import logging

from .. import names
from ..errors import NotFound, StorageUnavailable
from ..imaging.intermediate import MAX_SIDE, Intermediate, Wish
from ..imaging.spec import DERIVE_VERSION
from ..storage.base import ObjectStore
from .originals import Original

log = logging.getLogger("image_repo.service")


class Intermediates:
    """Intermediates of originals in ``cache`` (a TieredStore or any ObjectStore); ``max_side`` 0 disables."""

    def __init__(self, cache: ObjectStore, max_side: int = MAX_SIDE) -> None:
        self.cache = cache
        self.max_side = max_side

    @property
    def enabled(self) -> bool:
        return self.max_side > 0

    @staticmethod
    def key(original: Original) -> str:
        return f"{names.derived_prefix(original.name)}{original.version}.intermediate.v{DERIVE_VERSION}"

    def get(self, original: Original) -> Intermediate | None:
        """The stored intermediate of this version of the original, or None (also when the cache fails)."""
        if not self.enabled:
            return None
        try:
            data, info = self.cache.get_with_info(self.key(original))
        except NotFound:
            return None
        except StorageUnavailable as e:
            log.warning("cache unavailable while reading an intermediate of %s: %s", original.name, e)
            return None
        return Intermediate.stored(data, dict(info.metadata), info.content_type)

    def wish(self, have: Intermediate | None) -> Wish | None:
        """What to ask derive() to keep, given what is stored."""
        if not self.enabled:
            return None
        return Wish(self.max_side, None if have is None else (have.width, have.height))

    def keep(self, original: Original, made: Intermediate) -> None:
        """Store ``made`` (best effort: it can always be made again)."""
        metadata = {"source-version": original.version[:128], **made.metadata()}
        put = getattr(self.cache, "put_behind", self.cache.put)
        try:
            put(self.key(original), made.data, made.content_type, metadata)
        except StorageUnavailable:
            log.warning("could not keep the intermediate of %s", original.name)

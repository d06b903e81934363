"""Objects larger than memory, over any ObjectStore: store a local file, create-if-absent, and
read an object as a seekable file through ranged GETs.

Each uses the store's own capability where it has one (``put_file``, ``create``) and falls
back to what every store can do.
"""
from __future__ import annotations

import io
import logging
import os
from collections import OrderedDict
from collections.abc import Mapping

from .base import ObjectInfo, ObjectStore, SupportsCreate, SupportsPutFile

log = logging.getLogger("image_repo.storage")


def put_file(store: ObjectStore, key: str, path: str, content_type: str | None = None,
             metadata: Mapping[str, str] | None = None) -> ObjectInfo:
    """Store the local file ``path`` under ``key`` whole or not at all; the file may be moved or removed.

    Streamed where the store can (file: a rename; Swift: a streamed PUT or a Static Large
    Object; S3: a multipart upload); read whole only by stores that live in memory anyway.
    """
    if isinstance(store, SupportsPutFile):
        return store.put_file(key, path, content_type, metadata)
    put_stream = getattr(store, "put_stream", None)
    with open(path, "rb") as f:
        if callable(put_stream):
            info: ObjectInfo = put_stream(key, iter(lambda: f.read(1 << 20), b""), content_type, metadata)
            return info
        return store.put(key, f.read(), content_type, metadata)


def create_if_absent(store: ObjectStore, key: str, data: bytes, content_type: str | None = None) -> bool:
    """Create ``key`` only if it is free, atomically where the store can say so; False if it was taken."""
    if isinstance(store, SupportsCreate):
        return store.create(key, data, content_type)
    # A store with no conditional write (a test wrapper): the best it can do, not atomic.
    log.debug("store %s has no create(): %r is created by stat then put", store.url, key)
    if store.stat(key) is not None:
        return False
    store.put(key, data, content_type)
    return True


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over ``store.get_range(key, ...)``, reading ``block`` bytes at a
    time and keeping the last ``blocks`` of them: enough for a TIFF reader to walk its IFDs
    (GDAL's /vsicurl/ reads the same way) without fetching the object."""

    def __init__(self, store: ObjectStore, key: str, size: int, *, block: int = 1 << 16, blocks: int = 64) -> None:
        super().__init__()
        self.store, self.key, self.size = store, key, size
        self.block, self.blocks = block, blocks
        self.pos = 0
        self.requests = 0
        self._cache: OrderedDict[int, bytes] = OrderedDict()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def _block(self, n: int) -> bytes:
        data = self._cache.get(n)
        if data is None:
            data = self.store.get_range(self.key, n * self.block, self.block)
            self.requests += 1
            self._cache[n] = data
            if len(self._cache) > self.blocks:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(n)
        return data

    def read(self, size: int = -1) -> bytes:
        end = self.size if size is None or size < 0 else min(self.size, self.pos + size)
        if end <= self.pos:
            return b""
        if end - self.pos > self.block * self.blocks // 2:  # a big read: one request, not cached
            data = self.store.get_range(self.key, self.pos, end - self.pos)
            self.requests += 1
        else:
            parts = []
            for n in range(self.pos // self.block, (end - 1) // self.block + 1):
                blk = self._block(n)
                lo = max(self.pos - n * self.block, 0)
                parts.append(blk[lo:end - n * self.block])
            data = b"".join(parts)
        self.pos += len(data)
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

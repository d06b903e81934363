"""MemoryStore: a thread-safe in-process ObjectStore for tests and ``memory://`` URLs."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping, MutableMapping

from ..errors import NotFound
from .base import ObjectInfo, check_key, check_range, check_metadata, guess_content_type, sha256_hex


class MemoryStore:
    """A dict of key -> (bytes, ObjectInfo) behind a lock; each instance starts empty."""

    create_is_atomic = True

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._lock = threading.Lock()
        self._objects: MutableMapping[str, tuple[bytes, ObjectInfo]] = {}

    @classmethod
    def from_url(cls, url: str, settings: object = None) -> MemoryStore:
        """A fresh, empty store (two opens of one URL do not share data)."""
        return cls(url)

    def get(self, key: str) -> bytes:
        """The object's bytes; NotFound if absent."""
        return self.get_with_info(key)[0]

    def get_with_info(self, key: str) -> tuple[bytes, ObjectInfo]:
        """Bytes and info, read together under the lock."""
        with self._lock:
            item = self._objects.get(key)
        if item is None:
            raise NotFound(f"no object {key!r}")
        return item

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """A slice of the object's bytes (fewer at its end); NotFound if absent."""
        check_range(start, length)
        return self.get_with_info(key)[0][start:start + length]

    def create(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """put() only if ``key`` is free; False if an object is there."""
        check_key(key)
        info = ObjectInfo(key=key, size=len(data), content_type=content_type or guess_content_type(key),
                          sha256=sha256_hex(data), modified=time.time())
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = (bytes(data), info)
        return True

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Store a copy of ``data`` with its SHA-256."""
        check_key(key)
        info = ObjectInfo(
            key=key,
            size=len(data),
            content_type=content_type or guess_content_type(key),
            sha256=sha256_hex(data),
            modified=time.time(),
            metadata=check_metadata(metadata),
        )
        self.fill(key, data, info)
        return info

    def fill(self, key: str, data: bytes, info: ObjectInfo) -> None:
        """Keep ``data`` under ``key`` with the ``info`` given (no re-hash)."""
        item = (bytes(data), info)  # a caller's bytearray must not change what we hold
        with self._lock:
            self._objects[key] = item

    def stat(self, key: str) -> ObjectInfo | None:
        """Info for ``key``, or None."""
        with self._lock:
            item = self._objects.get(key)
        return None if item is None else item[1]

    def stat_first(self, keys: Iterable[str]) -> ObjectInfo | None:
        """Info of the first of ``keys`` that exists (as FileStore.stat_first)."""
        with self._lock:
            for key in keys:
                item = self._objects.get(key)
                if item is not None:
                    return item[1]
        return None

    def delete(self, key: str) -> None:
        """Remove ``key``; NotFound if absent."""
        with self._lock:
            if self._objects.pop(key, None) is None:
                raise NotFound(f"no object {key!r}")

    def list(self, prefix: str = "", marker: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` after ``marker`` in key order, from a snapshot taken now."""
        with self._lock:
            infos = [info for k, (_, info) in self._objects.items() if k.startswith(prefix) and k > marker]
        infos.sort(key=lambda i: i.key)
        return iter(infos)

    def close(self) -> None:
        """Drop the data."""
        with self._lock:
            self._objects.clear()

    def __repr__(self) -> str:
        return f"MemoryStore({self.url!r})"

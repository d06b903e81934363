"""MemoryCache: a byte-bounded LRU of objects in this process, as an ObjectStore."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping

from cachetools import LRUCache

from ..errors import NotFound
from ..storage.base import ObjectInfo, sha256_hex
from ..storage.memory import check_key, check_metadata, guess_content_type
from .stats import Counters

Entry = tuple[bytes, ObjectInfo]


class _CountingLRU(LRUCache[str, Entry]):
    """An LRUCache that reports what it evicts (cachetools evicts through popitem)."""

    def __init__(self, maxsize: int, getsizeof: Callable[[Entry], int], on_evict: Callable[[], None]) -> None:
        super().__init__(maxsize=maxsize, getsizeof=getsizeof)
        self._on_evict = on_evict

    def popitem(self) -> tuple[str, Entry]:
        item = super().popitem()
        self._on_evict()
        return item


def _entry_size(entry: Entry) -> int:
    return len(entry[0]) + len(entry[1].key)


class MemoryCache:
    """Keys -> (bytes, ObjectInfo), at most ``max_bytes`` of data; bigger items than ``max_item_bytes`` are not kept."""

    def __init__(self, max_bytes: int, max_item_bytes: int | None = None, url: str = "memory-cache://") -> None:
        self.url = url
        self.max_bytes = max_bytes
        self.max_item_bytes = min(max_item_bytes or max_bytes, max_bytes)
        self.counters = Counters()
        self._lock = threading.Lock()
        self._lru = _CountingLRU(max(max_bytes, 1), _entry_size, lambda: self.counters.add("evictions"))

    def get(self, key: str) -> bytes:
        """The cached bytes; NotFound on a miss."""
        return self.get_with_info(key)[0]

    def get_with_info(self, key: str) -> tuple[bytes, ObjectInfo]:
        """The cached bytes and info (marks the entry recently used); NotFound on a miss."""
        with self._lock:
            entry = self._lru.get(key)
        if entry is None:
            self.counters.add("misses")
            raise NotFound(f"not cached: {key!r}")
        self.counters.add("hits")
        return entry

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Cache ``data`` (if it fits) and return its info."""
        check_key(key)
        info = ObjectInfo(key, len(data), content_type or guess_content_type(key), sha256_hex(data), None,
                          time.time(), check_metadata(metadata))
        self.fill(key, data, info)
        return info

    def fill(self, key: str, data: bytes, info: ObjectInfo) -> None:
        """Cache ``data`` with the ``info`` a slower level gave (no re-hash)."""
        entry = (bytes(data), info)
        with self._lock:
            if _entry_size(entry) > self.max_item_bytes:
                self._lru.pop(key, None)  # never leave an older version behind
                return
            self._lru[key] = entry
        self.counters.add("puts")

    def stat(self, key: str) -> ObjectInfo | None:
        """Info of a cached entry (marks it recently used), or None."""
        with self._lock:
            entry = self._lru.get(key)
        return None if entry is None else entry[1]

    def delete(self, key: str) -> None:
        """Forget ``key``; NotFound if it was not cached."""
        with self._lock:
            if self._lru.pop(key, None) is None:
                raise NotFound(f"not cached: {key!r}")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Cached entries under ``prefix`` in key order (a snapshot)."""
        with self._lock:
            infos = [e[1] for k, e in self._lru.items() if k.startswith(prefix)]
        return iter(sorted(infos, key=lambda i: i.key))

    @property
    def current_bytes(self) -> int:
        """Bytes held now (never more than ``max_bytes``)."""
        with self._lock:
            return int(self._lru.currsize)

    def stats(self) -> dict[str, int]:
        """Counters plus current bytes and items."""
        with self._lock:
            extra = {"bytes": int(self._lru.currsize), "items": len(self._lru), "max_bytes": self.max_bytes}
        return {**self.counters.snapshot(), **extra}

    def close(self) -> None:
        """Drop everything."""
        with self._lock:
            self._lru.clear()

    def __repr__(self) -> str:
        return f"MemoryCache(max_bytes={self.max_bytes})"

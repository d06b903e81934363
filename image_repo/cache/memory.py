"""MemoryCache: a byte-bounded LRU of objects in this process, as an ObjectStore."""
from __future__ import annotations

from collections.abc import Callable

from cachetools import LRUCache

from ..errors import NotFound
from ..storage.base import ObjectInfo
from ..storage.memory import MemoryStore
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


class MemoryCache(MemoryStore):
    """A MemoryStore holding at most ``max_bytes`` of data, least recently used dropped first.

    Items bigger than ``max_item_bytes`` are not kept.
    """

    def __init__(self, max_bytes: int, max_item_bytes: int | None = None, url: str = "memory-cache://") -> None:
        super().__init__(url)
        self.max_bytes = max_bytes
        self.max_item_bytes = min(max_item_bytes or max_bytes, max_bytes)
        self.counters = Counters("memory", ("evictions",))
        self._objects = _CountingLRU(max(max_bytes, 1), _entry_size, lambda: self.counters.add("evictions"))

    def get_with_info(self, key: str) -> tuple[bytes, ObjectInfo]:
        """The cached bytes and info (marks the entry recently used); NotFound on a miss."""
        try:
            entry = super().get_with_info(key)
        except NotFound:
            self.counters.add("misses")
            raise
        self.counters.add("hits")
        return entry

    def fill(self, key: str, data: bytes, info: ObjectInfo) -> None:
        """Cache ``data`` with the ``info`` a slower level gave (no re-hash), if it fits."""
        if len(data) + len(key) > self.max_item_bytes:
            with self._lock:
                self._objects.pop(key, None)  # never leave an older version behind
            return
        super().fill(key, data, info)
        self.counters.add("puts")

    @property
    def current_bytes(self) -> int:
        """Bytes held now (never more than ``max_bytes``)."""
        with self._lock:
            return int(self._lru.currsize)

    @property
    def _lru(self) -> _CountingLRU:
        assert isinstance(self._objects, _CountingLRU)
        return self._objects

    def stats(self) -> dict[str, int]:
        """Counters plus current bytes and items."""
        with self._lock:
            extra = {"bytes": int(self._lru.currsize), "items": len(self._lru), "max_bytes": self.max_bytes}
        return {**self.counters.snapshot(), **extra}

    def __repr__(self) -> str:
        return f"MemoryCache(max_bytes={self.max_bytes})"

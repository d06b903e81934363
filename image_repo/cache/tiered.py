"""TieredStore: ObjectStores stacked fastest first, itself an ObjectStore; and build_cache().

Reads go top-down and copy a hit into the faster levels above it. Writes go to the bottom
(authoritative) level first, then upward, so a failed bottom write leaves no cache entry that
the store does not have. Upper levels are caches: their failures are logged and counted,
never raised. ``put_behind`` writes the bottom level from a small bounded thread pool so a
request does not wait for the cache store (the Swift case); a local bottom level (a
``file://`` store) is written at once, as cheap as the disk cache would be.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from ..config.settings import Settings
from ..errors import NotFound
from ..host.storegate import exempt_thread
from ..storage.base import ObjectInfo, ObjectStore, check_key, check_metadata, get_ranges, guess_content_type, sha256_hex
from ..storage.large import create_if_absent, put_file
from .disk import DiskCache
from .memory import MemoryCache
from .stats import Counters

log = logging.getLogger("image_repo.cache")


class TieredStore:
    """Levels of one ObjectStore interface, fastest first; the last level is authoritative."""

    def __init__(self, levels: Sequence[ObjectStore], *, behind_workers: int = 2, behind_queue: int = 64) -> None:
        if not levels:
            raise ValueError("TieredStore needs at least one level")
        self.levels: list[ObjectStore] = list(levels)
        self.bottom = self.levels[-1]
        self.url = "tiered:" + "|".join(level.url for level in self.levels)
        # Hits, misses, writes and errors of each level as this stack sees them; evictions are the levels' own.
        self._counters = [Counters(level_name(level, level is self.bottom), ("hits", "misses", "puts", "errors"))
                          for level in self.levels]
        # A local bottom level costs no more than the disk cache: write it before answering,
        # so another worker of the host finds the result there as soon as our lock is released.
        self._behind = not getattr(self.bottom, "local", False)
        self._behind_workers = behind_workers
        self._slots = threading.BoundedSemaphore(behind_workers + behind_queue)
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        """The bytes from the fastest level that has them; NotFound if none has."""
        return self.get_with_info(key)[0]

    def get_with_info(self, key: str) -> tuple[bytes, ObjectInfo]:
        """Bytes and info from the fastest level that has them, copied into the levels above it."""
        return self._get(key, self.levels)

    def get_local(self, key: str) -> tuple[bytes, ObjectInfo]:
        """Like ``get_with_info`` from the levels on this host only: a remote bottom level is not asked.

        For a second look after taking a derivation lock: what another worker of the host made
        is in a level it shares with us (disk, or a local bottom), written before its lock was released.
        """
        return self._get(key, self.levels if getattr(self.bottom, "local", False) else self.levels[:-1])

    def _get(self, key: str, levels: Sequence[ObjectStore]) -> tuple[bytes, ObjectInfo]:
        for i, level in enumerate(levels):
            try:
                data, info = level.get_with_info(key)
            except NotFound:
                self._counters[i].add("misses")
                continue
            except Exception as e:  # an upper level's failure is a miss
                if level is self.bottom:
                    raise
                self._upper_failed(i, "get", key, e)
                continue
            self._counters[i].add("hits")
            self._fill(range(i - 1, -1, -1), key, data, info)
            return data, info
        raise NotFound(f"no object {key!r}")

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """A range from the fastest level holding the whole object, else from the bottom level.

        Nothing is copied upward: a range is a tile of an object that may be GBs (a pyramid),
        which must never be pulled into the memory or disk level.
        """
        return self._range_level(key, start, length)[1]

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Several ranges: all from the level that has the first, in one request where it can."""
        if not ranges:
            return []
        level, first = self._range_level(key, *ranges[0])
        return [first, *get_ranges(level, key, ranges[1:])]

    def _range_level(self, key: str, start: int, length: int) -> tuple[ObjectStore, bytes]:
        for i, level in enumerate(self.levels[:-1]):
            try:
                data = level.get_range(key, start, length)
            except NotFound:
                continue
            except Exception as e:  # an upper level's failure is a miss
                self._upper_failed(i, "get_range", key, e)
                continue
            self._counters[i].add("hits")
            return level, data
        return self.bottom, self.bottom.get_range(key, start, length)

    def put_file(self, key: str, path: str, content_type: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        """A local file into the bottom level only (it may be GBs); older copies above are dropped."""
        info = put_file(self.bottom, key, path, content_type, metadata)
        self._counters[-1].add("puts")
        self._drop_upper(key)
        return info

    @property
    def create_is_atomic(self) -> bool:
        return bool(getattr(self.bottom, "create_is_atomic", False))

    def create(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """Create-if-absent in the bottom level, which alone can say whether the key is free."""
        return create_if_absent(self.bottom, key, data, content_type)

    def _drop_upper(self, key: str) -> None:
        for i in range(len(self.levels) - 2, -1, -1):
            try:
                self.levels[i].delete(key)
            except NotFound:
                pass
            except Exception as e:  # noqa: BLE001 - a cache level may fail in any way; it must not fail us
                self._upper_failed(i, "delete", key, e)

    def stat(self, key: str) -> ObjectInfo | None:
        """Info from the fastest level that has ``key`` (no copying: stat has no bytes)."""
        for i, level in enumerate(self.levels):
            try:
                info = level.stat(key)
            except Exception as e:  # an upper level's failure is a miss
                if level is self.bottom:
                    raise
                self._upper_failed(i, "stat", key, e)
                continue
            if info is not None:
                return info
        return None

    def list(self, prefix: str = "", marker: str = "") -> Iterator[ObjectInfo]:
        """The bottom level's listing: the caches above hold a subset of it."""
        return self.bottom.list(prefix, marker)

    # -- writes --------------------------------------------------------------------------

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Write the bottom level (errors raise, nothing else is filled), then each level above."""
        info = self.bottom.put(key, data, content_type, metadata)
        self._counters[-1].add("puts")
        self._fill(range(len(self.levels) - 2, -1, -1), key, data, info)
        return info

    def put_local(self, key: str, data: bytes, info: ObjectInfo) -> None:
        """Fill only the upper (cache) levels with ``data`` and its known ``info``."""
        self._fill(range(len(self.levels) - 2, -1, -1), key, data, info)

    def put_behind(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Fill the upper levels now and write the bottom level in the background.

        At most ``behind_workers + behind_queue`` writes wait; past that the write is made
        synchronously, which bounds memory and slows producers down. A failed background
        write is logged and counted: callers use this for data that can be made again.
        """
        if not self._behind:
            return self.put(key, data, content_type, metadata)
        check_key(key)
        info = ObjectInfo(key, len(data), content_type or guess_content_type(key), sha256_hex(data), None,
                          time.time(), check_metadata(metadata))
        if not self._slots.acquire(blocking=False):
            return self.put(key, data, content_type, metadata)
        self.put_local(key, data, info)
        try:
            future = self._executor().submit(self._write_bottom, key, data, content_type, metadata)
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._behind_done)
        return info

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for background writes; True if all finished within ``timeout``."""
        with self._lock:
            pending = list(self._pending)
        _, not_done = wait(pending, timeout=timeout)
        return not not_done

    def delete(self, key: str) -> None:
        """Delete from the bottom level, then every level above; NotFound only if no level had it."""
        found = False
        bottom_error: Exception | None = None
        try:
            self.bottom.delete(key)
            found = True
        except NotFound:
            pass
        except Exception as e:  # noqa: BLE001 - clear the caches first, re-raised below
            bottom_error = e
        for i in range(len(self.levels) - 2, -1, -1):
            try:
                self.levels[i].delete(key)
                found = True
            except NotFound:
                pass
            except Exception as e:  # noqa: BLE001 - a cache level may fail in any way; it must not fail us
                self._upper_failed(i, "delete", key, e)
        if bottom_error is not None:
            raise bottom_error
        if not found:
            raise NotFound(f"no object {key!r}")

    def close(self) -> None:
        """Finish background writes, then close every level."""
        pool = self._pool
        if pool is not None:
            pool.shutdown(wait=True)
        for level in self.levels:
            try:
                level.close()
            except Exception as e:  # noqa: BLE001 - a cache level may fail in any way; it must not fail us
                log.warning("closing cache level %s failed: %s", level.url, e)

    # -- metrics -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Per level: hits/misses/puts/evictions/errors as seen from here, plus the level's own figures."""
        out = []
        for level, counters in zip(self.levels, self._counters):
            entry: dict[str, Any] = {"url": level.url, "type": type(level).__name__, **counters.snapshot()}
            own = getattr(level, "stats", None)
            if callable(own):
                try:
                    theirs = own()
                    entry["evictions"] = theirs.get("evictions", 0)
                    entry.update({k: v for k, v in theirs.items() if k not in entry})
                except Exception:  # noqa: BLE001,S110 - figures are best effort
                    pass
            out.append(entry)
        with self._lock:
            pending = len(self._pending)
        return {"levels": out, "pending_writes": pending}

    # -- internals -----------------------------------------------------------------------

    def _fill(self, indexes: range, key: str, data: bytes, info: ObjectInfo) -> None:
        for i in indexes:
            level = self.levels[i]
            try:
                fill = getattr(level, "fill", None)
                if callable(fill):
                    fill(key, data, info)
                else:
                    level.put(key, data, info.content_type, info.metadata)
                self._counters[i].add("puts")
            except Exception as e:  # noqa: BLE001 - a cache level may fail in any way; it must not fail us
                self._upper_failed(i, "fill", key, e)
                try:  # an older version must not outlive a failed refresh
                    level.delete(key)
                except Exception:  # noqa: BLE001,S110 - already logged and counted
                    pass

    def _upper_failed(self, i: int, op: str, key: str, e: Exception) -> None:
        self._counters[i].add("errors")
        log.warning("cache level %s: %s %r failed: %s", self.levels[i].url, op, key, e)

    def _write_bottom(self, key: str, data: bytes, content_type: str | None, metadata: Mapping[str, str] | None) -> None:
        try:
            self.bottom.put(key, data, content_type, metadata)
            self._counters[-1].add("puts")
        except Exception as e:  # noqa: BLE001 - no caller to tell; logged and counted
            self._counters[-1].add("errors")
            log.warning("background write of %r to %s failed: %s", key, self.bottom.url, e)

    def _behind_done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
        self._slots.release()

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                # Bounded by behind_workers, not by the request threads' store gate.
                self._pool = ThreadPoolExecutor(self._behind_workers, thread_name_prefix="image_repo-put-behind",
                                                initializer=exempt_thread)
            return self._pool


def level_name(level: ObjectStore, bottom: bool) -> str:
    """The ``level`` label of a cache level's figures: memory, disk or store (the cache store)."""
    if bottom:
        return "store"
    if isinstance(level, MemoryCache):
        return "memory"
    if isinstance(level, DiskCache):
        return "disk"
    return type(level).__name__.lower()


def build_cache(settings: Settings, cache_store: ObjectStore) -> TieredStore:
    """[memory (if max_bytes > 0), disk (if max_bytes > 0), cache_store] as one TieredStore.

    The disk level is left out when the cache store is itself on local disk (``file://``,
    the embedded default) and no disk cache path is set: it would keep a second copy of
    every derived image on the same disk and double the writes of every derivation.
    """
    levels: list[ObjectStore] = []
    if settings.memory_cache.max_bytes > 0:
        levels.append(MemoryCache(settings.memory_cache.max_bytes, settings.memory_cache.max_item_bytes))
    redundant = getattr(cache_store, "local", False) and not settings.disk_cache.path
    if settings.disk_cache.max_bytes > 0 and not redundant:
        levels.append(DiskCache(settings.disk_cache_path(), settings.disk_cache.max_bytes))
    levels.append(cache_store)
    return TieredStore(levels)

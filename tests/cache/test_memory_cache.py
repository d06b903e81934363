"""MemoryCache: a byte bound that holds under concurrent load, LRU order, counters."""
from __future__ import annotations

import os
import random
import threading

import pytest

from image_repo.cache.memory import MemoryCache
from image_repo.errors import NotFound


def test_byte_bound_never_exceeded_under_concurrent_load():
    cache = MemoryCache(max_bytes=200_000, max_item_bytes=50_000)
    over: list[int] = []
    stop = threading.Event()

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        for i in range(400):
            key = f"k{rnd.randrange(300)}"
            cache.put(key, os.urandom(rnd.randrange(0, 60_000)))
            try:
                cache.get(f"k{rnd.randrange(300)}")
            except NotFound:
                pass

    def watcher() -> None:
        while not stop.is_set():
            if cache.current_bytes > cache.max_bytes:
                over.append(cache.current_bytes)

    w = threading.Thread(target=watcher)
    w.start()
    threads = [threading.Thread(target=writer, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    w.join()
    assert not over
    assert 0 < cache.current_bytes <= 200_000
    assert sum(len(i.key) + i.size for i in cache.list()) == cache.current_bytes
    stats = cache.stats()
    assert stats["evictions"] > 0 and stats["puts"] > 0 and stats["hits"] + stats["misses"] == 3200


def test_too_big_items_are_not_kept_and_drop_an_older_version():
    cache = MemoryCache(max_bytes=1000, max_item_bytes=100)
    cache.put("k", b"small")
    info = cache.put("k", b"x" * 200)
    assert info.size == 200
    assert cache.stat("k") is None
    with pytest.raises(NotFound):
        cache.get("k")
    assert cache.current_bytes == 0


def test_least_recently_used_goes_first():
    cache = MemoryCache(max_bytes=300, max_item_bytes=300)
    for k in "abc":
        cache.put(k, b"x" * 99)  # 100 bytes with the key
    cache.get("a")
    cache.put("d", b"x" * 99)
    assert [i.key for i in cache.list()] == ["a", "c", "d"]
    assert cache.stats()["evictions"] == 1


def test_fill_keeps_the_given_info():
    from image_repo.storage.base import ObjectInfo

    cache = MemoryCache(1000)
    info = ObjectInfo("k", 3, "image/png", "f" * 64, '"etag"', 1.0, {"a": "b"})
    cache.fill("k", b"abc", info)
    assert cache.get_with_info("k") == (b"abc", info)

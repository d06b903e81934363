"""TieredStore: read-fill order, bottom-first writes, delete everywhere, cache faults absorbed."""
from __future__ import annotations

import threading

import pytest

from image_repo.cache.disk import DiskCache
from image_repo.cache.memory import MemoryCache
from image_repo.cache.tiered import TieredStore, build_cache
from image_repo.config.settings import Settings
from image_repo.errors import NotFound, StorageUnavailable
from image_repo.storage.memory import MemoryStore
from tests.fixtures.waiting import HANG, wait_for


@pytest.fixture
def three():
    top, mid, bottom = MemoryStore("memory://top"), MemoryStore("memory://mid"), MemoryStore("memory://bottom")
    return top, mid, bottom, TieredStore([top, mid, bottom])


def test_get_local_asks_a_remote_bottom_nothing(three):
    top, mid, bottom, tiered = three
    bottom.put("k.jpg", b"data", "image/jpeg")
    with pytest.raises(NotFound):
        tiered.get_local("k.jpg")
    mid.put("k.jpg", b"data", "image/jpeg")
    assert tiered.get_local("k.jpg")[0] == b"data"
    assert top.get("k.jpg") == b"data"  # filled upward like any hit


def test_get_local_asks_a_local_bottom(three):
    top, mid, bottom, tiered = three
    bottom.local = True  # type: ignore[attr-defined]  # as FileStore on this host's disk
    bottom.put("k.jpg", b"data", "image/jpeg")
    assert tiered.get_local("k.jpg")[0] == b"data"


def test_hit_in_bottom_fills_every_level_above(three):
    top, mid, bottom, tiered = three
    info = bottom.put("k.jpg", b"data", "image/jpeg", {"a": "b"})
    data, got = tiered.get_with_info("k.jpg")
    assert (data, got) == (b"data", info)
    assert top.get("k.jpg") == mid.get("k.jpg") == b"data"
    assert top.stat("k.jpg").sha256 == info.sha256  # type: ignore[union-attr]
    levels = tiered.stats()["levels"]
    assert [(lv["hits"], lv["misses"]) for lv in levels] == [(0, 1), (0, 1), (1, 0)]


def test_hit_in_middle_fills_only_above_and_skips_bottom(three):
    top, mid, bottom, tiered = three
    mid.put("k", b"cached")
    assert tiered.get("k") == b"cached"
    assert top.get("k") == b"cached"
    assert bottom.stat("k") is None


def test_stat_top_down_without_filling(three):
    top, _, bottom, tiered = three
    bottom.put("k", b"x")
    assert tiered.stat("k").size == 1  # type: ignore[union-attr]
    assert top.stat("k") is None
    assert tiered.stat("absent") is None


def test_put_writes_bottom_first_then_upward(three):
    top, mid, bottom, tiered = three
    info = tiered.put("k", b"v", "image/png", {"m": "1"})
    for level in (top, mid, bottom):
        assert level.get("k") == b"v"
        assert level.stat("k").sha256 == info.sha256  # type: ignore[union-attr]


def test_failed_bottom_put_fills_nothing(faulty):
    top, mid = MemoryStore(), MemoryStore()
    bottom = faulty({"put"})
    tiered = TieredStore([top, mid, bottom])
    with pytest.raises(StorageUnavailable):
        tiered.put("k", b"v")
    assert top.stat("k") is None and mid.stat("k") is None


def test_delete_from_all_levels(three):
    top, mid, bottom, tiered = three
    tiered.put("k", b"v")
    tiered.delete("k")
    assert top.stat("k") is None and mid.stat("k") is None and bottom.stat("k") is None
    with pytest.raises(NotFound):
        tiered.delete("k")
    top.put("only-cached", b"v")
    tiered.delete("only-cached")  # found somewhere: no NotFound
    assert top.stat("only-cached") is None


def test_delete_clears_caches_even_when_bottom_fails(faulty):
    top = MemoryStore()
    bottom = faulty({"delete"})
    tiered = TieredStore([top, bottom])
    tiered.put("k", b"v")
    with pytest.raises(StorageUnavailable):
        tiered.delete("k")
    assert top.stat("k") is None


@pytest.mark.parametrize("op", ["get", "put", "stat", "delete"])
def test_upper_level_failure_never_fails_the_operation(faulty, op):
    broken = faulty({op})
    bottom = MemoryStore()
    tiered = TieredStore([broken, bottom])
    tiered.put("k", b"v")
    assert tiered.get("k") == b"v"
    assert tiered.stat("k").size == 1  # type: ignore[union-attr]
    tiered.delete("k")
    assert bottom.stat("k") is None
    assert tiered.stats()["levels"][0]["errors"] >= 1


def test_upper_level_answers_when_bottom_is_down(faulty):
    top = MemoryStore()
    bottom = faulty({"get", "stat"})
    tiered = TieredStore([top, bottom])
    tiered.put("k", b"v")
    assert tiered.get("k") == b"v"
    with pytest.raises(StorageUnavailable):
        tiered.get("other")
    with pytest.raises(StorageUnavailable):
        tiered.stat("other")


def test_list_is_the_bottom_levels(three):
    top, _, bottom, tiered = three
    top.put("cached-only", b"1")
    bottom.put("a/b", b"2")
    bottom.put("a/c", b"3")
    assert [i.key for i in tiered.list("a/")] == ["a/b", "a/c"]
    assert [i.key for i in tiered.list()] == ["a/b", "a/c"]


def test_put_local_fills_only_caches(three):
    top, mid, bottom, tiered = three
    info = MemoryStore().put("k", b"v")
    tiered.put_local("k", b"v", info)
    assert top.get("k") == mid.get("k") == b"v"
    assert bottom.stat("k") is None


def test_put_behind_returns_before_the_bottom_write(faulty):
    top = MemoryStore()
    bottom = faulty()
    bottom.gate = threading.Event()
    tiered = TieredStore([top, bottom])
    info = tiered.put_behind("k", b"v", "image/jpeg")
    assert top.get("k") == b"v"  # served from the cache at once
    assert bottom.inner.stat("k") is None
    bottom.gate.set()
    assert tiered.flush(HANG)
    assert bottom.inner.stat("k").sha256 == info.sha256  # type: ignore[union-attr]
    tiered.close()


def test_put_behind_is_synchronous_when_the_queue_is_full(faulty):
    bottom = faulty()
    bottom.gate = threading.Event()
    tiered = TieredStore([MemoryStore(), bottom], behind_workers=1, behind_queue=1)
    tiered.put_behind("a", b"1")
    tiered.put_behind("b", b"2")
    assert tiered.stats()["pending_writes"] == 2
    done = threading.Event()

    def third() -> None:
        tiered.put_behind("c", b"3")
        done.set()

    t = threading.Thread(target=third)
    t.start()
    # The pool's one writer waits at the gate with "a"; "b" is queued; "c" is written by the caller
    # itself, and waits there too: two at the gate, and the third call has not returned.
    wait_for(lambda: bottom.waiting == 2, "the third put blocked behind the slow store")
    assert not done.is_set()
    bottom.gate.set()
    t.join(HANG)
    assert done.is_set()
    assert tiered.flush(HANG)
    assert [i.key for i in bottom.inner.list()] == ["a", "b", "c"]
    tiered.close()


def test_put_behind_failure_is_logged_not_raised(faulty, caplog):
    bottom = faulty({"put"})
    tiered = TieredStore([MemoryStore(), bottom])
    tiered.put_behind("k", b"v")
    assert tiered.flush(HANG)
    assert tiered.get("k") == b"v"  # still cached above
    assert tiered.stats()["levels"][-1]["errors"] == 1


def test_real_levels_stack(tmp_path):
    bottom = MemoryStore()
    mem, disk = MemoryCache(10_000), DiskCache(str(tmp_path / "dc"), 100_000)
    tiered = TieredStore([mem, disk, bottom])
    tiered.put("k", b"v" * 100)
    mem.close()
    assert tiered.get("k") == b"v" * 100  # from disk, refilling memory
    assert mem.stat("k") is not None
    stats = tiered.stats()["levels"]
    assert [lv["type"] for lv in stats] == ["MemoryCache", "DiskCache", "MemoryStore"]
    assert stats[1]["hits"] == 1 and "evictions" in stats[0] and "bytes" in stats[1]


def test_build_cache(tmp_path):
    s = Settings(data_dir=str(tmp_path))
    tiered = build_cache(s, MemoryStore())
    assert [type(lv).__name__ for lv in tiered.levels] == ["MemoryCache", "DiskCache", "MemoryStore"]
    assert tiered.levels[1].url == "disk-cache://" + s.disk_cache_path()
    s.memory_cache.max_bytes = 0
    s.disk_cache.max_bytes = 0
    assert [type(lv).__name__ for lv in build_cache(s, MemoryStore()).levels] == ["MemoryStore"]


def test_a_local_cache_store_makes_the_default_disk_level_redundant(tmp_path):
    from image_repo.cache.disk import DiskCache
    from image_repo.cache.memory import MemoryCache
    from image_repo.cache.tiered import build_cache
    from image_repo.config.settings import Settings
    from image_repo.storage.filesystem import FileStore
    from image_repo.storage.memory import MemoryStore

    settings = Settings()
    settings.data_dir = str(tmp_path)
    local = FileStore(str(tmp_path / "cache"))
    assert [type(level) for level in build_cache(settings, local).levels] == [MemoryCache, FileStore]
    # A remote cache store (here: one that is not on this host's disk) keeps the disk level.
    assert [type(level) for level in build_cache(settings, MemoryStore()).levels] == [MemoryCache, DiskCache, MemoryStore]
    settings.disk_cache.path = str(tmp_path / "disk")  # asked for explicitly: kept
    assert [type(level) for level in build_cache(settings, local).levels] == [MemoryCache, DiskCache, FileStore]


def test_put_behind_writes_a_local_bottom_level_before_returning(tmp_path):
    from image_repo.storage.filesystem import FileStore

    bottom = FileStore(str(tmp_path / "cache"))
    tiered = TieredStore([MemoryStore(), bottom])
    tiered.put_behind("a/.d/v.k.jpg", b"derived", "image/jpeg")
    assert bottom.get("a/.d/v.k.jpg") == b"derived"  # no flush needed: another worker can read it now

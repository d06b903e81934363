"""DiskCache: cap held across threads and processes, restart, corruption, degradation."""
from __future__ import annotations

import logging
import multiprocessing
import os
import random
import threading
import time

import pytest

from image_repo.cache.disk import DiskCache
from image_repo.errors import NotFound
from image_repo.storage.base import sha256_hex

CAP = 200_000


def entry_files(path) -> list[str]:
    out = []
    for dirpath, _, files in os.walk(path):
        out += [os.path.join(dirpath, f) for f in files if not f.startswith(".")]
    return out


def test_round_trip_and_survives_restart(tmp_path):
    d = tmp_path / "dc"
    cache = DiskCache(str(d), CAP)
    info = cache.put("site/a/.d/sha/thumb.jpg", b"jpeg bytes", "image/jpeg", {"source-version": "v1"})
    cache.close()
    again = DiskCache(str(d), CAP)
    data, got = again.get_with_info("site/a/.d/sha/thumb.jpg")
    assert data == b"jpeg bytes"
    assert (got.sha256, got.content_type, dict(got.metadata)) == (info.sha256, "image/jpeg", {"source-version": "v1"})
    assert again.stats()["bytes"] == again.scan_bytes() > 0


def test_restart_reindexes_when_usage_is_lost(tmp_path):
    d = tmp_path / "dc"
    cache = DiskCache(str(d), CAP)
    for i in range(10):
        cache.put(f"k{i}", os.urandom(1000))
    os.unlink(d / ".usage")
    again = DiskCache(str(d), CAP)
    assert again.stats()["bytes"] == again.scan_bytes() == sum(os.path.getsize(p) for p in entry_files(d))


def test_any_key_is_a_safe_name(tmp_path):
    cache = DiskCache(str(tmp_path / "dc"), CAP)
    for key in ["../../etc/passwd", "/abs", "a\\b", "x" * 2000, "日本/語"]:
        cache.put(key, key.encode())
        assert cache.get(key) == key.encode()
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupted_entry_is_dropped_and_a_miss(tmp_path, damage, caplog):
    cache = DiskCache(str(tmp_path / "dc"), CAP)
    cache.put("k", os.urandom(5000))
    (path,) = entry_files(tmp_path / "dc")
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    if damage == "flip":
        blob[-10] ^= 0xFF
    elif damage == "truncate":
        blob = blob[:-100]
    else:
        blob = bytearray(b"not an entry at all")
    with open(path, "wb") as f:
        f.write(blob)
    with caplog.at_level(logging.WARNING, logger="image_repo.cache"), pytest.raises(NotFound):
        cache.get("k")
    assert not os.path.exists(path)
    assert cache.stats()["misses"] == 1
    assert cache.scan_bytes() == 0


def test_cap_never_exceeded_by_threads(tmp_path):
    cache = DiskCache(str(tmp_path / "dc"), CAP)
    over: list[int] = []
    stop = threading.Event()

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(60):
            cache.put(f"k{rnd.randrange(200)}", os.urandom(rnd.randrange(100, 12_000)))

    def watcher() -> None:
        while not stop.is_set():
            total = cache.scan_bytes()
            if total > CAP:
                over.append(total)
            stop.wait(0.002)

    w = threading.Thread(target=watcher)
    w.start()
    ts = [threading.Thread(target=writer, args=(s,)) for s in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stop.set()
    w.join()
    assert not over
    assert cache.scan_bytes() <= CAP
    assert cache.stats()["evictions"] > 0
    assert cache.stats()["bytes"] == cache.scan_bytes()


def _hammer(path: str, seed: int, n: int) -> None:
    cache = DiskCache(path, CAP)
    rnd = random.Random(seed)
    for _ in range(n):
        key = f"k{rnd.randrange(150)}"
        cache.put(key, os.urandom(rnd.randrange(100, 15_000)))
        try:
            data, info = cache.get_with_info(f"k{rnd.randrange(150)}")
            assert sha256_hex(data) == info.sha256
        except NotFound:
            pass


def test_cap_never_exceeded_by_two_processes(tmp_path):
    path = str(tmp_path / "dc")
    DiskCache(path, CAP)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(path, s, 150)) for s in range(2)]
    for p in procs:
        p.start()
    watcher = DiskCache(path, CAP)
    seen = []
    while True:  # at least once: the writers may be done before the first look on a busy machine
        seen.append(watcher.scan_bytes())
        if not any(p.is_alive() for p in procs):
            break
        time.sleep(0.002)
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert seen and max(seen) <= CAP
    total = sum(os.path.getsize(p) for p in entry_files(path))
    assert total <= CAP
    assert watcher.stats()["bytes"] == total  # the shared total did not drift


def test_items_too_big_are_not_kept(tmp_path):
    cache = DiskCache(str(tmp_path / "dc"), CAP, max_item_bytes=1000)
    cache.put("k", b"x" * 100)
    cache.put("k", b"x" * 5000)
    with pytest.raises(NotFound):
        cache.get("k")
    assert cache.scan_bytes() == 0


def test_unusable_directory_degrades_with_one_warning(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="image_repo.cache"):
        cache = DiskCache(str(blocker / "dc"), CAP)  # a path under a regular file
        info = cache.put("k", b"data")
        cache.put("k2", b"data")
        assert info.size == 4
        with pytest.raises(NotFound):
            cache.get("k")
        assert cache.stat("k") is None
        assert list(cache.list()) == []
    warnings = [r for r in caplog.records if r.name == "image_repo.cache"]
    assert len(warnings) == 1 and "disabled" in warnings[0].getMessage()
    assert cache.stats()["enabled"] == 0


def test_write_failure_later_degrades_with_one_warning(tmp_path, caplog):
    d = tmp_path / "dc"
    cache = DiskCache(str(d), CAP)
    cache.put("before", b"1")
    # The disk "fills up": every new shard directory is now impossible to create.
    for a in range(256):
        p = d / f"{a:02x}"
        if not p.exists():
            p.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="image_repo.cache"):
        for i in range(20):
            cache.put(f"after{i}", b"2")
    assert len([r for r in caplog.records if r.name == "image_repo.cache"]) == 1
    assert cache.enabled is False

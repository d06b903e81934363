"""Each cache level, and a stack of them, keeps the ObjectStore contract too."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from image_repo.cache.disk import DiskCache
from image_repo.cache.memory import MemoryCache
from image_repo.cache.tiered import TieredStore
from image_repo.storage.base import ObjectStore
from image_repo.storage.filesystem import FileStore
from tests.storage.test_contract import *

BIG = 64 * 2**20


@pytest.fixture(params=["memory_cache", "disk_cache", "tiered"])
def store(request, tmp_path) -> Iterator[ObjectStore]:
    """Overrides the storage suite's fixture: each cache level in turn."""
    s: ObjectStore
    if request.param == "memory_cache":
        s = MemoryCache(BIG, BIG)
    elif request.param == "disk_cache":
        s = DiskCache(str(tmp_path / "disk"), BIG)
    else:
        s = TieredStore([MemoryCache(BIG, BIG), DiskCache(str(tmp_path / "disk"), BIG),
                         FileStore(str(tmp_path / "files"), fsync=False)])
    yield s
    s.close()

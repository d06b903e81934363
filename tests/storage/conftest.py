"""The ``store`` fixture: every backend in STORE_FACTORIES runs the one contract suite.

To add a backend, write a fixture that yields a fresh, empty store and add
``"name": "fixture_name"`` to STORE_FACTORIES (e.g. ``"swift": "swift_store"``).
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from image_repo.storage.base import ObjectStore
from image_repo.storage.filesystem import FileStore
from image_repo.storage.memory import MemoryStore
from tests.s3.fixtures import s3_store  # noqa: F401 - the fixture of the "s3" backend below

STORE_FACTORIES: dict[str, str] = {
    "memory": "memory_store",
    "file": "file_store",
    "swift": "swift_store",  # the real Swift of tests/fixtures/swift.py (marked swift; skips if it cannot start)
    "s3": "s3_store",  # a bucket on that Swift's s3api (tests/s3/fixtures.py)
}
"""Backend name -> the fixture that yields a fresh, empty store of that backend."""


@pytest.fixture
def memory_store() -> Iterator[MemoryStore]:
    store = MemoryStore()
    yield store
    store.close()


@pytest.fixture
def file_store(tmp_path) -> Iterator[FileStore]:
    # fsync off: the tests check atomicity and layout, not the disk's durability.
    store = FileStore(str(tmp_path / "store"), fsync=False)
    yield store
    store.close()


@pytest.fixture(params=list(STORE_FACTORIES))
def store(request) -> ObjectStore:
    """A fresh, empty store of each backend in turn."""
    return request.getfixturevalue(STORE_FACTORIES[request.param])

"""Cache test helpers: a fault-injecting wrapper around a real store."""
from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from image_repo.errors import StorageUnavailable
from image_repo.storage.base import ObjectInfo, ObjectStore
from image_repo.storage.memory import MemoryStore
from tests.fixtures.waiting import HANG


class Faulty:
    """A real store whose operations named in ``failing`` raise ``error`` (faults a real store cannot show)."""

    def __init__(self, inner: ObjectStore, failing: set[str] | None = None, error: Exception | None = None) -> None:
        self.inner = inner
        self.url = "faulty+" + inner.url
        self.failing = set(failing or ())
        self.error = error or StorageUnavailable("injected fault")
        self.gate: threading.Event | None = None  # when set, put waits for it (a slow store)
        self.waiting = 0
        self._count_lock = threading.Lock()
        """Puts waiting at the gate now (so a test sees a put is blocked, rather than hoping it is)."""
        self.calls: list[str] = []

    def _check(self, op: str) -> None:
        self.calls.append(op)
        if op in self.failing:
            raise self.error

    def get(self, key: str) -> bytes:
        self._check("get")
        return self.inner.get(key)

    def get_with_info(self, key: str) -> tuple[bytes, ObjectInfo]:
        self._check("get")
        return self.inner.get_with_info(key)

    def put(self, key: str, data: bytes, content_type: str | None = None,
            metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        if self.gate is not None:
            with self._count_lock:
                self.waiting += 1
            try:
                assert self.gate.wait(HANG), "the gate was never opened"
            finally:
                with self._count_lock:
                    self.waiting -= 1
        self._check("put")
        return self.inner.put(key, data, content_type, metadata)

    def stat(self, key: str) -> ObjectInfo | None:
        self._check("stat")
        return self.inner.stat(key)

    def delete(self, key: str) -> None:
        self._check("delete")
        self.inner.delete(key)

    def list(self, prefix: str = "", marker: str = "") -> Iterator[ObjectInfo]:
        self._check("list")
        return self.inner.list(prefix, marker)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def faulty() -> Any:
    """A factory: faulty(failing={"get"}) wraps a fresh MemoryStore."""
    return lambda failing=None: Faulty(MemoryStore(), failing)

"""Past the running and queued derivation limits: 503 with Retry-After, never piled-up threads."""
from __future__ import annotations

import threading

import pytest

from image_repo.config.settings import Settings
from image_repo.errors import Overloaded
from image_repo.host.limiter import Limiter
from image_repo.storage.memory import MemoryStore
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg
from tests.fixtures.waiting import HANG, wait_for


class Gate(MemoryStore):
    """A real memory store whose reads wait while ``closed`` (to hold a derivation in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()

    def _wait(self) -> None:
        self.entered.set()
        assert self.open.wait(HANG)

    def get(self, key):  # type: ignore[override]
        self._wait()
        return super().get(key)

    def get_with_info(self, key):  # type: ignore[override]
        self._wait()
        return super().get_with_info(key)


def test_limiter_bounds_running_and_waiting():
    limiter = Limiter(1, 1)
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with limiter.slot():
            inside.set()
            release.wait(HANG)

    first = threading.Thread(target=hold)
    first.start()
    assert inside.wait(HANG)
    waiter = threading.Thread(target=lambda: limiter.slot().__enter__())
    waiter.start()
    # Until the waiter is counted, a third caller would wait too (a polled second used to run out
    # on a busy machine, and the test then blocked and failed): wait for the state, not for time.
    wait_for(lambda: limiter._waiting == 1, "the second caller waits")  # noqa: SLF001
    with pytest.raises(Overloaded) as info, limiter.slot():
        pass
    assert info.value.status == 503 and info.value.headers["Retry-After"]
    release.set()
    first.join(HANG)
    waiter.join(HANG)


def test_overloaded_derivations_are_503_with_retry_after(tmp_path):
    settings = Settings()
    settings.data_dir = str(tmp_path)
    settings.max_concurrent_derivations = 1
    settings.max_queued_derivations = 0
    store = Gate()
    app = create_app(settings, store=store, cache_store=MemoryStore())
    client = app.test_client()
    client.put("/images/p", data=make_jpeg(100, 80))
    store.open.clear()
    store.entered.clear()
    holder = threading.Thread(target=lambda: app.test_client().get("/images/p?xsize=10"))
    holder.start()
    assert store.entered.wait(HANG)
    r = client.get("/images/p?xsize=11")
    store.open.set()
    holder.join(HANG)
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0 and r.get_json()["message"]
    assert client.get("/images/p?xsize=11").status_code == 200  # and it recovers by itself

"""The store gate: at most ``limit`` request threads inside remote store calls; the rest wait
while the store makes progress and are refused once it has stalled."""
from __future__ import annotations

import threading

import pytest

from image_repo.host.storegate import StoreBusy, StoreGate, exempt_thread
from tests.fixtures.waiting import HANG


def hold(gate: StoreGate, entered: threading.Event, release: threading.Event) -> threading.Thread:
    def run() -> None:
        with gate.slot("held"):
            entered.set()
            release.wait(HANG)

    t = threading.Thread(target=run)
    t.start()
    assert entered.wait(HANG)
    return t


def test_a_stalled_store_refuses_the_next_caller_with_503():
    gate = StoreGate(1, stalled=0.0)  # no progress allowed at all: refused as soon as the slot is taken
    entered, release = threading.Event(), threading.Event()
    holder = hold(gate, entered, release)
    with pytest.raises(StoreBusy) as refused, gate.slot("second"):
        pass
    assert refused.value.status == 503 and int(refused.value.headers["Retry-After"]) > 0
    assert "second" in refused.value.message
    assert gate.stats() == {"limit": 1, "in_use": 1, "refused": 1}
    release.set()
    holder.join(HANG)
    with gate.slot("after"):  # and it recovers by itself
        assert gate.stats()["in_use"] == 1
    assert gate.stats()["in_use"] == 0


def test_a_caller_waits_for_a_working_store_instead_of_failing():
    gate = StoreGate(1, stalled=HANG)  # the store never counts as stalled here
    entered, release = threading.Event(), threading.Event()
    holder = hold(gate, entered, release)
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(gate.slot("waits").__enter__() or "in"))
    waiter.start()
    assert got == [] and waiter.is_alive()  # it cannot be in: the holder has the only slot
    release.set()  # the store answers: the slot goes to the waiter
    waiter.join(HANG)
    holder.join(HANG)
    assert got == ["in"] and gate.stats()["refused"] == 0


def test_background_threads_and_nested_calls_take_no_slot():
    gate = StoreGate(1, stalled=0.0)
    with gate.slot("outer"):
        with gate.slot("a client made on first use, inside the call"):
            pass
        errors: list[BaseException] = []

        def background() -> None:
            exempt_thread()
            try:
                with gate.slot("write behind"):
                    pass
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        t = threading.Thread(target=background)
        t.start()
        t.join(HANG)
        assert errors == []
    assert gate.stats() == {"limit": 1, "in_use": 0, "refused": 0}

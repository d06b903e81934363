"""Leases on a real store: one holder at a time, taken over only when expired or its owner is gone."""
from __future__ import annotations

import json
import socket

import pytest

from image_repo.pyramids.state import Lease, lease_key, live_lease
from image_repo.storage.filesystem import FileStore
from image_repo.storage.memory import MemoryStore


@pytest.fixture(params=["file", "memory"])
def lease_store(request, tmp_path):
    return FileStore(str(tmp_path / "s"), fsync=False) if request.param == "file" else MemoryStore()


def test_one_holder_at_a_time(lease_store):
    first = Lease.take(lease_store, "b1")
    assert first is not None and first.held()
    assert Lease.take(lease_store, "b1") is None
    assert live_lease(lease_store, "b1")["token"] == first.token
    assert first.renew()
    first.release()
    assert live_lease(lease_store, "b1") is None
    again = Lease.take(lease_store, "b1")
    assert again is not None and again.token != first.token
    assert not first.held()  # its token is not the holder's any more


def test_an_expired_lease_is_taken_over_and_its_old_holder_knows(lease_store):
    old = Lease.take(lease_store, "b2")
    assert old is not None
    # Its holder stopped renewing long ago (written as a holder on another host would have left it).
    lease_store.put(lease_key("b2", old.gen), json.dumps(
        {"owner": "elsewhere:1", "token": old.token, "expires": 0}).encode())
    new = Lease.take(lease_store, "b2")
    assert new is not None and new.gen == old.gen + 1
    assert not old.held() and not old.renew()  # the old holder must stop before it publishes
    assert new.held()
    assert [i.key for i in lease_store.list(".pyramids/b2.lease-")] == [lease_key("b2", new.gen)]


def test_a_lease_of_a_gone_process_on_this_host_is_free_at_once(lease_store):
    held = Lease.take(lease_store, "b3")
    assert held is not None
    gone = f"{socket.gethostname()}:{2**22 + 12345}"  # above pid_max's default: no such process
    lease_store.put(lease_key("b3", held.gen), json.dumps(
        {"owner": gone, "token": held.token, "expires": 10**12}).encode())
    assert live_lease(lease_store, "b3") is None
    assert Lease.take(lease_store, "b3") is not None

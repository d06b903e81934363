"""FileStore.put_stream / iter_get: what imports use so a large original never sits in memory."""
from __future__ import annotations

import hashlib

import pytest

from image_repo.errors import NotFound
from image_repo.storage.filesystem import FileStore


def test_put_stream_is_put_for_chunks(tmp_path):
    store = FileStore(str(tmp_path))
    chunks = [bytes([i]) * 1000 for i in range(7)]
    info = store.put_stream("d/obj.data", iter(chunks), "image/tiff", {"sha256": "x", "k": "v"})
    whole = b"".join(chunks)
    assert info.size == len(whole) and info.sha256 == hashlib.sha256(whole).hexdigest()
    assert store.get("d/obj.data") == whole and store.stat("d/obj.data") == info
    assert b"".join(store.iter_get("d/obj.data", 333)) == whole
    assert [i.key for i in store.list("d/")] == ["d/obj.data"]  # no temp files left


def test_put_stream_failing_midway_leaves_the_old_object(tmp_path):
    store = FileStore(str(tmp_path))
    store.put("k", b"old")

    def broken():
        yield b"new"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        store.put_stream("k", broken())
    assert store.get("k") == b"old" and [i.key for i in store.list()] == ["k"]


def test_iter_get_of_a_missing_key_is_not_found(tmp_path):
    with pytest.raises(NotFound):
        list(FileStore(str(tmp_path)).iter_get("nope"))

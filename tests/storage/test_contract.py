"""The contract every ObjectStore keeps (run against each backend in STORE_FACTORIES)."""
from __future__ import annotations

import hashlib
import os
import threading

import pytest

from image_repo.errors import NotFound, StorageUnavailable
from image_repo.storage.base import ObjectInfo, ObjectStore


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [i.key for i in store.list(prefix)]


def test_is_an_object_store(store):
    assert isinstance(store, ObjectStore)
    assert isinstance(store.url, str) and store.url


@pytest.mark.parametrize("size", [0, 1, 1000, 3 * 2**20 + 7])
def test_round_trip_byte_for_byte(store, size):
    data = os.urandom(size)
    info = store.put("site1/photo.jpg", data)
    assert isinstance(info, ObjectInfo)
    assert info.key == "site1/photo.jpg"
    assert info.size == size
    assert info.sha256 == sha(data)
    assert store.get("site1/photo.jpg") == data


def test_content_type_and_metadata_kept(store):
    store.put("a.png", b"\x89PNG...", content_type="image/png", metadata={"source-version": "abc", "x-1": "v 1"})
    info = store.stat("a.png")
    assert info is not None
    assert info.content_type == "image/png"
    assert dict(info.metadata) == {"source-version": "abc", "x-1": "v 1"}
    assert info.sha256 == sha(b"\x89PNG...")
    assert info.size == 7
    assert info.modified is not None


def test_content_type_defaults_from_extension(store):
    store.put("b.jpg", b"jpeg")
    info = store.stat("b.jpg")
    assert info is not None and info.content_type == "image/jpeg"


def test_absent(store):
    assert store.stat("nope.jpg") is None
    with pytest.raises(NotFound):
        store.get("nope.jpg")
    with pytest.raises(NotFound):
        store.get_with_info("nope.jpg")
    with pytest.raises(NotFound):
        store.delete("nope.jpg")
    assert keys(store) == []


def test_delete(store):
    store.put("d/x.jpg", b"1")
    store.put("d/y.jpg", b"2")
    store.delete("d/x.jpg")
    assert store.stat("d/x.jpg") is None
    with pytest.raises(NotFound):
        store.get("d/x.jpg")
    with pytest.raises(NotFound):
        store.delete("d/x.jpg")
    assert keys(store) == ["d/y.jpg"]
    store.delete("d/y.jpg")
    assert keys(store) == []


def test_overwrite_replaces(store):
    store.put("k.jpg", b"first version", content_type="image/jpeg", metadata={"a": "1"})
    info = store.put("k.jpg", b"second", content_type="image/png", metadata={"b": "2"})
    assert store.get("k.jpg") == b"second"
    st = store.stat("k.jpg")
    assert st is not None
    assert (st.size, st.sha256, st.content_type, dict(st.metadata)) == (6, sha(b"second"), "image/png", {"b": "2"})
    assert info.sha256 == st.sha256
    assert keys(store) == ["k.jpg"]


def test_get_with_info_consistent(store):
    store.put("g/h.webp", b"webp-bytes", content_type="image/webp", metadata={"m": "v"})
    data, info = store.get_with_info("g/h.webp")
    assert data == b"webp-bytes"
    assert info.key == "g/h.webp"
    assert info.size == len(data)
    assert info.sha256 == sha(data)
    assert info.content_type == "image/webp"
    assert dict(info.metadata) == {"m": "v"}
    st = store.stat("g/h.webp")
    assert st is not None
    assert (st.size, st.sha256, st.content_type, dict(st.metadata)) == (
        info.size, info.sha256, info.content_type, dict(info.metadata))


TRICKY_KEYS = [
    "a.jpg",
    "a/.d/0123abcd/thumb-50x50.v1.jpg",
    "a/b.jpg",
    "a b.jpg",
    "a-b.jpg",
    "a0.jpg",
    "ünïcödé/日本語 写真.png",
    "100% pure+(1).jpg",
    "x/y/z/deep.tif",
    "émoji 😀.gif",
]


def test_tricky_keys_coexist_and_list_in_key_order(store):
    for i, k in enumerate(TRICKY_KEYS):
        store.put(k, k.encode() + bytes([i]))
    for i, k in enumerate(TRICKY_KEYS):
        assert store.get(k) == k.encode() + bytes([i]), k
        info = store.stat(k)
        assert info is not None and info.key == k
    listed = list(store.list())
    assert [i.key for i in listed] == sorted(TRICKY_KEYS)
    for info in listed:
        assert info.size == len(info.key.encode()) + 1


def test_list_by_prefix(store):
    for k in ["site1/photo.jpg", "site1/photo/.d/aa/thumb.jpg", "site1/photo/.d/ab/t.jpg", "site1/photos/x.jpg",
              "site1/pict.jpg", "site2/photo.jpg", "site10.jpg", "top.jpg"]:
        store.put(k, b"x")
    assert keys(store, "site1/") == [
        "site1/photo.jpg", "site1/photo/.d/aa/thumb.jpg", "site1/photo/.d/ab/t.jpg", "site1/photos/x.jpg",
        "site1/pict.jpg",
    ]
    assert keys(store, "site1/ph") == [
        "site1/photo.jpg", "site1/photo/.d/aa/thumb.jpg", "site1/photo/.d/ab/t.jpg", "site1/photos/x.jpg",
    ]
    assert keys(store, "site1/photo/.d/") == ["site1/photo/.d/aa/thumb.jpg", "site1/photo/.d/ab/t.jpg"]
    assert keys(store, "site1/photo/.d/a") == ["site1/photo/.d/aa/thumb.jpg", "site1/photo/.d/ab/t.jpg"]
    assert keys(store, "site1/photo/.d/ab/") == ["site1/photo/.d/ab/t.jpg"]
    assert keys(store, "site1") == [
        "site1/photo.jpg", "site1/photo/.d/aa/thumb.jpg", "site1/photo/.d/ab/t.jpg", "site1/photos/x.jpg",
        "site1/pict.jpg", "site10.jpg",
    ]
    assert keys(store, "site1/photo.jpg") == ["site1/photo.jpg"]
    assert keys(store, "nothing/") == []
    assert keys(store, "site3") == []
    assert len(keys(store)) == 8


def test_list_after_marker(store):
    """A listing resumes after any marker, inside or between directories, as a slice of the whole listing."""
    for k in TRICKY_KEYS:
        store.put(k, b"x")
    whole = sorted(TRICKY_KEYS)
    markers = ["", "a", "a b.jpg", "a-", "x/", "x/y/z/deep.tif", "x/y/zz", "ünïcödé/", "ünïcödé/日本語", "~", "\U0010ffff"]
    for marker in markers + whole:
        assert [i.key for i in store.list(marker=marker)] == [k for k in whole if k > marker], marker
    assert [i.key for i in store.list("x/", marker="x/y")] == ["x/y/z/deep.tif"]
    assert [i.key for i in store.list("a", marker="a b.jpg")] == [k for k in whole if k.startswith("a") and k > "a b.jpg"]
    assert [i.key for i in store.list("x/", marker="zz")] == []


def test_concurrent_puts_of_one_key_never_tear(store):
    versions = [bytes([i]) * (256 * 1024 + i) for i in range(8)]
    errors: list[BaseException] = []
    seen: set[bytes] = set()

    def writer(data: bytes) -> None:
        try:
            for _ in range(3):
                store.put("race/k.jpg", data, metadata={"len": str(len(data))})
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def reader() -> None:
        try:
            for _ in range(20):
                try:
                    data, info = store.get_with_info("race/k.jpg")
                except NotFound:
                    continue
                except StorageUnavailable:
                    # "Try again", not a tear: a one-replica Swift answers a GET whose file
                    # was replaced while it opened it with 503 (DiskFileStateChanged), and
                    # these stores run without retries. What it must never do is serve mixed bytes.
                    continue
                assert data in versions
                assert info.sha256 == sha(data) and info.size == len(data)
                seen.add(data)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    data, info = store.get_with_info("race/k.jpg")
    assert data in versions
    assert info.sha256 == sha(data)
    assert keys(store) == ["race/k.jpg"]


def test_close(store):
    store.put("c.jpg", b"1")
    store.close()

"""The contract every ObjectStore keeps (run against each backend in STORE_FACTORIES)."""
from __future__ import annotations

import hashlib
import os
import threading

import pytest

from image_repo.errors import InvalidRequest, NotFound, StorageUnavailable
from image_repo.storage.base import ObjectInfo, ObjectStore, get_ranges
from image_repo.storage.large import create_if_absent, put_file


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


# -- ranged reads, large files, create-if-absent (pyramids) --------------------------------

def test_get_range_reads_only_what_is_asked(store):
    data = os.urandom(300_000)
    store.put("r/big.tif", data)
    assert store.get_range("r/big.tif", 0, 10) == data[:10]
    assert store.get_range("r/big.tif", 123_456, 65_536) == data[123_456:123_456 + 65_536]
    assert store.get_range("r/big.tif", len(data) - 5, 100) == data[-5:]  # fewer at the end
    assert store.get_range("r/big.tif", len(data), 10) == b""  # nothing past it
    assert store.get_range("r/big.tif", len(data) + 1000, 10) == b""
    assert store.get_range("r/big.tif", 7, 0) == b""


def test_get_range_absent_and_bad_ranges(store):
    with pytest.raises(NotFound):
        store.get_range("r/nope.tif", 0, 10)
    with pytest.raises(NotFound):
        store.get_range("r/nope.tif", 0, 0)
    store.put("r/x.tif", b"0123456789")
    with pytest.raises(InvalidRequest):
        store.get_range("r/x.tif", -1, 5)
    with pytest.raises(InvalidRequest):
        store.get_range("r/x.tif", 0, -5)


def test_get_ranges_in_order_whatever_the_store(store):
    data = os.urandom(200_000)
    store.put("r/multi.tif", data)
    ranges = [(150_000, 1000), (0, 16), (70_000, 20_000), (199_990, 100), (500_000, 10), (10, 0), (0, 16)]
    got = get_ranges(store, "r/multi.tif", ranges)
    assert got == [data[s:s + n] for s, n in ranges]
    with pytest.raises(NotFound):
        get_ranges(store, "r/none.tif", [(0, 1), (5, 1)])


def test_put_file_stores_a_local_file_whole(store, tmp_path):
    data = os.urandom(2 * 2**20 + 3)
    path = tmp_path / "pyramid.tif"
    path.write_bytes(data)
    info = put_file(store, "p/.d/abc.pyramid.tif", str(path), "image/tiff", {"source-version": "abc"})
    assert info.size == len(data) and info.sha256 == sha(data)
    got, st = store.get_with_info("p/.d/abc.pyramid.tif")
    assert got == data
    assert st.sha256 == sha(data) and st.content_type == "image/tiff"
    assert dict(st.metadata) == {"source-version": "abc"}
    assert store.get_range("p/.d/abc.pyramid.tif", 2**20, 10) == data[2**20:2**20 + 10]


def test_create_only_if_absent(store):
    assert create_if_absent(store, "l/lease.json", b"first", "application/json") is True
    assert create_if_absent(store, "l/lease.json", b"second", "application/json") is False
    assert store.get("l/lease.json") == b"first"
    store.delete("l/lease.json")
    assert create_if_absent(store, "l/lease.json", b"third") is True
    assert store.get("l/lease.json") == b"third"


def test_create_races_have_one_winner(store):
    wins: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def racer(i: int) -> None:
        try:
            start.wait()
            if create_if_absent(store, "l/race.json", str(i).encode()):
                wins.append(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert store.get("l/race.json") in {str(i).encode() for i in wins}
    if getattr(store, "create_is_atomic", False):
        assert len(wins) == 1
    else:  # Swift checks If-None-Match before the body lands: racing PUTs may both pass; leases read back
        assert 1 <= len(wins) <= 6

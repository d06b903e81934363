"""SwiftStore's large-object side against the real Swift: Static Large Objects and multi-range GETs."""
from __future__ import annotations

import hashlib
import os

import pytest

from image_repo.storage import swift_large
from image_repo.storage.swift import SwiftStore

pytestmark = pytest.mark.swift


def test_a_file_past_the_object_limit_is_a_static_large_object(swift_store: SwiftStore, tmp_path, swift_conn):
    swift_store.max_object_bytes = 1 << 20  # Swift's 5 GiB, scaled down
    data = os.urandom(int(2.5 * 2**20))
    path = tmp_path / "p.tif"
    path.write_bytes(data)
    info = swift_store.put_file("img/.d/v.pyramid.tif", str(path), "image/tiff", {"source-version": "v"})
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    headers = swift_conn.head_object(swift_store.container, "img/.d/v.pyramid.tif")
    assert headers.get("x-static-large-object") == "True"
    segments = [i.key for i in swift_store.list(swift_large.segment_prefix("img/.d/v.pyramid.tif"))]
    assert len(segments) == 3
    assert swift_store.get("img/.d/v.pyramid.tif") == data
    stat = swift_store.stat("img/.d/v.pyramid.tif")
    assert stat is not None and stat.sha256 == info.sha256 and stat.size == len(data)
    edge = (1 << 20) - 100  # a range across two segments
    assert swift_store.get_range("img/.d/v.pyramid.tif", edge, 300) == data[edge:edge + 300]
    assert swift_store.get_ranges("img/.d/v.pyramid.tif", [(edge, 300), (5, 5), (2 * 2**20 + 1, 10)]) == [
        data[edge:edge + 300], data[5:10], data[2 * 2**20 + 1:2 * 2**20 + 11]]
    # Replaced by a small file: an ordinary object, and the old segments are gone.
    path.write_bytes(b"small")
    swift_store.put_file("img/.d/v.pyramid.tif", str(path))
    assert swift_store.get("img/.d/v.pyramid.tif") == b"small"
    assert list(swift_store.list(swift_large.segment_prefix("img/.d/v.pyramid.tif"))) == []


def test_many_ranges_are_asked_in_few_gets(swift_store: SwiftStore, monkeypatch):
    data = os.urandom(400_000)
    swift_store.put("m.tif", data)
    calls: list[str] = []
    real = swift_large._one_get

    def counting(store, key, batch):
        calls.append(key)
        return real(store, key, batch)

    monkeypatch.setattr(swift_large, "_one_get", counting)
    ranges = [(i * 3000, 1000) for i in range(120)]
    assert swift_store.get_ranges("m.tif", ranges) == [data[s:s + n] for s, n in ranges]
    assert len(calls) == 3  # 50 ranges per GET

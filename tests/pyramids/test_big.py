"""A pyramid of a generated 200-megapixel original, built on the file store and on the real Swift.

The original is made by libvips streamed (a formula, so every tile is checked against the
pixels it should hold without decoding the original), the build runs in its child process,
and that process's peak memory is checked: far below the decoded image's 600 MB.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from image_repo.config.settings import Settings
from image_repo.pyramids.service import pyramid_key
from image_repo.storage.filesystem import FileStore
from image_repo.storage.large import put_file
from image_repo.storage.swift_large import segment_prefix
from image_repo.web.app import create_app

from .conftest import pattern_pixels, write_pattern

W, H = 16_000, 12_500  # 200 megapixels
RSS_BOUND = 450 * 2**20
"""The build child's peak: the decoded image is 600 MB; libvips streams it in ~150 MB here."""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    return write_pattern(tmp_path_factory.mktemp("big") / "big.jpg", W, H, "rgb", Q=85)


def check_tiles(svc, name: str) -> None:
    original = svc.get_original(name)
    source = svc.pyramids.source(original)
    assert source is not None
    info = source.info
    assert (info.width, info.height, len(info.levels)) == (W, H, 6)
    rng = np.random.default_rng(7)
    for _ in range(4):  # aligned tiles, as stored, at the base
        col, row = int(rng.integers(0, W // 512)), int(rng.integers(0, H // 512))
        with Image.open(io.BytesIO(source.stored_tile(0, col, row) or b"")) as im:
            got = np.asarray(im.convert("RGB")).astype(int)
        want = pattern_pixels(col * 512, row * 512, 512, 512, W, H).astype(int)
        assert np.abs(got - want).mean() < 3, (col, row)
    box = source.region(0, 15_700, 12_300, 300, 200)  # the bottom-right corner, across edge tiles
    assert np.abs(box.astype(int) - pattern_pixels(15_700, 12_300, 300, 200, W, H).astype(int)).mean() < 3
    small = source.region(4, 0, 0, info.levels[4].width, info.levels[4].height)
    assert abs(small.astype(float).mean() - pattern_pixels(0, 0, W, H, W, H, step=16).mean()) < 3
    assert 0 < svc.pyramids.last_peak_rss < RSS_BOUND, svc.pyramids.last_peak_rss


def test_a_200_megapixel_pyramid_on_the_file_store(tmp_path, big_jpeg):
    originals = FileStore(str(tmp_path / "originals"), fsync=False)
    app = create_app(Settings(data_dir=str(tmp_path / "data"), pyramid_builders=0), store=originals,
                     cache_store=FileStore(str(tmp_path / "cache"), fsync=False), start_builders=False)
    c = app.test_client()
    assert c.put("/images/plate", data=big_jpeg.read_bytes()).status_code == 201  # 200 MP > max_pixels: by header
    svc = app.extensions["image_repo"]
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    check_tiles(svc, "plate")
    thumb = c.get("/images/plate?thumbnail=true")
    assert thumb.status_code == 200
    with Image.open(io.BytesIO(thumb.data)) as im:
        assert im.size == (50, 39)


def test_a_200_megapixel_pyramid_on_swift(tmp_path, big_jpeg, swift_settings, swift_store):
    swift_store.max_object_bytes = 8 * 2**20  # past Swift's object limit (5 GiB, scaled down): a large object
    swift_settings.data_dir = str(tmp_path / "data")
    swift_settings.pyramid_builders = 0
    app = create_app(swift_settings, store=swift_store, cache_store=swift_store, start_builders=False)
    put_file(swift_store, "plates/big.jpg", str(big_jpeg), "image/jpeg")  # as an import would place it
    svc = app.extensions["image_repo"]
    svc.pyramids.request("plates/big", "plates/big.jpg", swift_store.stat("plates/big.jpg"))
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    check_tiles(svc, "plates/big")
    version = svc.get_original("plates/big").version
    assert len(list(swift_store.list(segment_prefix(pyramid_key("plates/big", version))))) >= 2
    assert app.test_client().get("/images/plates/big?xsize=400").status_code == 200


def test_a_pyramidal_original_on_swift_is_indexed_by_ranged_reads(tmp_path, swift_settings, swift_store):
    import pyvips

    src = write_pattern(tmp_path / "s.png", 5000, 3000, "rgb")
    pyr = tmp_path / "pyr.tif"
    pyvips.Image.new_from_file(str(src)).tiffsave(str(pyr), tile=True, tile_width=512, tile_height=512,
                                                  pyramid=True, compression="jpeg", Q=90, bigtiff=True)
    swift_settings.data_dir = str(tmp_path / "data")
    app = create_app(swift_settings, store=swift_store, cache_store=swift_store, start_builders=False)
    assert app.test_client().put("/images/scan.tif", data=pyr.read_bytes()).status_code == 201
    svc = app.extensions["image_repo"]
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    assert svc.pyramids.builds_run == 0
    source = svc.pyramids.source(svc.get_original("scan"))
    assert source is not None and source.index.in_original
    box = source.region(0, 4700, 2800, 300, 200)
    assert np.abs(box.astype(int) - pattern_pixels(4700, 2800, 300, 200, 5000, 3000).astype(int)).mean() < 3

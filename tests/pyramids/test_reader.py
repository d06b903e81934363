"""Pyramids of generated images: built, indexed, read back by ranged GETs, tiles against the source."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from image_repo.errors import InvalidRequest
from image_repo.pyramids.build import build
from image_repo.pyramids.index import NotUsable, PyramidIndex, index_tiff
from image_repo.pyramids.reader import PyramidReader
from image_repo.storage.filesystem import FileStore
from tests.fixtures.counting import CountingStore

from .conftest import pattern_pixels, write_pattern

W, H = 2600, 1700  # 6 x 4 tiles of 512 at the base, partial at the right and bottom edges


_BUILT: dict[str, tuple[bytes, bytes]] = {}


def built(tmp_path, kind: str, ext: str = ".jpg") -> tuple[PyramidReader, CountingStore]:
    """A reader of the pattern's pyramid, on a fresh counting store (each kind is built once per run)."""
    if kind not in _BUILT:
        src = write_pattern(tmp_path / f"src{ext}", W, H, kind)
        out = tmp_path / "out"
        out.mkdir()
        result = build(str(src), str(out), "p.tif", quality=90, max_pixels=10**9)
        _BUILT[kind] = (Path(result.index).read_bytes(), Path(result.tiff).read_bytes())
    index_blob, tiff = _BUILT[kind]
    store = CountingStore()
    store.put("p.tif", tiff)
    return PyramidReader(PyramidIndex.decode(index_blob), store), store


def test_rgb_jpeg_pyramid_tiles_match_the_source(tmp_path):
    reader, store = built(tmp_path, "rgb")
    info = reader.info
    assert (info.width, info.height, info.tile_width, info.photometric, info.stored) == (W, H, 512, "rgb", "jpeg")
    assert [(lv.width, lv.height) for lv in info.levels][:3] == [(2600, 1700), (1300, 850), (650, 425)]
    assert info.levels[-1].width <= 512 and info.levels[-1].height <= 512
    box = reader.region(0, 700, 300, 900, 600)
    assert box.shape == (600, 900, 3) and box.dtype == np.uint8
    want = pattern_pixels(700, 300, 900, 600, W, H).astype(int)
    assert np.abs(box.astype(int) - want).mean() < 3
    # 3 x 2 tiles cover it: 6 ranged reads, none of the rest of the object
    assert len(store.ranges) == 6 and all(length < 200_000 for _, _, length in store.ranges)
    lv1 = reader.region(1, 0, 0, 1300, 850)
    want1 = pattern_pixels(0, 0, 2600, 1700, W, H)[::2, ::2].astype(int)
    assert np.abs(lv1.astype(int) - want1).mean() < 4


def test_an_aligned_jpeg_tile_is_a_complete_jpeg_with_the_right_colours(tmp_path):
    reader, store = built(tmp_path, "rgb")
    store.ranges.clear()
    tile = reader.stored_tile(0, 1, 2)
    assert tile is not None and tile.startswith(b"\xff\xd8") and tile.endswith(b"\xff\xd9")
    assert len(store.ranges) == 1  # one ranged GET, no decode
    with Image.open(io.BytesIO(tile)) as im:
        assert (im.format, im.size, im.mode) == ("JPEG", (512, 512), "RGB")
        pixels = np.asarray(im).astype(int)
    assert np.abs(pixels - pattern_pixels(512, 1024, 512, 512, W, H).astype(int)).mean() < 3
    assert reader.stored_tile(0, 5, 0) is None  # the right edge tile is padded past the image
    assert reader.stored_tile(0, 0, 3) is None  # and the bottom one
    assert reader.stored_tile(0, 9, 9) is None


def test_rgb_photometric_jpeg_tiles_get_an_adobe_marker(tmp_path):
    # Some writers code JPEG tiles as RGB (photometric 2); a decoder would take them for YCbCr.
    import pyvips

    src = write_pattern(tmp_path / "s.png", W, H, "rgb")
    pyvips.Image.new_from_file(str(src)).tiffsave(
        str(tmp_path / "rgb.tif"), tile=True, tile_width=512, tile_height=512, pyramid=True, compression="jpeg",
        Q=95, rgbjpeg=True)
    index = index_tiff(str(tmp_path / "rgb.tif"), "rgb.tif", 0, in_original=True)
    assert index.jpeg_rgb
    store = FileStore(str(tmp_path / "st"), fsync=False)
    store.put("rgb.tif", (tmp_path / "rgb.tif").read_bytes())
    reader = PyramidReader(index, store)
    with Image.open(io.BytesIO(reader.stored_tile(0, 1, 1) or b"")) as im:
        pixels = np.asarray(im.convert("RGB")).astype(int)
    assert np.abs(pixels - pattern_pixels(512, 512, 512, 512, W, H).astype(int)).mean() < 3
    assert np.abs(reader.region(0, 512, 512, 512, 512).astype(int) - pixels).mean() < 1


def test_sixteen_bit_is_kept_lossless_with_its_window(tmp_path):
    reader, _ = built(tmp_path, "grey16", ".tif")
    info = reader.info
    assert (info.photometric, info.stored, info.channels[0].dtype) == ("grey", "deflate", "uint16")
    box = reader.region(0, 1000, 1000, 700, 500)
    assert box.dtype == np.uint16
    assert np.array_equal(box, pattern_pixels(1000, 1000, 700, 500, W, H, "grey16"))
    assert info.window is not None and 1000 <= info.window[0] < info.window[1] <= 61000
    stats = info.channels[0].stats
    assert stats["min"] <= stats["p0.1"] < stats["p99.9"] <= stats["max"]
    assert reader.stored_tile(0, 0, 0) is None  # not JPEG: cannot pass through


def test_n_channels_are_planes_read_one_range_per_channel_tile(tmp_path):
    reader, store = built(tmp_path, "channels", ".tif")
    info = reader.info
    assert info.photometric == "channels" and len(info.channels) == 5
    assert all(c.dtype == "uint16" and c.stats["max"] > c.stats["min"] for c in info.channels)
    store.ranges.clear()
    box = reader.region(0, 100, 100, 300, 300, channels=(1, 3))  # inside one tile
    assert box.shape == (300, 300, 2)
    want = pattern_pixels(100, 100, 300, 300, W, H, "channels")
    assert np.array_equal(box, want[..., [1, 3]])
    assert len(store.ranges) == 2  # one tile of each of the two channels
    full = reader.region(1, 0, 0, info.levels[1].width, info.levels[1].height)
    assert full.shape[2] == 5
    with pytest.raises(InvalidRequest):
        reader.region(0, 0, 0, 10, 10, channels=(5,))


def test_boxes_outside_the_level_are_refused(tmp_path):
    reader, _ = built(tmp_path, "rgb")
    for box in [(0, -1, 0, 10, 10), (0, 0, 0, W + 1, 10), (0, 0, H - 5, 10, 10), (9, 0, 0, 1, 1), (0, 0, 0, 0, 5)]:
        with pytest.raises(InvalidRequest):
            reader.region(*box)


def test_the_index_round_trips_and_refuses_what_it_is_not(tmp_path):
    reader, _ = built(tmp_path, "rgb")
    again = PyramidIndex.decode(reader.index.encode())
    assert again.info == reader.info
    assert all(np.array_equal(a.offsets, b.offsets) and a.jpeg_tables == b.jpeg_tables
               for a, b in zip(again.levels, reader.index.levels))
    with pytest.raises(ValueError):
        PyramidIndex.decode(b"not an index")


def test_a_striped_or_flat_tiff_is_not_a_pyramid_as_it_stands(tmp_path):
    src = write_pattern(tmp_path / "flat.tif", W, H, "rgb")
    with pytest.raises(NotUsable):
        index_tiff(str(src), "flat.tif", 0, in_original=True)
    (tmp_path / "junk.tif").write_bytes(b"II*\x00" + b"\x00" * 100)
    with pytest.raises(NotUsable):
        index_tiff(str(tmp_path / "junk.tif"), "junk.tif", 0, in_original=True)

"""The whole-image TiledSource: EXIF orientation, DCT-scaled decodes, intermediates."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from image_repo.imaging.derive import ORIENTATION_TRANSPOSE
from image_repo.service.whole import WholeImageSource, describe, shown_to_stored, whole_info
from tests.fixtures.images import assert_scene, make_jpeg, make_png


@pytest.mark.parametrize("turn", range(1, 9))
def test_a_displayed_box_maps_onto_the_same_stored_pixels(turn):
    rng = np.random.default_rng(turn)
    stored = Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8))
    shown = stored.transpose(ORIENTATION_TRANSPOSE[turn]) if turn in ORIENTATION_TRANSPOSE else stored
    box = (5, 7, 31, 40)
    sx0, sy0, sx1, sy1 = (int(v) for v in shown_to_stored(box, turn, stored.size))
    cut = stored.crop((sx0, sy0, sx1, sy1))
    cut = cut.transpose(ORIENTATION_TRANSPOSE[turn]) if turn in ORIENTATION_TRANSPOSE else cut
    assert np.array_equal(np.asarray(cut), np.asarray(shown.crop(box)))


def source_for(data: bytes, kept: list | None = None, reads: list | None = None) -> WholeImageSource:
    described = describe(data, max_pixels=100_000_000)

    def read() -> bytes:
        if reads is not None:
            reads.append(1)
        return data

    return WholeImageSource(
        whole_info(described, 512), described, read_original=read,
        intermediate=lambda: kept[-1] if kept else None,
        keep=kept.append if kept is not None else None, max_pixels=100_000_000,
    )


def test_exif_orientation_is_applied_so_sizes_agree_with_images():
    source = source_for(make_jpeg(800, 600, exif_orientation=6))  # stored 600x800, shown 800x600
    assert (source.info.width, source.info.height) == (800, 600)
    assert [(lv.width, lv.height) for lv in source.info.levels] == [(800, 600), (400, 300)]
    whole = Image.fromarray(source.region(0, 0, 0, 800, 600))
    assert whole.size == (800, 600)
    assert_scene(whole)
    part = source.region(0, 400, 300, 400, 300)  # the bottom right quadrant, from the same stored pixels
    assert np.abs(part.astype(int) - np.asarray(whole)[300:, 400:].astype(int)).mean() < 4


def test_a_smaller_level_decodes_a_jpeg_at_its_dct_scale():
    source = source_for(make_jpeg(2000, 1600))
    level = source.info.levels[2]  # 500x400
    out = source.region(2, 0, 0, level.width, level.height)
    assert out.shape == (400, 500, 3)
    assert source.decoded == [(500, 400)]  # 1/4 scale: a quarter of each side decoded, not the whole


def test_a_png_and_grey_images():
    source = source_for(make_png(300, 200, mode="L"))
    assert source.info.photometric == "grey" and source.region(0, 0, 0, 300, 200).shape == (200, 300)


def test_the_first_decode_keeps_an_intermediate_and_smaller_levels_use_it():
    kept: list = []
    reads: list = []
    source = source_for(make_jpeg(4200, 2800), kept, reads)
    source.region(0, 0, 0, 512, 512)  # a full-resolution tile: the original decoded whole
    assert len(reads) == 1 and len(kept) == 1 and kept[0].width <= 2048
    level = source.info.levels[2]  # 1050x700: the intermediate (1400x934) has the detail
    out = source.region(2, 0, 0, level.width, level.height)
    assert len(reads) == 1 and out.shape == (700, 1050, 3)
    assert_scene(Image.fromarray(out))

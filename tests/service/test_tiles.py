"""Rendering IIIF requests from a TiledSource (an array-backed one): level choice, reads, turns, qualities, passthrough."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from image_repo.iiif import parse_request
from image_repo.service import tiles
from tests.fixtures.tiled import ArraySource, gradient

MAX = 50_000_000


def req(source: ArraySource, path: str, version: int = 3):
    region, size, rotation, qf = path.split("/")
    r = parse_request(version, region, size, rotation, qf).resolve(source.info.width, source.info.height, max_area=MAX)
    from dataclasses import replace

    return replace(r, quality=tiles.effective_quality(r.quality, source.info))


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def mean_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean())


@pytest.fixture
def source() -> ArraySource:
    return ArraySource(gradient(2000, 1500), tile=256)


def test_levels_halve_until_one_tile(source):
    assert [(lv.width, lv.height, lv.scale) for lv in source.info.levels] == [
        (2000, 1500, 1.0), (1000, 750, 2.0), (500, 375, 4.0), (250, 188, 8.0)]


@pytest.mark.parametrize("path, level", [
    ("full/500,/0/default.png", 2),
    ("full/501,/0/default.png", 1),
    ("full/250,/0/default.png", 3),
    ("full/max/0/default.png", 0),
    ("1024,1024,976,476/244,119/0/default.png", 2),  # an edge tile at scale 4: its own level
    ("0,0,100,100/^200,200/0/default.png", 0),
])
def test_the_level_nearest_above_the_scale_asked(source, path, level):
    assert tiles.choose_level(source.info, req(source, path)) == level


def test_only_the_covered_box_is_read(source):
    tiles.render(source, req(source, "1000,500,256,256/128,128/0/default.png"))
    assert source.region_calls == [(1, 500, 250, 128, 128)]


def test_a_region_matches_the_full_resolution_pixels_scaled(source):
    data = tiles.render(source, req(source, "300,200,800,600/200,150/0/default.png"))
    got = decoded(data)
    want = Image.fromarray(source.levels[0]).crop((300, 200, 1100, 800)).resize((200, 150), Image.Resampling.LANCZOS)
    assert got.size == (200, 150) and got.mode == "RGB"
    assert mean_diff(got, want) < 3


@pytest.mark.parametrize("rotation, transform", [
    ("90", lambda a: np.rot90(a, -1)), ("180", lambda a: np.rot90(a, 2)), ("270", lambda a: np.rot90(a, 1)),
    ("!0", lambda a: a[:, ::-1]), ("!90", lambda a: np.rot90(a[:, ::-1], -1)),
])
def test_mirror_then_turn_clockwise(source, rotation, transform):
    got = np.asarray(decoded(tiles.render(source, req(source, f"10,20,300,200/max/{rotation}/default.png"))))
    want = transform(source.levels[0][20:220, 10:310])
    assert got.shape == want.shape and np.array_equal(got, want)


def test_arbitrary_rotation_on_a_transparent_ground(source):
    got = decoded(tiles.render(source, req(source, "0,0,200,100/max/30/default.png")))
    assert got.mode == "RGBA" and abs(got.width - 224) <= 1 and abs(got.height - 187) <= 1  # Pillow rounds its corners
    assert got.getpixel((0, 0))[3] == 0 and got.getpixel((112, 93))[3] == 255


def test_gray_and_bitonal(source):
    gray = decoded(tiles.render(source, req(source, "full/200,/0/gray.png")))
    bitonal = decoded(tiles.render(source, req(source, "full/200,/0/bitonal.png")))
    assert gray.mode == "L" and len(set(np.asarray(gray).ravel().tolist())) > 100
    assert bitonal.mode == "L" and set(np.asarray(bitonal).ravel().tolist()) == {0, 255}


def test_sixteen_bit_samples_show_through_the_window():
    samples = np.linspace(1000, 3000, 256 * 64).reshape(64, 256).astype(np.uint16)
    source = ArraySource(samples, tile=256, stored="zstd", window=(1000.0, 3000.0))
    got = np.asarray(decoded(tiles.render(source, req(source, "full/max/0/default.png"))))
    assert got.dtype == np.uint8 and got.min() == 0 and got.max() == 255
    assert abs(int(got[32, 128]) - 128) <= 1


@pytest.mark.parametrize("path, expected", [
    ("0,0,256,256/256,256/0/default.jpg", (0, 0, 0)),
    ("512,512,512,512/256,256/0/default.jpg", (1, 1, 1)),
    ("0,0,1024,1024/256,256/0/color.jpg", (2, 0, 0)),
    ("1792,1280,208,220/208,220/0/default.jpg", (0, 7, 5)),  # an edge tile: the source decides it has no file
    ("0,0,256,256/256,256/0/default.png", None),
    ("0,0,256,256/256,256/90/default.jpg", None),
    ("0,0,256,256/256,256/!0/default.jpg", None),
    ("0,0,256,256/256,256/0/gray.jpg", None),
    ("0,0,256,256/255,255/0/default.jpg", None),
    ("1,0,256,256/256,256/0/default.jpg", None),
])
def test_which_requests_are_one_stored_tile(source, path, expected):
    assert tiles.stored_tile_at(source.info, req(source, path)) == expected


def test_no_passthrough_from_sources_not_stored_as_jpeg():
    source = ArraySource(gradient(512, 512), tile=256, stored="deflate")
    assert tiles.stored_tile_at(source.info, req(source, "0,0,256,256/256,256/0/default.jpg")) is None


def test_a_level_halved_with_rounding_keeps_its_nominal_factor():
    """A pyramid of 2001 px has a 1000 px level: its scale 2.001 is IIIF's scale factor 2."""
    from dataclasses import replace as copy

    from image_repo.iiif.info import scale_factors
    from image_repo.pyramids.source import Level

    source = ArraySource(gradient(2001, 1501), tile=256)
    info = copy(source.info, levels=(Level(2001, 1501, 1.0), Level(1000, 750, 2001 / 1000), Level(500, 375, 2001 / 500)))
    assert scale_factors(info) == [1, 2, 4]
    r = req(source, "512,512,512,512/256,256/0/default.jpg")
    assert tiles.stored_tile_at(info, r) == (1, 1, 1)

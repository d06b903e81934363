"""derive(): geometry, orientation, modes, colour, metadata stripping, for every kind in and out."""

from __future__ import annotations

import functools
import gc
import weakref
from collections.abc import Callable

import pytest
from PIL import Image, ImageFile, JpegImagePlugin

from image_repo.imaging import DerivationSpec, Derived, derive
from image_repo.imaging.derive import draft_scale, fit_size
from image_repo.imaging.spec import parse_query
from tests.fixtures.images import (
    QUADRANTS,
    assert_scene,
    colour_close,
    make_avif,
    make_bmp,
    make_gif,
    make_heic,
    make_jpeg,
    make_png,
    make_tagged_jpeg,
    make_tiff,
    make_webp,
    metadata_markers,
    open_bytes,
    quadrant_colours,
    scene,
    similarity,
)

pytestmark = pytest.mark.filterwarnings("error")  # a warning from Pillow must not pass unnoticed

LIMIT = 50_000_000
OUTPUT_KINDS = ["jpg", "png", "gif", "webp", "tif", "bmp"]
OUTPUT_FORMAT = {"jpg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "tif": "TIFF", "bmp": "BMP"}
OUTPUT_MODES = {
    "jpg": {"RGB", "L"},
    "png": {"L", "LA", "RGB", "RGBA"},
    "gif": {"P", "L"},
    "webp": {"RGB", "RGBA"},
    "tif": {"L", "LA", "RGB", "RGBA"},
    "bmp": {"RGB", "L"},
}

# name -> (maker, is greyscale, has a transparent top-left quadrant)
INPUTS: dict[str, tuple[Callable[[], bytes], bool, bool]] = {
    "jpeg": (lambda: make_jpeg(200, 150), False, False),
    "jpeg_exif6_tagged": (lambda: make_tagged_jpeg(200, 150, 6), False, False),
    "jpeg_progressive": (lambda: make_jpeg(200, 150, progressive=True), False, False),
    "jpeg_grey": (lambda: make_jpeg(200, 150, mode="L"), True, False),
    "jpeg_cmyk": (lambda: make_jpeg(200, 150, mode="CMYK"), False, False),
    "jpeg_srgb_icc": (lambda: make_jpeg(200, 150, icc="srgb"), False, False),
    "png": (lambda: make_png(200, 150), False, False),
    "png_palette": (lambda: make_png(200, 150, mode="P"), False, True),
    "png_rgba_text": (lambda: make_png(200, 150, mode="RGBA", text=True, exif=True, icc="srgb"), False, True),
    "png_la": (lambda: make_png(200, 150, mode="LA"), True, True),
    "png_16bit": (lambda: make_png(200, 150, mode="I;16"), True, False),
    "apng": (lambda: make_png(200, 150, frames=3), False, False),
    "tiff": (lambda: make_tiff(200, 150), False, False),
    "tiff_16bit": (lambda: make_tiff(200, 150, mode="I;16"), True, False),
    "tiff_cmyk": (lambda: make_tiff(200, 150, mode="CMYK"), False, False),
    "tiff_rgba": (lambda: make_tiff(200, 150, mode="RGBA"), False, True),
    "tiff_metadata": (lambda: make_tiff(200, 150, exif=True, icc="srgb"), False, False),
    "gif": (lambda: make_gif(200, 150), False, False),
    "gif_animated": (lambda: make_gif(200, 150, frames=3, comment=True), False, False),
    "gif_transparent": (lambda: make_gif(200, 150, transparent=True), False, True),
    "webp": (lambda: make_webp(200, 150, exif=True, xmp=True, icc="srgb"), False, False),
    "webp_lossy": (lambda: make_webp(200, 150, lossless=False), False, False),
    "webp_animated": (lambda: make_webp(200, 150, frames=3), False, False),
    "webp_rgba_animated": (lambda: make_webp(200, 150, mode="RGBA", frames=3), False, True),
    "bmp": (lambda: make_bmp(200, 150), False, False),
    "avif": (lambda: make_avif(200, 150), False, False),
    "heic": (lambda: make_heic(200, 150), False, False),
}


@functools.cache
def source(name: str) -> bytes:
    return INPUTS[name][0]()


def reference(grey: bool, transparent: bool) -> Image.Image:
    ref = scene(200, 150)
    if transparent:
        ref.paste((255, 255, 255), (0, 0, 100, 75))
    return ref.convert("L").convert("RGB") if grey else ref


def run(data: bytes, **spec: object) -> tuple[Derived, Image.Image]:
    result = derive(data, DerivationSpec(**spec), max_pixels=LIMIT, max_output_pixels=LIMIT)  # type: ignore[arg-type]
    return result, open_bytes(result.data)


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
@pytest.mark.parametrize("name", INPUTS)
def test_every_input_to_every_output(name: str, kind: str) -> None:
    _, grey, transparent = INPUTS[name]
    result, im = run(source(name), kind=kind, width=100, height=100)
    assert (result.width, result.height) == im.size == (100, 75)
    assert result.kind == kind and im.format == OUTPUT_FORMAT[kind]
    assert result.content_type == Image.MIME[OUTPUT_FORMAT[kind]]
    assert im.mode in OUTPUT_MODES[kind]
    assert getattr(im, "n_frames", 1) == 1
    assert similarity(im, reference(grey, transparent)) > 0.93
    assert metadata_markers(result.data) == set()
    if transparent and kind in ("png", "webp", "tif", "gif"):
        assert im.convert("RGBA").getpixel((10, 10))[3] == 0, "transparency lost"  # type: ignore[index]


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
@pytest.mark.parametrize("name", ["jpeg_exif6_tagged", "png_rgba_text", "webp", "tiff_metadata", "gif_animated"])
def test_full_size_output_carries_no_metadata(name: str, kind: str) -> None:
    assert metadata_markers(source(name)) != set()  # the fixture does carry some
    result, _ = run(source(name), kind=kind)
    assert metadata_markers(result.data) == set()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    data = make_jpeg(200, 100, exif_orientation=orientation)
    _, im = run(data, kind="png", width=100)
    assert im.size == (100, 50)
    assert_scene(im)


def test_orientation_6_turns_the_stored_pixels() -> None:
    stored = open_bytes(source("jpeg_exif6_tagged"))
    assert stored.size == (150, 200)
    assert colour_close(quadrant_colours(stored)["top_left"], QUADRANTS["top_right"])  # stored turned left
    _, im = run(source("jpeg_exif6_tagged"))
    assert im.size == (200, 150)
    assert_scene(im)


@pytest.mark.parametrize("name", ["png_palette", "png_rgba_text", "png_la", "gif_transparent", "webp_rgba_animated"])
@pytest.mark.parametrize("kind", ["jpg", "bmp"])
def test_transparency_becomes_white_not_black(name: str, kind: str) -> None:
    _, im = run(source(name), kind=kind)
    assert min(im.convert("RGB").getpixel((30, 30))) >= 245  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["tiff_16bit", "png_16bit"])
def test_16_bit_is_scaled_not_blown_out(name: str) -> None:
    _, im = run(source(name), kind="jpg")
    assert im.mode == "L"
    want = {k: round(0.299 * r + 0.587 * g + 0.114 * b) for k, (r, g, b) in QUADRANTS.items()}
    got = quadrant_colours(im)
    for where, level in want.items():
        assert abs(got[where][0] - level) <= 6, (where, got[where], level)


def test_cmyk_is_converted_to_rgb_faithfully() -> None:
    _, im = run(source("jpeg_cmyk"), kind="png")
    assert im.mode == "RGB"
    assert_scene(im, tol=45)


def test_wide_gamut_profile_is_converted_to_srgb() -> None:
    _, tagged_srgb = run(make_jpeg(200, 150, icc="srgb"), kind="png")
    _, untagged = run(make_jpeg(200, 150), kind="png")
    _, wide = run(make_jpeg(200, 150, icc="wide"), kind="png")

    def green(im: Image.Image) -> tuple[int, int, int]:
        return quadrant_colours(im)["top_right"]

    assert colour_close(green(tagged_srgb), green(untagged), tol=3)  # sRGB -> sRGB changes nothing
    assert not colour_close(green(wide), green(untagged), tol=10)  # Adobe RGB green is not sRGB green
    assert "icc" not in metadata_markers(run(make_jpeg(200, 150, icc="wide"), kind="jpg")[0].data)


@pytest.mark.parametrize("name", ["gif_animated", "webp_animated", "apng"])
def test_animation_gives_its_first_frame(name: str) -> None:
    _, im = run(source(name), kind="gif")
    assert getattr(im, "n_frames", 1) == 1
    assert_scene(im)


@pytest.mark.parametrize(
    ("box", "size"),
    [
        ((1000, 1000), (200, 150)),  # never upscaled
        ((1000, None), (200, 150)),
        ((None, 300), (200, 150)),  # a side bounds only that side
        ((100, None), (100, 75)),
        ((None, 75), (100, 75)),
        ((100, 10), (13, 10)),  # non-square box: aspect kept (the 2016 server distorted this)
        ((None, None), (200, 150)),
    ],
)
def test_fit_within_box(box: tuple[int | None, int | None], size: tuple[int, int]) -> None:
    _, im = run(source("png"), kind="png", width=box[0], height=box[1])
    assert im.size == size


@pytest.mark.parametrize(
    ("size", "box", "want"),
    [
        ((1, 100_000), (50, 50), (1, 50)),
        ((100_000, 1), (50, 50), (50, 1)),
        ((3, 100_000), (50, 50), (1, 50)),
        ((400, 200), (100, 300), (100, 50)),
        ((8000, 6000), (50, 50), (50, 37)),
        ((400, 300), (50, 50), (50, 37)),  # rounded down, like the 2016 server
        ((600, 300), (None, 100), (200, 100)),
        ((999, 1000), (100, 100), (99, 100)),
        ((10, 10), (1, 1), (1, 1)),
    ],
)
def test_fit_size(size: tuple[int, int], box: tuple[int, int], want: tuple[int, int]) -> None:
    assert fit_size(size, box) == want


@pytest.mark.parametrize(("w", "h", "want"), [(1, 5000, (1, 50)), (5000, 1, (50, 1)), (2, 3000, (1, 50))])
@pytest.mark.parametrize("kind", ["jpg", "png", "gif"])
def test_extreme_strips_give_at_least_one_pixel(w: int, h: int, want: tuple[int, int], kind: str) -> None:
    result, im = run(make_png(w, h), kind=kind, width=50, height=50)
    assert im.size == (result.width, result.height) == want


def test_thumbnail_default_box_and_sharpening() -> None:
    spec = parse_query({"thumbnail": "true"}).spec
    result = derive(source("png"), spec, max_pixels=LIMIT, max_output_pixels=LIMIT)
    assert (result.width, result.height) == (50, 37)
    _, bare_default = run(source("png"), kind="png", thumbnail=True)  # no box at all: 50x50 too
    assert bare_default.size == (50, 37)
    _, thumb = run(source("jpeg"), kind="png", width=100, thumbnail=True)
    _, plain = run(source("jpeg"), kind="png", width=100)
    assert thumb.size == plain.size == (100, 75)
    assert thumb.tobytes() != plain.tobytes()  # sharpened
    assert similarity(thumb, plain) > 0.97  # ... lightly


def test_draft_scale_is_the_smallest_dct_scale_covering_the_target() -> None:
    assert draft_scale((8000, 6000), (50, 38)) == 8
    assert draft_scale((8000, 6000), (1000, 750)) == 8
    assert draft_scale((8000, 6000), (1001, 750)) == 4
    assert draft_scale((8000, 6000), (2000, 1500)) == 4
    assert draft_scale((8000, 6000), (4000, 3000)) == 2
    assert draft_scale((8000, 6000), (8000, 6000)) == 1


@pytest.fixture
def decoded_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The size each JPEG has when its pixels are decoded (after draft())."""
    sizes: list[tuple[int, int]] = []
    original = JpegImagePlugin.JpegImageFile.load

    def load(self: JpegImagePlugin.JpegImageFile) -> object:
        if self.tile:
            sizes.append(self.size)
        return original(self)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "load", load)
    return sizes


def test_48mp_jpeg_thumbnail_decodes_at_one_eighth(jpeg_48mp: bytes, decoded_sizes: list[tuple[int, int]]) -> None:
    _, im = run(jpeg_48mp, kind="jpg", width=50, height=50, thumbnail=True)
    assert decoded_sizes[0] == (1000, 750)  # not 8000x6000 ([1] is the test reading the output)
    assert im.size == (50, 37)
    assert_scene(im)


def test_draft_box_accounts_for_orientation(decoded_sizes: list[tuple[int, int]]) -> None:
    data = make_jpeg(800, 600, exif_orientation=6)  # stored 600x800
    _, im = run(data, width=100, height=75)
    assert decoded_sizes[0] == (75, 100)  # 1/8: the target turned to the stored orientation
    assert im.size == (100, 75)
    assert_scene(im)


def test_full_size_jpeg_is_not_drafted(decoded_sizes: list[tuple[int, int]]) -> None:
    run(source("jpeg"))
    assert decoded_sizes[0] == (200, 150)


def test_truncated_images_are_never_loaded_leniently() -> None:
    import image_repo.imaging  # noqa: F401

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("name", ["jpeg_exif6_tagged", "png_palette", "tiff_16bit", "gif_animated", "jpeg_cmyk"])
@pytest.mark.parametrize("kind", ["jpg", "gif"])
def test_no_image_outlives_the_call(name: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = source(name)
    alive: list[weakref.ref[Image.Image]] = []
    init = Image.Image.__init__

    def tracked(self: Image.Image) -> None:
        init(self)
        alive.append(weakref.ref(self))

    monkeypatch.setattr(Image.Image, "__init__", tracked)
    gc.disable()  # freed by reference counting, not left for a collector to find
    try:
        derive(data, DerivationSpec(kind=kind, width=100, thumbnail=True), max_pixels=LIMIT, max_output_pixels=LIMIT)
        assert len(alive) > 1 and all(ref() is None for ref in alive)
    finally:
        gc.enable()

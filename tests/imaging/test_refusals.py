"""What derive(), probe() and read_metadata() refuse: 413 too big, 415 not ours, 422 broken."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from image_repo.errors import ImageRepoError, PayloadTooLarge, UnprocessableImage, UnsupportedImage
from image_repo.imaging import DerivationSpec, derive, probe, read_metadata
from image_repo.imaging import decode as decode_module
from tests.fixtures.formats import make_pcx
from tests.fixtures.images import (
    NOT_IMAGES,
    gif_header_only,
    jpeg_header_only,
    make_gif,
    make_jpeg,
    make_png,
    make_tiff,
    make_webp,
    png_header_only,
)

pytestmark = pytest.mark.filterwarnings("error")

LIMIT = 50_000_000


def _derive(data: bytes) -> object:
    return derive(data, DerivationSpec(width=50), max_pixels=LIMIT, max_output_pixels=LIMIT)


def _probe(data: bytes) -> object:
    return probe(data, max_pixels=LIMIT)


def _meta(data: bytes) -> object:
    return read_metadata(data, include_gps=True)


CALLS: dict[str, Callable[[bytes], object]] = {"derive": _derive, "probe": _probe, "metadata": _meta}


def test_statuses() -> None:
    assert (PayloadTooLarge.status, UnsupportedImage.status, UnprocessableImage.status) == (413, 415, 422)


@pytest.mark.parametrize("call", ["derive", "probe"])
@pytest.mark.parametrize(
    "bomb",
    [
        png_header_only(100_000, 100_000),  # over Pillow's own limit too
        png_header_only(10_000, 10_000),  # over ours only: a tiny file declaring 100 MP
        gif_header_only(65_535, 65_535),
        gif_header_only(8_000, 8_000),
        jpeg_header_only(60_000, 60_000),
        jpeg_header_only(10_000, 6_000),
    ],
    ids=["png-huge", "png", "gif-huge", "gif", "jpeg-huge", "jpeg"],
)
def test_decompression_bombs_are_413_before_decoding(call: str, bomb: bytes) -> None:
    assert len(bomb) < 1000
    with pytest.raises(PayloadTooLarge, match="megapixels|too large"):
        CALLS[call](bomb)


def test_a_limit_above_pillows_default_is_honoured() -> None:
    over_pillows_warning = jpeg_header_only(10_000, 9_000)  # 90 MP: Pillow warns (limit 89.5 MP)
    # Accepted by size; libjpeg then fills the missing scan with grey (it only warns when a
    # scan ends early but the file ends with EOI).
    assert probe(over_pillows_warning, max_pixels=100_000_000).width == 10_000
    with pytest.raises(PayloadTooLarge):
        probe(over_pillows_warning, max_pixels=89_000_000)


def test_max_pixels_is_the_argument() -> None:
    data = make_png(400, 300)
    probe(data, max_pixels=120_000)
    with pytest.raises(PayloadTooLarge, match=r"400x300 .*limit is 0\.1"):
        probe(data, max_pixels=119_999)


def test_max_output_pixels() -> None:
    data = make_png(400, 300)
    with pytest.raises(PayloadTooLarge, match="400x300"):
        derive(data, DerivationSpec(), max_pixels=LIMIT, max_output_pixels=10_000)
    result = derive(data, DerivationSpec(width=100), max_pixels=LIMIT, max_output_pixels=10_000)
    assert (result.width, result.height) == (100, 75)


BROKEN = {
    "jpeg": make_jpeg(200, 150),
    "jpeg-progressive": make_jpeg(200, 150, progressive=True),
    "png": make_png(200, 150),
    "gif": make_gif(200, 150),
    "tiff-deflate": make_tiff(200, 150),  # header at the front, directory at the end
    "tiff-raw": make_tiff(200, 150, exif=True),
    "webp": make_webp(200, 150),
}


@pytest.mark.parametrize("call", ["derive", "probe"])
@pytest.mark.parametrize("keep", [0.05, 0.5, 0.9])
@pytest.mark.parametrize("name", BROKEN)
def test_truncated_images_are_422(call: str, keep: float, name: str) -> None:
    with pytest.raises(UnprocessableImage):
        data = BROKEN[name]
        CALLS[call](data[: max(16, int(len(data) * keep))])  # 16: enough to show the signature


def test_corrupt_jpeg_scan_is_422() -> None:
    data = bytearray(make_jpeg(200, 150))
    sos = data.find(b"\xff\xda")
    data[sos + 20 : sos + 200] = b"\xff\x00" * 90  # garbage entropy data, then the file is cut
    with pytest.raises(UnprocessableImage):
        _derive(bytes(data[: sos + 220]))


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("name", [*NOT_IMAGES, "pcx"])
def test_not_images_and_other_formats_are_415(call: str, name: str) -> None:
    data = make_pcx() if name == "pcx" else NOT_IMAGES[name]
    with pytest.raises(UnsupportedImage):
        CALLS[call](data)


def test_heic_without_its_plugin_is_415(monkeypatch: pytest.MonkeyPatch) -> None:
    without = tuple(f for f in decode_module.decoders() if f != "HEIF")
    monkeypatch.setattr(decode_module, "decoders", lambda: without)
    fake = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    with pytest.raises(UnsupportedImage, match="heic"):
        _derive(fake)


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff",  # a JPEG signature and nothing else
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 30,
        b"GIF89a\x00\x00\x00\x00",  # declares 0x0
        b"II*\x00\xff\xff\xff\xff",  # first directory far outside the file
        b"BM" + b"\xff" * 60,
        b"RIFF\x10\x00\x00\x00WEBPVP8 ",
    ],
)
def test_garbage_after_a_signature_is_a_clean_error(call: str, data: bytes) -> None:
    with pytest.raises((UnprocessableImage, UnsupportedImage)):
        CALLS[call](data)


def test_only_our_errors_escape_on_fuzzed_bytes() -> None:
    import random

    rng = random.Random(1)
    seeds = [make_jpeg(64, 48), make_png(64, 48, mode="P"), make_gif(64, 48, frames=2), make_webp(64, 48)]
    seeds += [make_tiff(64, 48)]
    for seed in seeds:
        for _ in range(25):
            data = bytearray(seed)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            for call in CALLS.values():
                try:
                    call(bytes(data))
                except ImageRepoError as exc:
                    assert exc.status in (413, 415, 422), exc

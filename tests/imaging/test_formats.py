"""The formats of issue 15: AVIF and JPEG 2000 out; JPEG 2000, PSD, TGA, Netpbm, ICO, QOI in.

Each new decoder is held to the old rules: the declared size is checked before decoding (413),
a cut file is a 422, and nothing of the original's metadata reaches an output.
"""
from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image

from image_repo.errors import PayloadTooLarge, UnprocessableImage
from image_repo.imaging import DerivationSpec, derive, probe, read_metadata
from image_repo.imaging.decode import sniff
from image_repo.imaging.headers import icon_pixels, j2k_levels, j2k_reduce
from tests.fixtures.formats import (
    LAYER_COLOUR,
    container_markers,
    ico_bomb,
    ico_with_png,
    jp2_bomb,
    make_jp2,
    make_ppm,
    make_psd,
    make_qoi,
    make_tga,
    ppm_bomb,
    psd_bomb,
    qoi_bomb,
    tga_bomb,
)
from tests.fixtures.images import (
    assert_scene,
    colour_close,
    make_ico,
    make_png,
    make_tagged_jpeg,
    open_bytes,
    png_header_only,
    quadrant_colours,
    scene,
    similarity,
    srgb_icc,
)

pytestmark = pytest.mark.filterwarnings("error")

LIMIT = 50_000_000

INPUTS: dict[str, Callable[[], bytes]] = {
    "jp2": lambda: make_jp2(400, 300),
    "j2k": lambda: make_jp2(400, 300, codestream=True),
    "jp2-grey": lambda: make_jp2(400, 300, mode="L"),
    "psd": lambda: make_psd(400, 300),
    "tga": lambda: make_tga(400, 300),
    "tga-raw": lambda: make_tga(400, 300, rle=False),
    "ppm": lambda: make_ppm(400, 300),
    "pgm": lambda: make_ppm(400, 300, mode="L"),
    "pbm": lambda: make_ppm(400, 300, mode="1"),
    "qoi": lambda: make_qoi(400, 300),
    "qoi-rgba": lambda: make_qoi(400, 300, mode="RGBA"),
    "ico": lambda: make_ico(256),
}
KIND_OF_INPUT = {"jp2": "jp2", "j2k": "jp2", "jp2-grey": "jp2", "psd": "psd", "tga": "tga", "tga-raw": "tga",
                 "ppm": "ppm", "pgm": "ppm", "pbm": "ppm", "qoi": "qoi", "qoi-rgba": "qoi", "ico": "ico"}


@pytest.mark.parametrize("name", INPUTS)
def test_each_new_input_is_read(name: str) -> None:
    data = INPUTS[name]()
    info = probe(data, max_pixels=LIMIT)
    assert info.kind.name == KIND_OF_INPUT[name] and info.frames == 1
    out = derive(data, DerivationSpec(kind="png", width=100), max_pixels=LIMIT, max_output_pixels=LIMIT)
    im = open_bytes(out.data)
    assert im.format == "PNG" and im.width == 100
    if name == "pbm":  # one bit: the quadrants are black or white, but the picture is the same shape
        assert im.size == (100, 75)
    elif name.startswith(("jp2-grey", "pgm")):
        assert similarity(im.convert("L"), scene(100, 75).convert("L")) > 0.9
    else:
        assert_scene(im.convert("RGB"))
    meta = read_metadata(data, include_gps=True)
    assert meta["format"] == KIND_OF_INPUT[name] and meta["frames"] == 1


def test_a_psd_is_served_flattened_not_a_layer() -> None:
    data = make_psd(200, 150)
    out = derive(data, DerivationSpec(kind="png"), max_pixels=LIMIT, max_output_pixels=LIMIT)
    im = open_bytes(out.data).convert("RGB")
    assert_scene(im)
    assert not any(colour_close(c, LAYER_COLOUR) for c in quadrant_colours(im).values())


def test_sniff_names_each_new_kind() -> None:
    for name in ("jp2", "j2k", "psd", "ppm", "pgm", "pbm", "qoi", "ico"):
        kind = sniff(INPUTS[name]())
        assert kind is not None and kind.name == KIND_OF_INPUT[name], name
    assert sniff(make_tga(10, 10)) is None  # no signature: Pillow's plugin decides, after the others
    assert sniff(b"PNG is a format") is None and sniff(b"P9\n") is None


@pytest.mark.parametrize("kind", ["avif", "jp2"])
@pytest.mark.parametrize("source", ["png", "jpeg-tagged", "jp2"])
def test_avif_and_jp2_output(kind: str, source: str) -> None:
    data = {"png": lambda: make_png(400, 300), "jpeg-tagged": lambda: make_tagged_jpeg(400, 300, 6),
            "jp2": lambda: make_jp2(400, 300)}[source]()
    out = derive(data, DerivationSpec(kind=kind, width=120), max_pixels=LIMIT, max_output_pixels=LIMIT)
    im = open_bytes(out.data)
    assert im.format == {"avif": "AVIF", "jp2": "JPEG2000"}[kind] and im.size == (120, 90)
    assert out.content_type == {"avif": "image/avif", "jp2": "image/jp2"}[kind]
    assert_scene(im.convert("RGB"))  # orientation 6 applied for the tagged JPEG
    assert container_markers(out.data) == set()
    for secret in (b"Secret Photographer", b"GPS", b"Canon", b"private comment"):
        assert secret not in out.data


def test_the_container_check_sees_metadata_when_it_is_there() -> None:
    """So that the assertion above could fail: an AVIF written with EXIF and ICC shows both.
    (Pillow's JPEG 2000 writer embeds no metadata at all.)"""
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    buf = io.BytesIO()
    scene(40, 30).save(buf, "AVIF", exif=exif.tobytes(), icc_profile=srgb_icc())
    assert container_markers(buf.getvalue()) >= {"exif", "icc"}


def test_avif_keeps_transparency() -> None:
    rgba = Image.new("RGBA", (80, 60), (255, 0, 0, 0))
    rgba.paste((0, 255, 0, 255), (0, 0, 40, 60))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    out = derive(buf.getvalue(), DerivationSpec(kind="avif"), max_pixels=LIMIT, max_output_pixels=LIMIT)
    im = open_bytes(out.data)
    assert im.mode == "RGBA" and im.getpixel((70, 30))[3] < 16 and im.getpixel((10, 30))[3] > 240


BOMBS: dict[str, Callable[[int, int], bytes]] = {
    "jp2": jp2_bomb, "psd": psd_bomb, "tga": tga_bomb, "ppm": ppm_bomb, "qoi": qoi_bomb, "ico-png": ico_bomb,
}


@pytest.mark.parametrize("call", ["derive", "probe"])
@pytest.mark.parametrize("name", BOMBS)
@pytest.mark.parametrize("size", [(10_000, 10_000), (30_000, 30_000)], ids=["over-ours", "over-pillows"])
def test_bombs_of_new_formats_are_413_before_decoding(call: str, name: str, size: tuple[int, int]) -> None:
    if name == "tga" and size[0] > 65_535:
        pytest.fail("TGA sides are 16 bits")
    bomb = BOMBS[name](*size)
    assert len(bomb) < 10_000
    with pytest.raises(PayloadTooLarge):
        if call == "derive":
            derive(bomb, DerivationSpec(width=50), max_pixels=LIMIT, max_output_pixels=LIMIT)
        else:
            probe(bomb, max_pixels=LIMIT)


def test_an_icon_is_checked_before_pillow_decodes_it_while_opening() -> None:
    """Pillow decodes an icon's image in open(): the declared size of what is inside is read first."""
    bomb = ico_with_png(png_header_only(8_000, 8_000), declared=16)  # 64 MP inside a '16x16' icon
    assert icon_pixels(bomb) == 64_000_000
    with pytest.raises(PayloadTooLarge, match="icon"):
        probe(bomb, max_pixels=LIMIT)
    with pytest.raises(PayloadTooLarge):
        read_metadata(ico_with_png(png_header_only(20_000, 20_000)), include_gps=False)  # Pillow's limit then


@pytest.mark.parametrize("name", ["jp2", "j2k", "psd", "tga", "ppm", "qoi"])
@pytest.mark.parametrize("keep", [0.3, 0.9])
def test_cut_files_of_new_formats_are_422(name: str, keep: float) -> None:
    data = INPUTS[name]()
    with pytest.raises(UnprocessableImage):
        probe(data[: int(len(data) * keep)], max_pixels=LIMIT)


def test_jpeg2000_is_decoded_at_the_resolution_the_target_needs() -> None:
    data = make_jp2(1600, 1200)
    assert j2k_levels(data) == 5 and j2k_levels(make_jp2(1600, 1200, codestream=True)) == 5
    assert j2k_reduce((1600, 1200), (100, 75), 5) == 4
    assert j2k_reduce((1600, 1200), (1600, 1200), 5) == 0
    assert j2k_reduce((400, 300), (1, 1), 5) == 4  # 300 / 32: Pillow and openjpeg round apart
    out = derive(data, DerivationSpec(kind="png", width=100), max_pixels=LIMIT, max_output_pixels=LIMIT)
    assert out.decoded_pixels == 100 * 75  # 1/16 of each side, not 1.9 MP
    assert_scene(open_bytes(out.data).convert("RGB"))
    assert j2k_levels(b"\x00\x00\x00\x0cjP  \r\n\x87\n" + bytes(40)) == 0  # no codestream: no reduced decode


def test_qoi_is_decoded_by_the_reference_decoder_not_pillows_python_one() -> None:
    from PIL import Image as PILImage

    from image_repo.imaging.decode import decoders
    from image_repo.imaging.qoi import QoiDecoder

    assert "QOI" in decoders() and PILImage.DECODERS["qoi"] is QoiDecoder
    data = make_qoi(2000, 1500, mode="RGBA")  # Pillow's own decoder would take seconds of Python here
    out = derive(data, DerivationSpec(kind="png", width=200), max_pixels=LIMIT, max_output_pixels=LIMIT)
    assert_scene(open_bytes(out.data).convert("RGB"))
    header_lies = bytearray(make_qoi(40, 30))
    header_lies[4:12] = (41).to_bytes(4, "big") + (30).to_bytes(4, "big")
    with pytest.raises(UnprocessableImage):
        probe(bytes(header_lies), max_pixels=LIMIT)

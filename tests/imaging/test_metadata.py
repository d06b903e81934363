"""read_metadata() and probe(): what an original is, GPS only on request, robust to odd EXIF."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from image_repo.imaging import ImageInfo, probe, read_metadata
from image_repo.imaging.formats import INPUT_KINDS
from tests.fixtures.images import (
    CAMERA,
    GPS_ALTITUDE,
    GPS_LATITUDE,
    GPS_LONGITUDE,
    make_exif,
    make_gif,
    make_jpeg,
    make_png,
    make_tagged_jpeg,
    make_tiff,
    make_webp,
    scene,
)

pytestmark = pytest.mark.filterwarnings("error")


def test_camera_fields_from_a_tagged_jpeg(jpeg_exif6_gps: bytes) -> None:
    meta = read_metadata(jpeg_exif6_gps, include_gps=False)
    assert meta["format"] == "jpg" and meta["content_type"] == "image/jpeg" and meta["mode"] == "RGB"
    assert (meta["width"], meta["height"], meta["orientation"]) == (300, 400, 6)
    assert (meta["display_width"], meta["display_height"]) == (400, 300)
    assert meta["frames"] == 1
    for field, value in CAMERA.items():
        assert meta[field] == value, field
    json.dumps(meta, allow_nan=False)  # JSON-ready


def test_gps_only_when_asked(jpeg_exif6_gps: bytes) -> None:
    assert "gps" not in read_metadata(jpeg_exif6_gps, include_gps=False)
    assert "gps" not in json.dumps(read_metadata(jpeg_exif6_gps, include_gps=False)).lower()
    gps = read_metadata(jpeg_exif6_gps, include_gps=True)["gps"]
    assert gps["latitude"] == pytest.approx(GPS_LATITUDE, abs=1e-4)
    assert gps["longitude"] == pytest.approx(GPS_LONGITUDE, abs=1e-4)
    assert gps["altitude"] == pytest.approx(GPS_ALTITUDE)


@pytest.mark.parametrize(
    "data",
    [
        make_png(64, 48, mode="RGBA", exif=True),
        make_webp(64, 48, exif=True),
        make_tiff(64, 48, exif=True),
    ],
    ids=["png-eXIf", "webp-EXIF", "tiff"],
)
def test_exif_from_other_kinds(data: bytes) -> None:
    meta = read_metadata(data, include_gps=True)
    assert meta["make"] == CAMERA["make"] and meta["iso"] == CAMERA["iso"]
    assert meta["gps"]["latitude"] == pytest.approx(GPS_LATITUDE, abs=1e-4)
    assert "gps" not in read_metadata(data, include_gps=False)


def test_southern_western_hemisphere_and_below_sea_level() -> None:
    exif = make_exif(gps=True)
    exif[0x8825] = {**exif[0x8825], 1: "S", 3: "W", 5: b"\x01"}
    buf = io.BytesIO()
    scene(32, 24).save(buf, "JPEG", exif=exif)
    position = read_metadata(buf.getvalue(), include_gps=True)["gps"]
    assert position == {"latitude": pytest.approx(-GPS_LATITUDE, abs=1e-4),
                        "longitude": pytest.approx(-GPS_LONGITUDE, abs=1e-4),
                        "altitude": -GPS_ALTITUDE}  # fmt: skip


def test_plain_images_have_the_basics_only() -> None:
    meta = read_metadata(make_gif(64, 48, frames=3), include_gps=True)
    assert meta == {
        "format": "gif", "content_type": "image/gif", "mode": "P", "width": 64, "height": 48,
        "orientation": 1, "display_width": 64, "display_height": 48, "frames": 3,
    }  # fmt: skip


def test_odd_exif_values_are_skipped() -> None:
    exif = Image.Exif()
    exif[0x010F] = "  Canon\x00\x00 "
    exif[0x0112] = 42  # no such orientation
    exif[0x0131] = ""
    exif[0x8769] = {
        0x829A: IFDRational(0, 1),  # a zero exposure
        0x829D: IFDRational(28, 0),  # zero denominator
        0x8827: 0,
        0x9003: "0000:00:00 00:00:00",
        0x920A: IFDRational(-5, 1),
    }
    exif[0x8825] = {1: "N", 2: (IFDRational(200, 1), IFDRational(0, 1), IFDRational(0, 1)), 3: "E", 4: (1.0,)}
    buf = io.BytesIO()
    scene(32, 24).save(buf, "JPEG", exif=exif)
    meta = read_metadata(buf.getvalue(), include_gps=True)
    assert meta["make"] == "Canon" and meta["orientation"] == 1
    for field in ("software", "exposure_time", "f_number", "iso", "datetime_original", "focal_length", "gps"):
        assert field not in meta, field


def test_broken_exif_block_is_ignored() -> None:
    data = make_jpeg(32, 24)
    app1 = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x0f\x00\x02\xff\xff\xff\xff"
    segment = b"\xff\xe1" + len(app1 + b"xx").to_bytes(2, "big") + app1
    meta = read_metadata(data[:2] + segment + data[2:], include_gps=True)
    assert (meta["width"], meta["height"]) == (32, 24)


def test_exposure_formats() -> None:
    for seconds, text in ((IFDRational(1, 125), "1/125"), (IFDRational(1, 3), "1/3"), (IFDRational(6, 10), "0.6"),
                          (IFDRational(2, 1), "2"), (IFDRational(5, 2), "2.5"), (IFDRational(10, 40), "1/4")):  # fmt: skip
        exif = Image.Exif()
        exif[0x8769] = {0x829A: seconds}
        buf = io.BytesIO()
        scene(16, 16).save(buf, "JPEG", exif=exif)
        assert read_metadata(buf.getvalue(), include_gps=False)["exposure_time"] == text


def test_probe_describes_an_upload() -> None:
    info = probe(make_tagged_jpeg(400, 300), max_pixels=1_000_000)
    assert info == ImageInfo(INPUT_KINDS["jpg"], 300, 400, "image/jpeg", 1)
    assert probe(make_gif(40, 30, frames=4), max_pixels=10_000).frames == 4
    assert probe(make_webp(40, 30, frames=2), max_pixels=10_000).frames == 2
    assert probe(make_tiff(40, 30, mode="I;16"), max_pixels=10_000).kind.name == "tif"

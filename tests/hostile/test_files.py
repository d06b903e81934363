"""Hostile files, uploaded by POST and PUT: each a specific 4xx with a JSON message, nothing stored.

Truncated and corrupt images of every kind we read, things that are not images (text named
.jpg, SVG, PDF, PostScript, HTML, empty), polyglots, absurd declared sizes, long strips and
GIFs with thousands of frames.
"""
from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from tests.fixtures.formats import make_pcx
from tests.fixtures.images import (
    NOT_IMAGES,
    gif_header_only,
    jpeg_header_only,
    make_gif,
    make_jpeg,
    make_png,
    make_tiff,
    png_header_only,
    truncated,
)

from .conftest import assert_clean_4xx, stored_objects


def many_frame_gif(frames: int, w: int = 4000, h: int = 4000) -> bytes:
    """A GIF with a big logical screen and ``frames`` 1x1 frames: tiny file, many frames."""
    out = bytearray(b"GIF89a" + struct.pack("<HH", w, h) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff")
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for i in range(frames):
        out += b"\x21\xf9\x04\x00\x00\x00\x00\x00"
        out += b"\x2c" + struct.pack("<HHHH", i % w, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00"
    return bytes(out + b"\x3b")


def corrupt_middle(data: bytes) -> bytes:
    mid = len(data) // 2
    return data[:mid] + bytes(b ^ 0xFF for b in data[mid : mid + 64]) + data[mid + 64 :]


JPEG = make_jpeg(200, 150)
PNG = make_png(200, 150)
TIFF = make_tiff(200, 150)
GIF = make_gif(200, 150)

REFUSED: dict[str, tuple[bytes, int]] = {
    **{f"not-image-{k}": (v, 415) for k, v in NOT_IMAGES.items() if v},
    "empty": (b"", 415),
    "text-named-jpg": (b"just some words, not a picture\n" * 10, 415),
    "postscript": (b"%!PS-Adobe-2.0\n/Times findfont 12 scalefont setfont\nshowpage\n", 415),
    "html-script": (b"<html><script>alert(1)</script></html>", 415),
    "truncated-jpeg-header": (JPEG[:20], 422),
    "truncated-jpeg-half": (truncated(JPEG, 0.5), 422),
    "truncated-png-half": (truncated(PNG, 0.5), 422),
    "truncated-png-signature": (PNG[:8], 422),
    "truncated-tiff-half": (truncated(TIFF, 0.3), 422),
    "truncated-gif-header": (GIF[:12], 422),
    "corrupt-png-crc": (corrupt_middle(PNG), 422),
    "jpeg-marker-then-zeros": (b"\xff\xd8\xff\xe0" + bytes(100), 422),
    "png-signature-then-garbage": (b"\x89PNG\r\n\x1a\n" + b"\xde\xad" * 50, 422),
    "tiff-signature-then-garbage": (b"II*\x00" + b"\xff" * 40, 422),
    "tiff-big-endian-bad-offset": (b"MM\x00*\xff\xff\xff\xf0" + bytes(20), 422),
    "gif-signature-then-garbage": (b"GIF89a" + b"\xff" * 40, 422),
    "bmp-signature-then-zeros": (b"BM" + bytes(60), 422),
    "webp-riff-only": (b"RIFF\x00\x00\x00\x00WEBPVP8 ", 422),
    "absurd-png-size": (png_header_only(100_000, 100_000), 413),
    "absurd-gif-size": (gif_header_only(65_535, 65_535), 413),
    "absurd-jpeg-size": (jpeg_header_only(60_000, 60_000), 413),
    "zero-width-png": (png_header_only(0, 10), 422),
    "pdf-with-jpeg-inside": (b"%PDF-1.4\n" + JPEG, 415),
    "html-with-png-inside": (b"<html>" + PNG, 415),
    "pcx": (make_pcx(), 415),  # Pillow reads it; we do not
}


@pytest.mark.parametrize("method", ["post", "put"])
@pytest.mark.parametrize("label", sorted(REFUSED))
def test_hostile_upload_is_a_specific_4xx_and_stores_nothing(client, upload, settings, method, label):
    data, status = REFUSED[label]
    r = upload("victim.jpg", data, "victim.jpg") if method == "post" else client.put("/images/victim.jpg", data=data)
    assert_clean_4xx(r, status)
    assert client.get("/images").get_json() == []
    assert stored_objects(settings) == []
    assert client.get("/healthz").status_code == 200


def test_polyglot_image_with_trailing_script_is_stored_byte_for_byte_and_served_clean(client):
    """A JPEG with a script appended is a valid JPEG: kept as sent, but what is served is re-encoded."""
    tail = b"<?php system($_GET['c']); ?><script>alert(1)</script>"
    r = client.put("/images/poly", data=JPEG + tail)
    assert r.status_code == 201
    served = client.get("/images/poly?kind=png")
    assert served.status_code == 200 and tail not in served.data
    assert served.headers["Content-Type"] == "image/png"


def test_strip_of_one_by_a_hundred_thousand(client):
    strip = io.BytesIO()
    Image.new("L", (1, 100_000), 128).save(strip, "PNG")
    assert client.put("/images/strip", data=strip.getvalue()).status_code == 201
    for query in ("", "xsize=9999&ysize=9999", "thumbnail=true", "xsize=1&ysize=1", "kind=gif", "kind=webp"):
        r = client.get(f"/images/strip?{query}")
        assert r.status_code in (200, 413, 422), (query, r.status_code)
        if r.status_code != 200:
            assert_clean_4xx(r)
        else:
            im = Image.open(io.BytesIO(r.data))
            assert im.width >= 1 and im.height >= 1


@pytest.mark.parametrize("frames", [3000, 20000])
def test_gif_with_thousands_of_frames_serves_its_first_frame(client, frames):
    r = client.put("/images/frames", data=many_frame_gif(frames))
    assert r.status_code == 201
    for query in ("xsize=100", "kind=gif", "thumbnail=true", "meta=true"):
        got = client.get(f"/images/frames?{query}")
        assert got.status_code == 200, (query, got.get_data()[:200])
    out = Image.open(io.BytesIO(client.get("/images/frames?kind=gif&xsize=100").data))
    assert getattr(out, "n_frames", 1) == 1


def test_output_over_max_output_pixels_is_413_not_a_crash(settings, tmp_path):
    from image_repo.web.app import create_app

    settings.max_output_pixels = 10_000
    client = create_app(settings).test_client()
    client.put("/images/big", data=make_png(400, 300))
    r = client.get("/images/big?xsize=9999&ysize=9999")
    assert_clean_4xx(r, 413)
    assert client.get("/images/big?xsize=100").status_code == 200


def test_zip_with_one_corrupt_original_still_answers(client, settings):
    from pathlib import Path

    client.put("/images/z/a", data=JPEG)
    client.put("/images/z/b", data=JPEG)
    (Path(settings.data_dir) / "originals" / "z" / "b.jpg").write_bytes(truncated(JPEG, 0.3))
    r = client.get("/images/z/")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip"
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(r.data)).namelist()
    assert "z/a.jpg" in names
    assert_clean_4xx(client.get("/images/z/b"), 422)


def test_the_server_still_answers_after_every_hostile_upload(client, upload):
    for label, (data, _) in REFUSED.items():
        upload(f"x/{label}", data, f"{label}.jpg")
    assert client.put("/images/fine", data=JPEG).status_code == 201
    assert client.get("/images/fine?xsize=20").status_code == 200

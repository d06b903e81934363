"""The benchmark's test images: generated with Pillow alone (nothing downloaded), cached on disk.

Decode cost of a baseline JPEG follows its compressed size (entropy), not what it shows,
so the synthetic "photos" are tuned to the density of real ones at q90: ~2 bits/px, as in
shared/reference/perf.md section 1 (12 MP q90 there: 3.03 MB). They are smooth colour
fields + mid-frequency texture + hard-edged shapes + slight blur + luma/chroma grain.

Many *distinct* originals are needed (a "cold" request must derive something never seen,
and a server may someday share work between byte-identical files), so each variant is the
base file with a unique comment segment (JPEG COM, PNG tEXt): different bytes and SHA-256,
identical pixels and identical decode cost.
"""
from __future__ import annotations

import io
import os
import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

GENERATOR_VERSION = "1"
"""Bump when the pictures change, so cached files are made again."""


@dataclass(frozen=True)
class BaseImage:
    file: str
    size: tuple[int, int]
    fmt: str  # "JPEG" or "PNG"
    source: str | None = None  # PNG: the same pixels as this JPEG's picture


BASES: dict[str, BaseImage] = {
    "photo12mp.jpg": BaseImage("photo12mp.jpg", (4000, 3000), "JPEG"),
    "photo48mp.jpg": BaseImage("photo48mp.jpg", (8000, 6000), "JPEG"),
    "photo2mp.jpg": BaseImage("photo2mp.jpg", (1920, 1080), "JPEG"),
    "photo12mp.png": BaseImage("photo12mp.png", (4000, 3000), "PNG", source="photo12mp.jpg"),
}


def photo(w: int, h: int, seed: int = 1, grain: float = 11.5) -> Image.Image:
    """A synthetic photo-like RGB picture whose q90 JPEG has ~2 bits/px."""
    rnd = random.Random(seed)
    # Low-frequency colour field: coarse noise, upscaled smoothly.
    cw, ch = max(2, w // 400), max(2, h // 400)
    img = Image.merge("RGB", [Image.effect_noise((cw, ch), 60) for _ in range(3)]).resize((w, h), Image.Resampling.BICUBIC)
    # Mid-frequency "foliage" texture.
    tex = Image.effect_noise((max(1, w // 8), max(1, h // 8)), 40).resize((w, h), Image.Resampling.BILINEAR)
    img = Image.blend(img, Image.merge("RGB", [tex] * 3), 0.35)
    # Vertical light falloff.
    falloff = Image.linear_gradient("L").resize((w, h)).point(lambda v: 255 - v // 2)
    img = ImageChops.multiply(img, Image.merge("RGB", [falloff] * 3))
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x0, y0 = rnd.randrange(w), rnd.randrange(h)
        box = (x0, y0, x0 + rnd.randrange(w // 20, w // 4), y0 + rnd.randrange(h // 20, h // 4))
        colour = tuple(rnd.randrange(256) for _ in range(3))
        (draw.ellipse if rnd.random() < 0.5 else draw.rectangle)(box, fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(1.2))
    # Sensor grain: what sets the entropy, hence the decode cost.
    luma = Image.effect_noise((w, h), grain)
    chroma = [Image.effect_noise((w, h), grain / 2) for _ in range(2)]
    return ImageChops.add(img, Image.merge("RGB", [luma, *chroma]), scale=1.0, offset=-128)


def encode(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        img.save(out, "JPEG", quality=90, subsampling="4:2:0")  # baseline, like a camera
    else:
        img.save(out, "PNG", compress_level=6)
    return out.getvalue()


def ensure_bases(directory: Path, log: Callable[[str], None] = print) -> dict[str, Path]:
    """The base images, generated once into ``directory`` (about 40 s the first time)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"v{GENERATOR_VERSION}-{name}" for name in BASES}
    pictures: dict[str, Image.Image] = {}
    for name, base in BASES.items():
        if paths[name].exists():
            continue
        log(f"  generating {name} ({base.size[0]}x{base.size[1]} {base.fmt})")
        if base.source is not None:
            src = BASES[base.source]
            pic = pictures.get(base.source) or Image.open(paths[base.source]).convert("RGB")
            assert pic.size == src.size
        else:
            pic = photo(*base.size)
            pictures[name] = pic
        data = encode(pic, base.fmt)
        tmp = paths[name].with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, paths[name])
    return paths


def with_jpeg_comment(data: bytes, text: bytes) -> bytes:
    """``data`` (a JPEG) with a COM segment right after SOI: new bytes, same pixels."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]


def with_png_text(data: bytes, text: bytes) -> bytes:
    """``data`` (a PNG) with a tEXt chunk right after IHDR: new bytes, same pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    ihdr_end = 8 + 8 + struct.unpack(">I", data[8:12])[0] + 4
    body = b"Comment\x00" + text
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def variant(data: bytes, tag: str) -> bytes:
    """A distinct file with the same pixels as ``data``."""
    text = f"image_repo bench variant {tag}".encode()
    return with_png_text(data, text) if data[:4] == b"\x89PNG" else with_jpeg_comment(data, text)


def tiny_jpeg() -> bytes:
    """An 8x8 JPEG (~300 bytes): a real image for listings, where nothing is decoded."""
    return encode(Image.new("RGB", (8, 8), (90, 120, 150)), "JPEG")

"""What an IIIF request makes of a TiledSource: the level to read, a stored tile as it is, or a rendered image.

No I/O of its own and no Flask: the source reads what it is asked for. ``render`` reads
only the box the region covers, from the level nearest above the scale asked (never more
than twice the output's pixels per side), then scales, mirrors, turns, applies the quality
and encodes. ``stored_tile_at`` says when a request is exactly one stored tile in its stored
format, so it can be answered with the stored bytes and no decode at all.
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

from ..iiif.info import nominal_factor
from ..iiif.request import Resolved
from ..imaging.derive import RESAMPLE_FILTERS
from ..imaging.formats import KINDS
from ..imaging.pixels import for_output, save_params
from ..imaging.rendering import composite
from ..pyramids.source import SourceInfo, TiledSource

PASSTHROUGH_QUALITIES = frozenset({"default", "color"})


def effective_quality(quality: str, info: SourceInfo) -> str:
    """The quality as the image is: ``color`` of a colour image and ``gray`` of a grey one are ``default``."""
    if (quality == "color" and info.photometric in ("rgb", "grey", "channels")) or (
            quality == "gray" and info.photometric == "grey"):
        return "default"
    return quality


def choose_level(info: SourceInfo, r: Resolved) -> int:
    """The smallest level that still has (within a pixel) the detail the output needs."""
    best = 0
    for index, level in enumerate(info.levels):
        # Within a pixel: an edge tile of w full-resolution pixels asked at ceil(w / scale) is served by its level.
        has_detail = r.w / level.scale > r.width - 1 and r.h / level.scale > r.height - 1
        if has_detail and level.scale > info.levels[best].scale:
            best = index
    return best


def stored_tile_at(info: SourceInfo, r: Resolved) -> tuple[int, int, int] | None:
    """(level, column, row) when ``r`` is exactly one stored tile in its stored format, else None."""
    if (info.stored != "jpeg" or r.format != "jpg" or r.quality not in PASSTHROUGH_QUALITIES or r.degrees
            or r.mirror or info.photometric not in ("rgb", "grey")):
        return None
    tw, th = info.tile_width, info.tile_height
    for index, level in enumerate(info.levels):
        factor = nominal_factor(level)
        if factor is None:
            continue
        span_w, span_h = tw * factor, th * factor
        if r.x % span_w or r.y % span_h:
            continue
        column, row = r.x // span_w, r.y // span_h
        own_w = min(tw, level.width - column * tw)  # the tile's size in its level's pixels
        own_h = min(th, level.height - row * th)
        if own_w <= 0 or own_h <= 0:
            continue
        if (r.w, r.h) == (min(span_w, info.width - r.x), min(span_h, info.height - r.y)) and (r.width, r.height) == (own_w, own_h):
            return index, column, row
    return None


def to_image(pixels: np.ndarray, info: SourceInfo) -> Image.Image:
    """A region's samples (height x width x bands) as an 8-bit L, LA, RGB or RGBA image.

    16-bit samples are shown through the source's window (low and high as 0 and 255), or
    their whole range when it has none. A ``channels`` source asked with no rendering shows its
    first band as grey (requests for one always carry a rendering: read_region composites it).
    """
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if info.photometric == "channels":
        pixels = pixels[:, :, :1]
    if pixels.dtype != np.uint8:
        low, high = info.window or (0.0, float(np.iinfo(pixels.dtype).max) if pixels.dtype.kind in "ui" else 1.0)
        span = max(float(high) - float(low), 1e-9)
        scaled = (pixels.astype(np.float32) - np.float32(low)) * np.float32(255.0 / span)
        pixels = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    bands = pixels.shape[2]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(bands)
    if mode is None:
        raise ValueError(f"cannot show {bands} bands")
    data = np.ascontiguousarray(pixels[:, :, 0] if bands == 1 else pixels)
    return Image.fromarray(data, mode)


def read_region(source: TiledSource, r: Resolved, *, resample: str = "lanczos") -> Image.Image:
    """The region of ``r`` at its output size (before rotation), read from the level nearest above."""
    info = source.info
    index = choose_level(info, r)
    level = info.levels[index]
    scale = level.scale
    # The region in the level's pixels (fractional), and the whole pixels that cover it.
    fx0, fy0 = r.x / scale, r.y / scale
    fx1, fy1 = min((r.x + r.w) / scale, level.width), min((r.y + r.h) / scale, level.height)
    ix0, iy0 = min(math.floor(fx0), level.width - 1), min(math.floor(fy0), level.height - 1)
    ix1, iy1 = max(ix0 + 1, min(level.width, math.ceil(fx1 - 1e-9))), max(iy0 + 1, min(level.height, math.ceil(fy1 - 1e-9)))
    if r.rendering is not None and info.photometric == "channels":
        # Only the channels shown are read (one ranged read per channel tile), composited on their 16 bits.
        pixels = source.region(index, ix0, iy0, ix1 - ix0, iy1 - iy0, channels=r.rendering.indices)
        im = Image.fromarray(composite(pixels, r.rendering), "RGB")
    else:
        im = to_image(source.region(index, ix0, iy0, ix1 - ix0, iy1 - iy0), info)
    box = (fx0 - ix0, fy0 - iy0, fx1 - ix0, fy1 - iy0)
    if im.size == (r.width, r.height) and box == (0.0, 0.0, float(im.width), float(im.height)):
        return im
    return im.resize((r.width, r.height), RESAMPLE_FILTERS[resample], box=box, reducing_gap=2.0)


def turn(im: Image.Image, degrees: float, mirror: bool) -> Image.Image:
    """Mirrored (left to right) first, then turned clockwise; arbitrary angles on a transparent ground."""
    if mirror:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if degrees == 0:
        return im
    if degrees % 90 == 0:
        clockwise = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
        return im.transpose(clockwise[int(degrees)])
    rgba = im.convert("RGBA" if im.mode in ("RGB", "RGBA") else "LA")
    return rgba.rotate(-degrees, Image.Resampling.BICUBIC, expand=True)


def apply_quality(im: Image.Image, quality: str) -> Image.Image:
    if quality == "gray":
        return im.convert("LA" if im.mode in ("LA", "RGBA") else "L")
    if quality == "bitonal":
        grey = im.convert("L") if im.mode not in ("LA", "RGBA") else _on_white_grey(im)
        return grey.point(lambda v: 255 if v >= 128 else 0)
    return im


def _on_white_grey(im: Image.Image) -> Image.Image:
    base = Image.new("L", im.size, 255)
    base.paste(im.convert("L"), mask=im.getchannel("A"))
    return base


def encode(im: Image.Image, fmt: str) -> bytes:
    out = for_output(im, fmt)
    buf = io.BytesIO()
    out.save(buf, KINDS[fmt].pil_format, **save_params(fmt, out))
    return buf.getvalue()


def render(source: TiledSource, r: Resolved, *, resample: str = "lanczos") -> bytes:
    """The encoded answer to ``r`` (its quality already made effective for the source)."""
    im = read_region(source, r, resample=resample)
    im = turn(im, r.degrees, r.mirror)
    im = apply_quality(im, r.quality)
    return encode(im, r.format)

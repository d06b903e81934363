"""The four path parameters of an IIIF image request (region, size, rotation, quality.format), parsed and resolved.

Parsing is syntax only (``parse_request``): it needs no image, so a malformed request is a
400 before anything is looked up. ``ImageRequest.resolve(width, height, max_area)`` then
turns it into pixels against the image's size: the region's box, the output size, what
``max_area`` allows. Every error is an ``InvalidRequest`` whose message starts with the part
that was wrong (``region:``, ``size:``, ``rotation:``, ``quality:``, ``format:``).

Version 3 (Image API 3.0) and version 2 (2.1) differ only in size: 3.0 has ``max`` and the
``^`` forms and refuses sizes above the region without ``^``; 2.1 has ``full`` and ``max``
and may scale up (``sizeAboveFull``), within ``max_area`` like every request.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import InvalidRequest
from ..imaging.rendering import parse_inline

VERSIONS = (2, 3)
QUALITIES = ("default", "color", "gray", "bitonal")
INLINE = "channels:"
"""A quality ``channels:0:0000FF:500:4000,3:FF0000:200:9000`` is an inline rendering of a
multichannel image (the 2016 ``channels=`` value): what the browse page's viewer asks for."""
FORMATS = ("jpg", "png", "webp", "tif", "gif")
"""Formats served (IIIF names; all are also output kinds of imaging/formats.py)."""
KNOWN_FORMATS = (*FORMATS, "jp2", "pdf")
"""Formats the API defines: the ones not served get a message saying so."""

_INT = r"\d{1,10}"
_FLOAT = r"(?:\d{1,10}(?:\.\d{1,10})?|\.\d{1,10})"
_REGION_PX = re.compile(rf"({_INT}),({_INT}),({_INT}),({_INT})")
_REGION_PCT = re.compile(rf"pct:({_FLOAT}),({_FLOAT}),({_FLOAT}),({_FLOAT})")
_SIZE_WH = re.compile(rf"(!)?({_INT})?,({_INT})?")
_SIZE_PCT = re.compile(rf"pct:({_FLOAT})")
_ROTATION = re.compile(rf"(!)?({_FLOAT})")
_QUALITY = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def _round_div(a: float, b: float) -> int:
    """``a / b`` rounded half up (Python's round() rounds half to even)."""
    return math.floor(a / b + 0.5)


# --- region -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """``full``, ``square``, ``x,y,w,h`` (``px``) or ``pct:x,y,w,h`` (``pct``)."""

    kind: str
    values: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The region in the full image's pixels, cropped at its edges: (x, y, w, h)."""
        if self.kind == "full":
            return 0, 0, width, height
        if self.kind == "square":
            side = min(width, height)
            return (width - side) // 2, (height - side) // 2, side, side
        if self.kind == "pct":
            px, py, pw, ph = self.values
            if pw <= 0 or ph <= 0:
                raise InvalidRequest("region: the width and height of a pct: region must be above 0")
            # Edges rounded to the nearest pixel; a sliver of less than a pixel is one pixel.
            x0, y0 = _round_div(px * width, 100), _round_div(py * height, 100)
            x1 = max(x0 + 1, _round_div((px + pw) * width, 100))
            y1 = max(y0 + 1, _round_div((py + ph) * height, 100))
            x, y, w, h = x0, y0, x1 - x0, y1 - y0
        else:
            x, y, w, h = (int(v) for v in self.values)
            if w == 0 or h == 0:
                raise InvalidRequest("region: the width and height must be above 0")
        if x >= width or y >= height:
            raise InvalidRequest(f"region: {self} lies outside the image ({width}x{height})")
        return x, y, min(w, width - x), min(h, height - y)

    def __str__(self) -> str:
        if self.kind in ("full", "square"):
            return self.kind
        text = ",".join(_number(v) for v in self.values)
        return f"pct:{text}" if self.kind == "pct" else text


def parse_region(text: str) -> Region:
    if text in ("full", "square"):
        return Region(text)
    if m := _REGION_PX.fullmatch(text):
        x, y, w, h = (int(g) for g in m.groups())
        return Region("px", (x, y, w, h))
    if m := _REGION_PCT.fullmatch(text):
        values = tuple(float(g) for g in m.groups())
        if any(v > 100 for v in values):
            raise InvalidRequest(f"region: {text!r}: percentages are at most 100")
        return Region("pct", (values[0], values[1], values[2], values[3]))
    raise InvalidRequest(f"region: {text!r} is not full, square, x,y,w,h or pct:x,y,w,h")


# --- size -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """``max``/``full``, ``w,``, ``,h``, ``pct:n``, ``w,h`` or ``!w,h``; ``upscale`` is 3.0's ``^``."""

    kind: str
    """``max``, ``w``, ``h``, ``pct``, ``wh`` or ``confined``."""
    width: int | None = None
    height: int | None = None
    pct: float | None = None
    upscale: bool = False
    text: str = ""

    def resolve(self, region_w: int, region_h: int, *, max_area: int, version: int) -> tuple[int, int]:
        """The output size (before rotation) for a region of ``region_w`` x ``region_h``."""
        may_grow = self.upscale or version == 2
        if self.kind == "max":
            scale = 1.0
            if self.upscale or region_w * region_h > max_area:
                scale = math.sqrt(max_area / (region_w * region_h))  # the largest that fits in maxArea
            w = max(1, math.floor(region_w * scale))
            h = max(1, math.floor(region_h * scale))
            while w * h > max_area and (w > 1 or h > 1):  # floating point can leave it a row over
                if w >= h:
                    w -= 1
                else:
                    h -= 1
            return w, h
        if self.kind == "w":
            assert self.width is not None
            w, h = self.width, max(1, _round_div(region_h * self.width, region_w))
        elif self.kind == "h":
            assert self.height is not None
            w, h = max(1, _round_div(region_w * self.height, region_h)), self.height
        elif self.kind == "pct":
            assert self.pct is not None
            w = max(1, _round_div(region_w * self.pct, 100))
            h = max(1, _round_div(region_h * self.pct, 100))
        elif self.kind == "wh":
            assert self.width is not None and self.height is not None
            w, h = self.width, self.height
        else:  # confined: within the box, aspect kept, the tighter side exact
            assert self.width is not None and self.height is not None
            if self.width * region_h <= self.height * region_w:
                w, h = self.width, max(1, _round_div(region_h * self.width, region_w))
            else:
                w, h = max(1, _round_div(region_w * self.height, region_h)), self.height
        if (w > region_w or h > region_h) and not may_grow:
            raise InvalidRequest(
                f"size: {self.text} is larger than the {region_w}x{region_h} region; "
                f"upscaling needs ^ ({'^' + self.text})"
            )
        if w * h > max_area:
            raise InvalidRequest(
                f"size: {self.text} gives {w}x{h}, more than the {max_area} pixels (maxArea) served; ask for a smaller size"
            )
        return w, h


def parse_size(text: str, version: int) -> Size:
    body = text
    upscale = body.startswith("^")
    if upscale:
        if version == 2:
            raise InvalidRequest(f"size: {text!r}: the ^ forms are Image API 3.0 (this is 2.1: sizes may scale up without ^)")
        body = body[1:]
    if body == "max" or (body == "full" and version == 2):
        return Size("max", upscale=upscale, text=text)
    if body == "full":
        raise InvalidRequest("size: 'full' is not a size in Image API 3.0; use 'max'")
    if m := _SIZE_PCT.fullmatch(body):
        pct = float(m.group(1))
        if pct <= 0:
            raise InvalidRequest(f"size: {text!r}: the percentage must be above 0")
        if pct > 100 and version == 3 and not upscale:
            raise InvalidRequest(f"size: {text!r} is above 100%; upscaling needs ^ (^{text})")
        return Size("pct", pct=pct, upscale=upscale, text=text)
    if m := _SIZE_WH.fullmatch(body):
        bang, w_text, h_text = m.groups()
        w = int(w_text) if w_text is not None else None
        h = int(h_text) if h_text is not None else None
        if w == 0 or h == 0:
            raise InvalidRequest(f"size: {text!r}: a width or height must be above 0")
        if bang:
            if w is None or h is None:
                raise InvalidRequest(f"size: {text!r}: !w,h needs both a width and a height")
            return Size("confined", w, h, upscale=upscale, text=text)
        if w is not None and h is not None:
            return Size("wh", w, h, upscale=upscale, text=text)
        if w is not None:
            return Size("w", width=w, upscale=upscale, text=text)
        if h is not None:
            return Size("h", height=h, upscale=upscale, text=text)
    forms = "max, w,, ,h, pct:n, w,h, !w,h (each may start with ^)" if version == 3 else "full, max, w,, ,h, pct:n, w,h, !w,h"
    raise InvalidRequest(f"size: {text!r} is not one of {forms}")


# --- rotation, quality, format ----------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    degrees: float = 0.0
    """Clockwise, 0 <= degrees < 360 (360 is 0)."""
    mirror: bool = False

    def __str__(self) -> str:
        return ("!" if self.mirror else "") + _number(self.degrees)

    @property
    def by_90s(self) -> bool:
        return self.degrees % 90 == 0


def parse_rotation(text: str) -> Rotation:
    m = _ROTATION.fullmatch(text)
    if m is None:
        raise InvalidRequest(f"rotation: {text!r} is not n or !n (degrees clockwise, 0 to 360)")
    degrees = float(m.group(2))
    if degrees > 360:
        raise InvalidRequest(f"rotation: {text!r} is above 360 degrees")
    return Rotation(degrees % 360, bool(m.group(1)))


def parse_quality_format(text: str) -> tuple[str, str]:
    """``default.jpg`` -> (quality, format); the quality is checked against the image later (renderings)."""
    quality, dot, fmt = text.rpartition(".")
    if not dot:
        raise InvalidRequest(f"format: {text!r} has no format; the last part is quality.format, e.g. default.jpg")
    if fmt not in FORMATS:
        if fmt in KNOWN_FORMATS:
            raise InvalidRequest(f"format: {fmt} is not served here (served: {', '.join(FORMATS)})")
        raise InvalidRequest(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if quality.startswith(INLINE):
        parse_inline(quality[len(INLINE):], "quality")  # 400 naming what is wrong, before any lookup
        return quality, fmt
    if not _QUALITY.fullmatch(quality):
        raise InvalidRequest(f"quality: {quality!r} is not one of {', '.join(QUALITIES)}")
    return quality, fmt


def check_quality(quality: str, extra: tuple[str, ...] = ()) -> None:
    """400 unless ``quality`` is one of the API's or one of this image's ``extra`` (saved renderings)."""
    if quality not in QUALITIES and quality not in extra and not quality.startswith(INLINE):
        known = ", ".join((*QUALITIES, *extra))
        raise InvalidRequest(f"quality: {quality!r} is not one of {known}")


def _number(value: float) -> str:
    """A float as the API writes one: an integer where possible, else no trailing zeros."""
    if value == int(value):
        return str(int(value))
    return f"{value:.10f}".rstrip("0").rstrip(".")

"""An IIIF image request: parsed once (``parse_request``), resolved against an image (``Resolved``).

``Resolved`` is what the renderer needs, in pixels, and its ``key()`` is the canonical form
used in derived object names and ETags: every request that means the same image (``full``
and ``0,0,W,H``; ``max`` and ``W,``; version 3 and version 2; ``color`` and ``default`` on
a colour image) shares one key.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InvalidRequest
from ..imaging.rendering import Rendering
from .params import (
    Region,
    Rotation,
    Size,
    _number,
    _round_div,
    parse_quality_format,
    parse_region,
    parse_rotation,
    parse_size,
)

RENDER_VERSION = "1"
"""Bumped when rendering changes what it makes, so old cached IIIF images are not reused."""


@dataclass(frozen=True)
class ImageRequest:
    """The four path parameters of one request, checked for syntax."""

    version: int
    region: Region
    size: Size
    rotation: Rotation
    quality: str
    format: str

    def resolve(self, width: int, height: int, *, max_area: int) -> Resolved:
        """This request against a ``width`` x ``height`` image, at most ``max_area`` pixels out."""
        x, y, w, h = self.region.box(width, height)
        out_w, out_h = self.size.resolve(w, h, max_area=max_area, version=self.version)
        resolved = Resolved(x, y, w, h, out_w, out_h, self.rotation.degrees, self.rotation.mirror,
                            self.quality, self.format, width, height)
        turned_w, turned_h = resolved.turned_size
        if turned_w * turned_h > max_area:
            raise InvalidRequest(
                f"rotation: {self.rotation} turns the {out_w}x{out_h} image into {turned_w}x{turned_h}, "
                f"more than the {max_area} pixels (maxArea) served; ask for a smaller size"
            )
        return resolved


def parse_request(version: int, region: str, size: str, rotation: str, quality_format: str) -> ImageRequest:
    """Parse the path parameters; 400 naming the first part that is wrong."""
    quality, fmt = parse_quality_format(quality_format)
    return ImageRequest(version, parse_region(region), parse_size(size, version), parse_rotation(rotation),
                        quality, fmt)


@dataclass(frozen=True)
class Resolved:
    """A request in pixels: the region of the full image, the size it is scaled to, then turns."""

    x: int
    y: int
    w: int
    h: int
    width: int
    """Output width before rotation."""
    height: int
    degrees: float
    mirror: bool
    quality: str
    format: str
    full_width: int
    full_height: int
    rendering: Rendering | None = None
    """For a multichannel image: the rendering its quality names (the default one for ``default``)."""

    @property
    def region(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h

    @property
    def is_full(self) -> bool:
        return (self.x, self.y, self.w, self.h) == (0, 0, self.full_width, self.full_height)

    @property
    def turned_size(self) -> tuple[int, int]:
        """The size of the answer: the output size, its bounding box after an arbitrary rotation."""
        if self.degrees % 180 == 0:
            return self.width, self.height
        if self.degrees % 90 == 0:
            return self.height, self.width
        rad = math.radians(self.degrees)
        cos, sin = abs(math.cos(rad)), abs(math.sin(rad))
        return (math.ceil(self.width * cos + self.height * sin - 1e-9),
                math.ceil(self.width * sin + self.height * cos - 1e-9))

    def key(self) -> str:
        """Canonical string for derived object names and ETags, e.g. ``iiif.0,0,512,512.512,512.0.default.v1.jpg``."""
        known = self.__dict__.get("_key")  # a tile's answer asks twice: its ETag and its cache key
        if known is None:
            known = self._make_key()
            object.__setattr__(self, "_key", known)
        return known

    def _make_key(self) -> str:
        turn = ("m" if self.mirror else "") + _number(self.degrees)
        quality = self.quality
        if self.rendering is not None:  # by what it shows, not by its name: a rendering saved anew has new keys
            quality = (f"{quality}-" if quality in ("gray", "bitonal") else "") + self.rendering.key()
        return (f"iiif.{self.x},{self.y},{self.w},{self.h}.{self.width},{self.height}.{turn}."
                f"{quality}.v{RENDER_VERSION}.{self.format}")

    def canonical(self, version: int, max_area: int) -> str:
        """The canonical ``region/size/rotation/quality.format`` of this request in ``version``."""
        region = "full" if self.is_full else f"{self.x},{self.y},{self.w},{self.h}"
        out = (self.width, self.height)
        if version == 3:
            if out == Size("max").resolve(self.w, self.h, max_area=max_area, version=3):
                size = "max"
            elif self.width > self.w or self.height > self.h:
                size = f"^{self.width},{self.height}"
            else:
                size = f"{self.width},{self.height}"
        elif out == (self.w, self.h):
            size = "full"
        elif self.height == max(1, _round_div(self.h * self.width, self.w)):
            size = f"{self.width},"
        else:
            size = f"{self.width},{self.height}"
        rotation = ("!" if self.mirror else "") + _number(self.degrees)
        quality = self.quality
        if quality.startswith("channels:") and self.rendering is not None:
            quality = "channels:" + self.rendering.text()
        return f"{region}/{size}/{rotation}/{quality}.{self.format}"

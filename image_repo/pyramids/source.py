"""The seam between pyramids and what renders from them (IIIF, the 2016 parameters, renderings).

A ``TiledSource`` is an image seen as levels of tiles. A pyramid in the cache store is one
(pyramids/reader.py); a small original with no pyramid is one too, of a single level (or two,
with its intermediate). Renderers ask it for pixels of a region of one level, or for a stored
tile as it is, never for the whole image. Pixels come as numpy arrays in the stored sample
type, so 16-bit and multichannel data reach the renderer unconverted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..imaging.rendering import Rendering


@dataclass(frozen=True)
class Channel:
    """One band of the image: what ``meta=true`` and renderings say of it."""

    name: str
    dtype: str
    """numpy dtype name of its samples: ``uint8`` or ``uint16``."""
    colour: str | None = None
    """RRGGBB from the file (OME-XML), when it gives one."""
    stats: dict[str, float] = field(default_factory=dict)
    """``min``, ``max`` and percentiles (``p0.1``, ``p99.9``...) measured at build time."""


@dataclass(frozen=True)
class Level:
    """One resolution: its size in pixels and its downsampling from full resolution."""

    width: int
    height: int
    scale: float
    """Full-resolution pixels per pixel of this level along each axis (1 for the base)."""


@dataclass(frozen=True)
class SourceInfo:
    """What a TiledSource is: the facts info.json and meta=true are made of."""

    width: int
    height: int
    tile_width: int
    tile_height: int
    levels: tuple[Level, ...]
    """Full resolution first, then smaller ones."""
    photometric: str
    """``rgb``, ``grey`` (one channel shown as grey) or ``channels`` (N bands composited by a rendering)."""
    channels: tuple[Channel, ...]
    stored: str
    """How tiles are stored: ``jpeg``, ``deflate``, ``zstd``, ``none``; ``jpeg`` tiles may pass through as they are."""
    window: tuple[float, float] | None = None
    """For 16-bit ``grey``/``rgb``: the (low, high) sample values shown as 0 and 255, from the image's own percentiles."""
    rendering: Rendering | None = None
    """For ``channels``: the default rendering, made when the pyramid was built (imaging/rendering.py)."""


class TiledSource(Protocol):
    """An image as levels of tiles."""

    info: SourceInfo

    def region(self, level: int, x: int, y: int, width: int, height: int,
               channels: tuple[int, ...] | None = None) -> np.ndarray:
        """Pixels of the box (in ``level``'s own pixels) as an array ``height x width x bands``.

        ``channels``: the bands to read (all when None); a renderer of 3 of 40 channels reads
        only the tiles of those 3. Reads only the tiles the box covers.
        """
        ...

    def stored_tile(self, level: int, column: int, row: int) -> bytes | None:
        """The tile at (column, row) of ``level`` as a complete file in its stored format, ready
        to send (JPEG tables spliced in), or None when the stored tile cannot stand alone
        (another compression, a padded edge tile)."""
        ...

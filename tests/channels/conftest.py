"""Multichannel originals written by tifffile, with channel patterns known by formula, so any
box of any channel is known without reading the file back."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile

NAMES = ["DNA", "CD45", "CD3", "KI67", "PANCK", "SMA"]
OME_COLOURS = [-16776961, 16711935, 65535, -1, None, None]
"""OME Color ints (RGBA): red, green, blue, white; the last two give none."""
RGB = ["FF0000", "00FF00", "0000FF", "FFFFFF", None, None]


def pattern(c: int, x0: int, y0: int, w: int, h: int, bits: int = 16) -> np.ndarray:
    """Channel ``c``'s samples of the box: every channel its own slope, so a swapped channel shows."""
    y, x = np.mgrid[y0:y0 + h, x0:x0 + w].astype(np.int64)
    if bits == 16:
        return ((x * (c + 1) * 7 + y * (c + 3) * 5) % 60000 + 200 * c).astype(np.uint16)
    return ((x * (c + 1) + y * (c + 2)) % 240 + 3 * c).astype(np.uint8)


def planes(n: int, width: int, height: int, bits: int = 16) -> np.ndarray:
    """All ``n`` channels, channels x height x width."""
    return np.stack([pattern(c, 0, 0, width, height, bits) for c in range(n)])


def write_ome(path: Path, n: int, width: int, height: int, *, bits: int = 16, levels: int = 1,
              tile: int = 256, names: bool = True, colours: bool = True, description: str | None = None) -> Path:
    """An OME-TIFF of ``n`` channels, one tiled page each, with ``levels - 1`` SubIFD reductions."""
    data = planes(n, width, height, bits)
    channel: dict[str, Any] = {}
    if names:
        channel["Name"] = NAMES[:n]
    if colours:
        channel["Color"] = [c if c is not None else 0 for c in OME_COLOURS[:n]]
    metadata = {"axes": "CYX", "Channel": channel} if channel else {"axes": "CYX"}
    options: dict[str, Any] = {"tile": (tile, tile), "photometric": "minisblack", "compression": "zlib"}
    with tifffile.TiffWriter(path, bigtiff=True, ome=description is None) as tw:
        extra = {"description": description} if description is not None else {"metadata": metadata}
        tw.write(data, subifds=levels - 1 if levels > 1 else None, **extra, **options)
        for k in range(1, levels):
            tw.write(data[:, ::2 ** k, ::2 ** k], subfiletype=1, **options)
    return path


def write_separate(path: Path, n: int, width: int, height: int, *, bits: int = 16, tile: int | None = 256) -> Path:
    """One page of ``n`` minisblack samples in separate planes (tiled, or in strips when ``tile`` is None)."""
    options: dict[str, Any] = {"tile": (tile, tile)} if tile else {"rowsperstrip": 64}
    tifffile.imwrite(path, planes(n, width, height, bits), photometric="minisblack", planarconfig="separate", **options)
    return path


def write_pages(path: Path, n: int, width: int, height: int, *, bits: int = 16) -> Path:
    """A plain multi-page TIFF (no OME-XML), one channel a page, in strips."""
    tifffile.imwrite(path, planes(n, width, height, bits), photometric="minisblack", metadata=None)
    return path


def composite(samples: list[np.ndarray], windows: list[tuple[str, float, float, float]]) -> np.ndarray:
    """The issue's formula, written out independently of imaging/rendering.py, in float64:
    per channel clip((v - low) / (high - low), 0, 1) ** gamma times its colour, summed, clipped, 8 bits."""
    acc = np.zeros(samples[0].shape + (3,), np.float64)
    for v, (colour, low, high, gamma) in zip(samples, windows):
        t = np.clip((v.astype(np.float64) - low) / (high - low), 0, 1) ** gamma
        rgb = [int(colour[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        acc += t[..., None] * np.asarray(rgb)
    return np.round(np.clip(acc, 0, 1) * 255).astype(np.uint8)


def write_contig(path: Path, n: int, width: int, height: int, *, bits: int = 16) -> Path:
    """One tiled page of ``n`` minisblack samples interleaved (chunky): channels, not colours."""
    tifffile.imwrite(path, np.moveaxis(planes(n, width, height, bits), 0, -1), photometric="minisblack",
                     planarconfig="contig", tile=(256, 256))
    return path

"""PyramidReader: a TiledSource over a pyramid in a store, read by ranged GETs.

Only the tiles a box covers are fetched, all of them in one request where the store can
(Swift's multi-range GET), else one ranged GET each. An aligned JPEG tile is handed out as a
complete JPEG with no decode.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidRequest
from ..storage.base import ObjectStore, get_ranges
from ..storage.filestreams import OpenedFile
from .chunks import ChunkedObject
from .index import PyramidIndex
from .source import SourceInfo
from .tiles import decode_tile, standalone_jpeg


class PyramidReader:
    """The TiledSource of one pyramid: its index, and the store holding its tiles."""

    def __init__(self, index: PyramidIndex, store: ObjectStore | ChunkedObject | OpenedFile) -> None:
        self.index = index
        self.store = store
        self.info: SourceInfo = index.info

    def _level(self, level: int) -> None:
        if not 0 <= level < len(self.index.levels):
            raise InvalidRequest(f"level {level}: the pyramid has levels 0..{len(self.index.levels) - 1}")

    def _range(self, level: int, plane: int, column: int, row: int) -> tuple[int, int]:
        tiles = self.index.levels[level]
        n = row * tiles.columns + column
        return int(tiles.offsets[plane, n]), int(tiles.counts[plane, n])

    def stored_tile(self, level: int, column: int, row: int) -> bytes | None:
        """The JPEG tile at (column, row) as a complete JPEG; None for other compressions, channel
        planes, and edge tiles padded past the image (a decoder would show the padding)."""
        self._level(level)
        ix, lv = self.index, self.info.levels[level]
        tiles = ix.levels[level]
        if ix.compression != "jpeg" or ix.planes != 1 or not (0 <= column < tiles.columns and 0 <= row < tiles.rows):
            return None
        tw, th = self.info.tile_width, self.info.tile_height
        if (column + 1) * tw > lv.width or (row + 1) * th > lv.height:
            return None
        start, length = self._range(level, 0, column, row)
        if length == 0:
            return None
        return standalone_jpeg(self.store.get_range(ix.key, start, length), tiles.jpeg_tables, ix.jpeg_rgb)

    def region(self, level: int, x: int, y: int, width: int, height: int,
               channels: tuple[int, ...] | None = None) -> np.ndarray:
        """Pixels of the box in ``level``'s pixels, ``height x width x bands``; reads only the tiles it covers."""
        self._level(level)
        ix, lv = self.index, self.info.levels[level]
        if width < 1 or height < 1 or x < 0 or y < 0 or x + width > lv.width or y + height > lv.height:
            raise InvalidRequest(f"region {x},{y},{width},{height} is not within level {level} ({lv.width}x{lv.height})")
        n_channels = len(self.info.channels)
        wanted = tuple(range(n_channels)) if channels is None else tuple(channels)
        if not wanted or any(not 0 <= c < n_channels for c in wanted):
            raise InvalidRequest(f"channels {channels}: the image has channels 0..{n_channels - 1}")
        tw, th = self.info.tile_width, self.info.tile_height
        cols = range(x // tw, (x + width - 1) // tw + 1)
        rows = range(y // th, (y + height - 1) // th + 1)
        # Chunky tiles hold every band: one plane, bands picked after decoding. Channel planes: one per channel.
        planes = wanted if ix.planes > 1 else (0,)
        jobs = [(p, c, r) for p in planes for r in rows for c in cols]
        ranges = [self._range(level, p, c, r) for p, c, r in jobs]
        store = self.store
        raws = (store.get_ranges(ix.key, ranges) if isinstance(store, (ChunkedObject, OpenedFile))
                else get_ranges(store, ix.key, ranges))
        dtype = np.dtype(ix.dtype).newbyteorder("=")
        out = np.zeros((height, width, len(wanted) if ix.planes > 1 else ix.bands), dtype)
        tables = ix.levels[level].jpeg_tables
        for (p, c, r), raw in zip(jobs, raws):
            tile = decode_tile(raw, compression=ix.compression, dtype=ix.dtype, bands=ix.bands, tile_width=tw,
                               tile_height=th, predictor=ix.predictor, tables=tables, rgb=ix.jpeg_rgb)
            x0, y0 = c * tw, r * th
            sx, sy = max(x, x0), max(y, y0)
            ex, ey = min(x + width, x0 + tw), min(y + height, y0 + th)
            dst = out[sy - y:ey - y, sx - x:ex - x]
            src = tile[sy - y0:ey - y0, sx - x0:ex - x0]
            if ix.planes > 1:
                dst[..., planes.index(p)] = src[..., 0]
            else:
                dst[...] = src
        if ix.planes == 1 and channels is not None:
            out = out[..., list(wanted)]
        return out

"""One stored tile's bytes -> a stand-alone JPEG, or pixels (numpy). Pure: no I/O.

JPEG-in-TIFF tiles are abbreviated streams: the quantisation and Huffman tables live once in
the level's JPEGTables tag. Splicing them in (tables less their EOI, then the tile less its
SOI) gives a complete JPEG, as IIPImage does. libvips codes tiles as YCbCr (photometric 6),
which is what a JPEG decoder assumes of three components; a tile coded as RGB (photometric 2,
written by some scanners) gets an Adobe APP14 marker with transform 0, which tells decoders
its components are RGB, so its colours stay right without a decode.
"""
from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image

from ..errors import UnprocessableImage

_SOI, _EOI = b"\xff\xd8", b"\xff\xd9"
_ADOBE_RGB = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"
"""APP14 'Adobe', version 100, flags 0, 0, transform 0 (no colour transform: RGB)."""


def standalone_jpeg(tile: bytes, tables: bytes | None, rgb: bool = False) -> bytes:
    """A complete JPEG file from an abbreviated JPEG-in-TIFF tile and its level's tables."""
    if not tile.startswith(_SOI):
        raise UnprocessableImage("pyramid tile is not a JPEG stream")
    head = _SOI + (_ADOBE_RGB if rgb else b"")
    if tables and tables.startswith(_SOI) and tables.endswith(_EOI):
        head += tables[2:-2]
    return b"".join((head, memoryview(tile)[2:]))  # one copy of the tile, not two


def decode_tile(raw: bytes, *, compression: str, dtype: str, bands: int, tile_width: int, tile_height: int,
                predictor: int = 1, tables: bytes | None = None, rgb: bool = False) -> np.ndarray:
    """Pixels of one tile as ``tile_height x tile_width x bands`` of ``dtype`` (native byte order)."""
    dt = np.dtype(dtype)
    shape = (tile_height, tile_width, bands)
    if not raw:  # a tile the writer left out (count 0): empty
        return np.zeros(shape, dt.newbyteorder("="))
    try:
        if compression == "jpeg":
            with Image.open(io.BytesIO(standalone_jpeg(raw, tables, rgb)), formats=["JPEG"]) as im:
                im.draft(None, None)
                arr = np.asarray(im.convert("L" if bands == 1 else "RGB"))
            out = arr.reshape(arr.shape[0], arr.shape[1], bands)
            if out.shape != shape:
                full = np.zeros(shape, np.uint8)
                full[:out.shape[0], :out.shape[1]] = out[:tile_height, :tile_width]
                out = full
            return out
        data = zlib.decompress(raw) if compression == "deflate" else raw
        arr = np.frombuffer(data, dt, count=tile_width * tile_height * bands).reshape(shape)
        if predictor == 2:  # horizontal differencing: a running sum along each row, per sample
            arr = np.cumsum(arr, axis=1, dtype=dt)
        return arr.astype(dt.newbyteorder("="), copy=False)
    except (OSError, ValueError, zlib.error) as e:
        raise UnprocessableImage(f"pyramid tile cannot be decoded: {e}") from None

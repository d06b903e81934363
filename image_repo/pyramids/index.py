"""The tile index of a pyramid: where every tile's bytes are, so one tile costs one ranged GET.

It is made once from the pyramidal TIFF (tifffile reads the structure; no pixel is decoded)
and kept as a small object beside it, ``<pyramid key>.index``:

    MAGIC, 4-byte header length, JSON header, then per level and plane the tile offsets
    (little-endian uint64) and byte counts (uint32), row by row, at the places the header names.

A 20-gigapixel image at 512 px tiles has ~100,000 tiles: ~1.2 MB of index, read once per
worker (the reader's LRU), never per request. The header holds the SourceInfo of the seam
(levels, tile size, photometric, channels with their statistics, the 16-bit window) and how
tiles are stored: compression, predictor, byte order, samples per tile, JPEG tables.

Planes: an RGB or grey level has one plane of tiles holding every band ("chunky"). An
N-channel level has one plane per channel (a page per channel, as OME-TIFF lays them out,
or TIFF's separate planes), so a tile of one channel is one range of its own.
"""
from __future__ import annotations

import base64
import io
import json
import struct
from dataclasses import asdict, dataclass
from typing import IO, Any

import numpy as np

from ..imaging.rendering import Rendering, Window, default_rendering
from . import ome
from .source import Channel, Level, SourceInfo

MAGIC = b"IRPX1\n"
_LEN = struct.Struct("<I")
FORMAT_VERSION = 1
COMPRESSIONS = {1: "none", 7: "jpeg", 8: "deflate", 32946: "deflate"}
"""TIFF compressions whose tiles we read (JPEG by Pillow, deflate by zlib); others are rebuilt."""


class NotUsable(ValueError):
    """A TIFF that cannot serve as a pyramid as it stands (the message says why): build one."""


@dataclass(frozen=True)
class LevelTiles:
    """Where the tiles of one level are: ``offsets[plane, row * columns + column]``."""

    columns: int
    rows: int
    offsets: np.ndarray
    counts: np.ndarray
    jpeg_tables: bytes | None = None


@dataclass(frozen=True)
class PyramidIndex:
    """A pyramid's SourceInfo and tile table, and which object holds the tiles."""

    info: SourceInfo
    levels: tuple[LevelTiles, ...]
    key: str
    """The object holding the tiles: the pyramid in the cache store, or the original itself."""
    in_original: bool
    """True when the original was already pyramidal: tiles are read from the originals store."""
    size: int
    """Bytes of that object, as indexed."""
    compression: str
    """``jpeg``, ``deflate`` or ``none``."""
    predictor: int
    """TIFF predictor: 1 none, 2 horizontal differencing."""
    dtype: str
    """numpy dtype of samples, with byte order (``|u1``, ``<u2``, ``>u2``)."""
    bands: int
    """Samples per pixel of one tile (3 for chunky RGB, 1 for a channel's plane)."""
    jpeg_rgb: bool = False
    """JPEG tiles coded as RGB (photometric RGB), not YCbCr: a stand-alone copy needs an Adobe marker."""
    source_version: str = ""

    @property
    def planes(self) -> int:
        return int(self.levels[0].offsets.shape[0])

    def encode(self) -> bytes:
        """The index object's bytes."""
        arrays: list[bytes] = []
        at = 0
        levels = []
        for lv in self.levels:
            offsets = np.ascontiguousarray(lv.offsets, dtype="<u8").tobytes()
            counts = np.ascontiguousarray(lv.counts, dtype="<u4").tobytes()
            levels.append({"columns": lv.columns, "rows": lv.rows, "offsets_at": at, "counts_at": at + len(offsets),
                           "jpeg_tables": base64.b64encode(lv.jpeg_tables).decode() if lv.jpeg_tables else None})
            arrays += [offsets, counts]
            at += len(offsets) + len(counts)
        info = asdict(self.info)
        header = {"v": FORMAT_VERSION, "info": info, "tiles": levels, "planes": self.planes, "key": self.key,
                  "in_original": self.in_original, "size": self.size, "compression": self.compression,
                  "predictor": self.predictor, "dtype": self.dtype, "bands": self.bands, "jpeg_rgb": self.jpeg_rgb,
                  "source_version": self.source_version}
        head = json.dumps(header, separators=(",", ":")).encode()
        return b"".join([MAGIC, _LEN.pack(len(head)), head, *arrays])

    @classmethod
    def decode(cls, blob: bytes) -> PyramidIndex:
        """The index an object holds; ValueError if it is not one of ours (or of another version)."""
        if not blob.startswith(MAGIC):
            raise ValueError("not a pyramid index")
        (hlen,) = _LEN.unpack_from(blob, len(MAGIC))
        start = len(MAGIC) + _LEN.size
        h = json.loads(blob[start:start + hlen])
        if h.get("v") != FORMAT_VERSION:
            raise ValueError(f"pyramid index version {h.get('v')}, not {FORMAT_VERSION}")
        data = memoryview(blob)[start + hlen:]
        planes = int(h["planes"])
        levels = []
        for t in h["tiles"]:
            n = planes * t["columns"] * t["rows"]
            offsets = np.frombuffer(data, "<u8", n, t["offsets_at"]).reshape(planes, -1)
            counts = np.frombuffer(data, "<u4", n, t["counts_at"]).reshape(planes, -1)
            tables = base64.b64decode(t["jpeg_tables"]) if t["jpeg_tables"] else None
            levels.append(LevelTiles(t["columns"], t["rows"], offsets, counts, tables))
        i = h["info"]
        info = SourceInfo(i["width"], i["height"], i["tile_width"], i["tile_height"],
                          tuple(Level(**lv) for lv in i["levels"]), i["photometric"],
                          tuple(Channel(c["name"], c["dtype"], c.get("colour"), dict(c.get("stats") or {}))
                                for c in i["channels"]),
                          i["stored"], tuple(i["window"]) if i.get("window") else None,
                          Rendering(tuple(Window(**w) for w in i["rendering"]["channels"])) if i.get("rendering") else None)
        return cls(info, tuple(levels), h["key"], bool(h["in_original"]), int(h["size"]), h["compression"],
                   int(h["predictor"]), h["dtype"], int(h["bands"]), bool(h.get("jpeg_rgb")), h.get("source_version", ""))


def index_tiff(f: IO[bytes] | io.RawIOBase | str, key: str, size: int, *, in_original: bool, source_version: str = "",
               min_levels_for: int = 1024) -> PyramidIndex:
    """The index of the pyramidal tiled TIFF ``f`` (a path or a seekable file), from its structure only.

    Pyramids as top-level IFDs (libvips, OpenSlide's generic TIFF) or as SubIFDs (OME-TIFF),
    one page per channel or chunky bands. ``NotUsable`` when it cannot serve as it stands:
    striped, no smaller levels while the base is larger than ``min_levels_for``, tile sizes
    that differ between levels, a compression or sample type we do not read.
    """
    import tifffile

    try:
        tf = tifffile.TiffFile(f)  # type: ignore[arg-type]  # a RawIOBase is a binary file too
    except (tifffile.TiffFileError, ValueError, OSError, struct.error) as e:
        raise NotUsable(f"not a readable TIFF: {e}") from None
    with tf:
        try:
            series = tf.series[0]
            levels = series.levels
            pages: list[list[Any]] = [[_page(p) for p in lv.pages] for lv in levels]
        except (IndexError, ValueError, KeyError, OSError, struct.error) as e:
            raise NotUsable(f"unreadable TIFF structure: {e}") from None
        base: Any = pages[0][0]
        if base is None or not getattr(base, "is_tiled", False):
            raise NotUsable("not tiled")
        if len(levels) < 2 and max(base.imagewidth, base.imagelength) > min_levels_for:
            raise NotUsable("no reduced levels")
        compression = COMPRESSIONS.get(int(base.compression))
        if compression is None:
            raise NotUsable(f"tiles compressed as {base.compression.name}")
        dtype = np.dtype(base.dtype)
        if dtype not in (np.uint8, np.uint16) or base.bitspersample not in (8, 16):
            raise NotUsable(f"samples of {base.bitspersample} bits ({base.dtype})")
        tw, th = base.tilewidth, base.tilelength
        width, height = base.imagewidth, base.imagelength
        separate = int(base.planarconfig) == 2
        spp = int(base.samplesperpixel)
        photometric = int(base.photometric)
        out_levels, out_tiles = [], []
        for lv_pages in pages:
            first: Any = lv_pages[0]
            for p in lv_pages:
                if (p.tilewidth, p.tilelength, int(p.compression), p.samplesperpixel, int(p.planarconfig)) != (
                        tw, th, int(base.compression), spp, int(base.planarconfig)) or p.dtype != base.dtype:
                    raise NotUsable("levels or pages tiled or coded differently")
            cols, rows = -(-first.imagewidth // tw), -(-first.imagelength // th)
            per_page = spp if separate else 1
            offsets = np.asarray([o for p in lv_pages for o in p.dataoffsets], dtype=np.uint64)
            counts = np.asarray([c for p in lv_pages for c in p.databytecounts], dtype=np.uint64)
            planes = len(lv_pages) * per_page
            if offsets.size != planes * cols * rows:
                raise NotUsable("tile table does not match the tile grid")
            tables = bytes(first.jpegtables) if compression == "jpeg" and first.jpegtables else None
            out_tiles.append(LevelTiles(cols, rows, offsets.reshape(planes, -1), counts.astype(np.uint32).reshape(planes, -1),
                                        tables))
            out_levels.append(Level(first.imagewidth, first.imagelength, width / first.imagewidth))
        n_pages = len(pages[0])
        channel_planes = n_pages * (spp if separate else 1)
        if channel_planes > 1 or (spp not in (1, 3) and not separate):
            if n_pages > 1 or separate:
                kind, bands = "channels", 1
            else:
                raise NotUsable(f"{spp} chunky samples per pixel")
        else:
            kind, bands = ("rgb" if spp == 3 else "grey"), spp
        if kind == "channels" and compression == "jpeg":
            raise NotUsable("JPEG-coded channels")
        if kind == "rgb" and photometric not in (2, 6):
            raise NotUsable(f"photometric {base.photometric.name}")
        names = _channel_names(kind, channel_planes if kind == "channels" else bands)
        told = ome.of_tiff(tf) if kind == "channels" else ome.Described()
        info = SourceInfo(width, height, tw, th, tuple(out_levels), kind,
                          tuple(Channel(told.name(i) if told.names else n, dtype.name, told.colour(i))
                                for i, n in enumerate(names)), compression)
        return PyramidIndex(info, tuple(out_tiles), key, in_original, size, compression, int(base.predictor),
                            dtype.newbyteorder(tf.byteorder).str if dtype.itemsize > 1 else "|u1",
                            bands, compression == "jpeg" and photometric == 2, source_version)


def _page(p: Any) -> Any:
    """A whole page: tifffile hands pages after the first as frames, which keep no tile tags."""
    return p.aspage() if p is not None and hasattr(p, "aspage") and not hasattr(p, "tilewidth") else p


def _channel_names(kind: str, n: int) -> list[str]:
    if kind == "rgb":
        return ["red", "green", "blue"]
    if kind == "grey":
        return ["grey"]
    return [f"channel {i}" for i in range(n)]


def with_stats(index: PyramidIndex, stats: list[dict[str, float]], window: tuple[float, float] | None,
               names: list[str] | None = None, colours: list[str | None] | None = None) -> PyramidIndex:
    """The index with each channel's measured statistics (and names and colours, when the build knows
    them), the window, and for N channels the default rendering made from them."""
    channels = tuple(Channel(names[i] if names and i < len(names) else c.name, c.dtype,
                             colours[i] if colours and i < len(colours) and colours[i] else c.colour,
                             stats[i] if i < len(stats) else {}) for i, c in enumerate(index.info.channels))
    rendering = default_rendering(channels) if index.info.photometric == "channels" else None
    info = SourceInfo(**{**_fields(index.info), "channels": channels, "window": window, "rendering": rendering})
    return PyramidIndex(**{**_fields(index), "info": info})


def _fields(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}

"""What an OME-TIFF says of its channels: names and colours, from the OME-XML in its first page.

OME colours are signed 32-bit RGBA integers (``-16776961`` is opaque red). A file whose
OME-XML is broken, or names fewer channels than it holds, still opens: the channels it does
not describe get default names (``channel 3``) and no colour.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

log = logging.getLogger("image_repo.pyramids")

MAX_XML = 16 * 2**20
"""OME-XML longer than this is not parsed (a file is not allowed to cost the builder its memory)."""


@dataclass(frozen=True)
class Described:
    """Per channel: its name (None: not given) and colour ``RRGGBB`` (None: not given)."""

    names: tuple[str | None, ...] = ()
    colours: tuple[str | None, ...] = ()

    def name(self, i: int) -> str:
        given = self.names[i] if i < len(self.names) else None
        return given or f"channel {i}"

    def colour(self, i: int) -> str | None:
        return self.colours[i] if i < len(self.colours) else None


def ome_colour(value: str | None) -> str | None:
    """``RRGGBB`` of an OME Color attribute (a signed RGBA int32), or None (none given, or black)."""
    if value is None:
        return None
    try:
        rgba = int(value.strip()) & 0xFFFFFFFF
    except ValueError:
        return None
    if rgba >> 8 == 0:  # black adds nothing to a composite: a writer's placeholder, not a choice
        return None
    return f"{rgba >> 8:06X}"


def parse(xml: str | bytes | None) -> Described:
    """The channels of the first image an OME-XML document describes; empty when it is broken."""
    if not xml or len(xml) > MAX_XML:
        return Described()
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as e:
        log.info("broken OME-XML (%s): default channel names", e)
        return Described()
    image = next((el for el in root.iter() if _local(el.tag) == "Image"), None)
    pixels = next((el for el in (image.iter() if image is not None else ()) if _local(el.tag) == "Pixels"), None)
    if pixels is None:
        return Described()
    channels = [el for el in pixels if _local(el.tag) == "Channel"]
    names = tuple((el.get("Name") or "").strip()[:200] or None for el in channels)
    colours = tuple(ome_colour(el.get("Color")) for el in channels)
    return Described(names, colours)


def of_tiff(tf: Any) -> Described:
    """What the open ``tifffile.TiffFile`` ``tf`` says of its channels (nothing when it is not OME)."""
    try:
        first = tf.pages.first if hasattr(tf.pages, "first") else tf.pages[0]
        text = first.description or ""
    except (IndexError, ValueError, OSError, AttributeError):
        return Described()
    if "<OME" not in text[:4096]:
        return Described()
    return parse(text)


def of_file(path: str) -> Described:
    """``of_tiff`` of the file at ``path``; empty when it is no TIFF tifffile reads."""
    import struct

    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            return of_tiff(tf)
    except (tifffile.TiffFileError, ValueError, OSError, struct.error):
        return Described()


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def grey_planes_with_alpha(path: str) -> bool:
    """Whether the TIFF at ``path`` declares an alpha sample (ExtraSamples 1 or 2): grey plus alpha,
    not two channels. A minisblack TIFF with several samples and no alpha holds channels."""
    import struct

    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            first = tf.pages.first if hasattr(tf.pages, "first") else tf.pages[0]
            return any(int(v) in (1, 2) for v in (getattr(first, "extrasamples", ()) or ()))
    except (tifffile.TiffFileError, ValueError, OSError, struct.error, IndexError):
        return False


def separate_planes(path: str) -> bool:
    """Whether the first page of the TIFF at ``path`` holds its samples in separate planes. libvips
    reads none of them right (tiled: refused; in strips: rows past the first strip misplaced)."""
    import struct

    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            first: Any = tf.pages.first if hasattr(tf.pages, "first") else tf.pages[0]
            return int(first.planarconfig) == 2 and int(first.samplesperpixel) > 1
    except (tifffile.TiffFileError, ValueError, OSError, struct.error, IndexError):
        return False


SPLIT_TILE = 512


def split_planes(path: str, out: str) -> str:
    """The first page of the planar-separate TIFF at ``path`` rewritten to ``out`` as one tiled
    page per sample plane (the OME layout libvips reads), from its tiles or strips as they are
    decoded: memory stays a band of SPLIT_TILE rows whatever the image's size."""
    import numpy as np
    import tifffile

    with tifffile.TiffFile(path) as tf:
        page: Any = tf.pages.first if hasattr(tf.pages, "first") else tf.pages[0]
        width, height, planes = int(page.imagewidth), int(page.imagelength), int(page.samplesperpixel)
        segments = (t[0, :, :, 0] for t, _, _ in page.segments(sort=True))
        if page.is_tiled:
            th, tw = int(page.tilelength), int(page.tilewidth)
            per_plane = -(-height // th) * -(-width // tw)
            tiles = (np.pad(t, ((0, th - t.shape[0]), (0, tw - t.shape[1]))) for t in segments)
        else:
            th = tw = SPLIT_TILE
            per_plane = -(-height // th) * -(-width // tw)
            tiles = _tiles_of_strips(segments, width, height, th, page.dtype)
        with tifffile.TiffWriter(out, bigtiff=True) as writer:
            for _ in range(planes):
                writer.write(_take(tiles, per_plane), shape=(height, width), dtype=page.dtype, tile=(th, tw),
                             photometric="minisblack", compression="zlib")
    return out


def _take(it: Any, n: int) -> Any:
    for _ in range(n):
        yield next(it)


def _tiles_of_strips(strips: Any, width: int, height: int, size: int, dtype: Any) -> Any:
    """Square tiles (row by row of tiles, plane after plane) from the strips of each plane in turn."""
    import numpy as np

    band = np.zeros((size, width), dtype)
    pending: list[Any] = []  # the rest of a strip that crossed the band's lower edge
    while True:  # plane after plane, until the strips run out
        for plane_row in range(0, height, size):
            want = min(size, height - plane_row)
            band[:] = 0
            filled = 0
            while filled < want:
                strip = pending.pop(0) if pending else next(strips, None)
                if strip is None:
                    return
                take = min(want - filled, strip.shape[0])
                band[filled:filled + take] = strip[:take]
                if take < strip.shape[0]:
                    pending.insert(0, strip[take:])
                filled += take
            for x in range(0, width, size):
                tile = np.zeros((size, size), dtype)
                part = band[:, x:x + size]
                tile[:, :part.shape[1]] = part
                yield tile

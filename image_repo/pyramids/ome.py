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
    """``RRGGBB`` of an OME Color attribute (a signed RGBA int32), or None."""
    if value is None:
        return None
    try:
        rgba = int(value.strip()) & 0xFFFFFFFF
    except ValueError:
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


def tiled_separate(path: str) -> bool:
    """Whether the TIFF at ``path`` is tiled with its samples in separate planes (libvips reads no such file)."""
    import struct

    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            first: Any = tf.pages.first if hasattr(tf.pages, "first") else tf.pages[0]
            return bool(first.is_tiled) and int(first.planarconfig) == 2 and int(first.samplesperpixel) > 1
    except (tifffile.TiffFileError, ValueError, OSError, struct.error, IndexError):
        return False


def split_planes(path: str, out: str) -> str:
    """The first page of the tiled, planar-separate TIFF at ``path`` rewritten to ``out`` as one
    tiled page per sample plane (the OME layout libvips reads), a tile at a time: memory stays a
    few tiles whatever the image's size."""
    from itertools import islice

    import numpy as np
    import tifffile

    with tifffile.TiffFile(path) as tf:
        page: Any = tf.pages.first if hasattr(tf.pages, "first") else tf.pages[0]
        th, tw = int(page.tilelength), int(page.tilewidth)
        per_plane = -(-int(page.imagelength) // th) * -(-int(page.imagewidth) // tw)
        tiles = (np.pad(t[0, :, :, 0], ((0, th - t.shape[1]), (0, tw - t.shape[2])))
                 for t, _, _ in page.segments(sort=True))
        with tifffile.TiffWriter(out, bigtiff=True) as tw_out:
            for _ in range(int(page.samplesperpixel)):
                tw_out.write(islice(tiles, per_plane), shape=(int(page.imagelength), int(page.imagewidth)),
                             dtype=page.dtype, tile=(th, tw), photometric="minisblack", compression="zlib")
    return out

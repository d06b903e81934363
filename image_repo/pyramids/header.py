"""What a huge original is, from its header only (libvips reads headers lazily): never a decode.

Pillow refuses to even open an image past twice its bomb limit, and decoding one to probe it
would take GBs; libvips opens JPEG, PNG and TIFF (BigTIFF, tiled or striped) by header.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import PayloadTooLarge, UnprocessableImage, UnsupportedImage
from ..imaging.formats import INPUT_KINDS, Kind
from ..storage.base import ObjectStore
from ..storage.large import RangeFile

_LOADERS = {"jpegload": "jpg", "pngload": "png", "tiffload": "tif"}
"""The kinds accepted beyond max_pixels: those libvips streams into a pyramid."""


@dataclass(frozen=True)
class Header:
    kind: Kind
    width: int
    height: int
    bands: int
    format: str
    """libvips sample format: uchar, ushort..."""
    pages: int = 1
    interpretation: str = ""
    ome: bool = False
    """The first page's description is OME-XML."""

    @property
    def multichannel(self) -> bool:
        """A TIFF of N channels (served only from its pyramid, composited by renderings): OME pages,
        16-bit pages of one band each, more than 4 bands, or several minisblack samples."""
        if self.kind.name != "tif":
            return False
        if self.pages > 1 and self.bands == 1:
            return self.ome or self.format in ("ushort", "short")
        return self.bands > 4 or (self.bands in (3, 4) and self.interpretation in ("b-w", "grey16", "multiband"))


def _header(im: Any) -> Header:
    loader = str(im.get("vips-loader")) if im.get_typeof("vips-loader") else ""
    kind = next((INPUT_KINDS[k] for prefix, k in _LOADERS.items() if loader.startswith(prefix)), None)
    if kind is None:
        raise UnsupportedImage(f"images beyond max_pixels are accepted as JPEG, PNG or TIFF only, not {loader or 'this'}")
    pages = int(im.get("n-pages")) if im.get_typeof("n-pages") else 1
    description = str(im.get("image-description")) if im.get_typeof("image-description") else ""
    return Header(kind, im.width, im.height, im.bands, str(im.format), pages, str(im.interpretation),
                  "<OME" in description[:4096])


def _errors(e: Exception) -> UnprocessableImage:
    first = next((ln for ln in str(e).splitlines() if ln.strip() and "unable to call" not in ln), "unreadable")
    return UnprocessableImage(f"corrupt image header: {first.strip()[:200]}")


def header_of_bytes(data: bytes) -> Header:
    """The header of an image held in memory."""
    import pyvips

    try:
        return _header(pyvips.Image.new_from_buffer(data, "", access="sequential"))
    except pyvips.Error as e:
        raise _errors(e) from None


def header_of_file(path: str) -> Header:
    """The header of a local file (``/proc/self/fd/N`` for one already open)."""
    import pyvips

    try:
        return _header(pyvips.Image.new_from_file(path, access="sequential", revalidate=True))
    except pyvips.Error as e:
        raise _errors(e) from None


def header_of_object(store: ObjectStore, key: str, size: int) -> Header:
    """The header of a stored image, by the few ranged reads it takes (a file store: read in place)."""
    import pyvips

    open_fd = getattr(store, "open_fd", None)
    try:
        if callable(open_fd):
            fd = open_fd(key)
            try:
                # revalidate: libvips caches a load by its file name, and fd numbers are reused for other files
                return _header(pyvips.Image.new_from_file(f"/proc/self/fd/{fd}", access="sequential", revalidate=True))
            finally:
                os.close(fd)
        f = RangeFile(store, key, size)
        source = pyvips.SourceCustom()
        source.on_read(lambda n: f.read(n))
        source.on_seek(lambda offset, whence: f.seek(offset, whence))
        return _header(pyvips.Image.new_from_source(source, "", access="sequential"))
    except pyvips.Error as e:
        raise _errors(e) from None


MIN_BYTES_PER_PIXEL = 1 / 8192
"""No codec we take stores an image in less (deflate stops at ~1:1032, a JPEG block needs a few
bits): a header declaring more pixels than its file can hold is a bomb, not an image."""


def check_huge(h: Header, max_pyramid_pixels: int, size: int | None = None) -> None:
    """Refuse an original beyond max_pixels that no pyramid can hold, or whose bytes cannot hold it."""
    if size is not None and size < h.width * h.height * MIN_BYTES_PER_PIXEL:
        raise PayloadTooLarge(f"image declares {h.width}x{h.height} pixels, more than its {size} bytes can hold")
    if h.width * h.height > max_pyramid_pixels:
        raise PayloadTooLarge(f"image is {h.width}x{h.height} ({h.width * h.height / 1e9:.1f} gigapixels); "
                              f"the limit is {max_pyramid_pixels / 1e9:.1f} gigapixels (max_pyramid_pixels)")
    if h.format not in ("uchar", "ushort", "char", "short"):
        raise UnsupportedImage(f"images beyond max_pixels must have 8- or 16-bit samples, not {h.format}")

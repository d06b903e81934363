"""Image kinds: canonical spellings, aliases, Pillow format names and MIME types."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str
    """Canonical spelling, used in keys and as the file extension we write."""
    pil_format: str
    content_type: str
    extensions: tuple[str, ...]


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("jpg", "JPEG", "image/jpeg", ("jpg", "jpeg", "jpe", "jfif")),
        Kind("png", "PNG", "image/png", ("png",)),
        Kind("tif", "TIFF", "image/tiff", ("tif", "tiff")),
        Kind("bmp", "BMP", "image/bmp", ("bmp",)),
        Kind("gif", "GIF", "image/gif", ("gif",)),
        Kind("webp", "WEBP", "image/webp", ("webp",)),
        Kind("avif", "AVIF", "image/avif", ("avif",)),
        # A JP2 file on output; on input a raw codestream (.j2k) too, which Pillow names the same.
        Kind("jp2", "JPEG2000", "image/jp2", ("jp2", "j2k", "jpf", "jpx", "j2c", "jpc")),
    )
}
"""Output kinds (what ``kind=`` may ask for)."""

INPUT_KINDS: dict[str, Kind] = {
    **KINDS,
    "heic": Kind("heic", "HEIF", "image/heic", ("heic", "heif")),
    # Decode-only kinds of this field: Photoshop (its flattened composite, not the layers),
    # Targa, Netpbm (PPM, PGM, PBM), Windows icons (the largest image) and QOI.
    "psd": Kind("psd", "PSD", "image/vnd.adobe.photoshop", ("psd",)),
    "ppm": Kind("ppm", "PPM", "image/x-portable-anymap", ("ppm", "pgm", "pbm", "pnm")),
    "ico": Kind("ico", "ICO", "image/vnd.microsoft.icon", ("ico",)),
    "qoi": Kind("qoi", "QOI", "image/qoi", ("qoi",)),
    # Last: Targa has no signature, so its plugin tries any bytes the others declined.
    "tga": Kind("tga", "TGA", "image/x-tga", ("tga",)),
}
"""Kinds an original may be (output kinds plus decode-only ones, when a plugin is present).

Every other format Pillow could open (EPS through Ghostscript, FITS, SPIDER, DDS...) is
refused with 415: each is a decoder exposed to hostile uploads that users here do not need.
"""

_BY_EXTENSION: dict[str, Kind] = {ext: k for k in INPUT_KINDS.values() for ext in k.extensions}
_BY_PIL_FORMAT: dict[str, Kind] = {k.pil_format: k for k in INPUT_KINDS.values()}
_BY_PIL_FORMAT["MPO"] = KINDS["jpg"]  # multi-picture JPEGs from cameras are JPEGs to us


def output_kind(value: str) -> Kind | None:
    """The output kind a ``kind=`` value or path extension names (case-insensitive), or None."""
    k = _BY_EXTENSION.get(value.lower())
    return k if k is not None and k.name in KINDS else None


def kind_for_extension(ext: str) -> Kind | None:
    """The input kind an original's file extension names (case-insensitive), or None."""
    return _BY_EXTENSION.get(ext.lower())


def kind_for_pil_format(fmt: str | None) -> Kind | None:
    return _BY_PIL_FORMAT.get(fmt or "")


def split_extension(path: str) -> tuple[str, Kind | None]:
    """Split ``a/b.JPG`` into (``a/b``, jpg); a path without a known image extension is whole."""
    last = path.rsplit("/", 1)[-1]
    stem, dot, ext = last.rpartition(".")
    if not dot or not stem:
        return path, None
    kind = kind_for_extension(ext)
    if kind is None:
        return path, None
    return path[: len(path) - len(ext) - 1], kind

"""Opening originals: only our decoders, the declared size checked before any decoding; probe().

``open_image`` refuses what we do not serve (415), what is too big (413) and broken headers
(422); ``load_first_frame`` decodes a JPEG at the smallest DCT scale that covers the target,
a JPEG 2000 at the smallest of its resolutions that does. ``probe`` checks that an upload is
a whole image we serve.
"""
from __future__ import annotations

import functools
import importlib
import io
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from ..errors import PayloadTooLarge, UnprocessableImage, UnsupportedImage
from .formats import INPUT_KINDS, Kind, kind_for_pil_format
from . import qoi
from .headers import icon_pixels, j2k_levels, j2k_reduce

DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, SyntaxError, ValueError, struct.error, EOFError, ZeroDivisionError,
    IndexError, KeyError, TypeError, OverflowError, RuntimeError, MemoryError,
)  # fmt: skip
"""What Pillow's decoders raise on bad data (libtiff: RuntimeError; huge frames: MemoryError)."""


@functools.cache
def decoders() -> tuple[str, ...]:
    """Pillow format names we decode: INPUT_KINDS whose plugin is present (HEIF needs pillow_heif, QOI qoi)."""
    try:
        heif = importlib.import_module("pillow_heif")
    except ImportError:
        pass
    else:
        heif.register_heif_opener()
    Image.init()
    fast_qoi = qoi.install()  # Pillow's own QOI decoder is pure Python: too slow to face uploads
    names = [k.pil_format for k in INPUT_KINDS.values() if k.pil_format in Image.OPEN and (k.name != "qoi" or fast_qoi)]
    return tuple(names + ["MPO"] if "JPEG" in names and "MPO" in Image.OPEN else names)


def sniff(source: bytes) -> Kind | None:
    """The input kind the leading bytes claim, whether or not the rest is sound."""
    head = source[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return INPUT_KINDS["jpg"]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return INPUT_KINDS["png"]
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return INPUT_KINDS["gif"]
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return INPUT_KINDS["tif"]
    if head.startswith(b"BM"):
        return INPUT_KINDS["bmp"]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return INPUT_KINDS["webp"]
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return INPUT_KINDS["jp2"]  # a JP2 file, or a raw codestream (SOC then SIZ)
    if head.startswith(b"8BPS"):
        return INPUT_KINDS["psd"]
    if head[:4] == b"qoif":
        return INPUT_KINDS["qoi"]
    if head[:4] == b"\x00\x00\x01\x00":
        return INPUT_KINDS["ico"]
    if len(head) > 2 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3] in b" \t\r\n#":
        return INPUT_KINDS["ppm"]
    # TGA has no signature: Pillow's plugin judges its header, after every other decoder declined.
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return INPUT_KINDS["avif"]
        if brand in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"):
            return INPUT_KINDS["heic"]
    return None


def _supported() -> str:
    return ", ".join(k.name for k in INPUT_KINDS.values() if k.pil_format in decoders())


@contextmanager
def open_image(source: bytes, *, max_pixels: int | None) -> Iterator[tuple[Image.Image, Kind]]:
    """Open ``source`` lazily (header only) with our decoders, refusing what we do not serve.

    415 for anything not an image of a supported kind, 413 when the declared size is over
    ``max_pixels`` (None: no check, for reading metadata), 422 for a broken image of a
    supported kind. The image is closed on exit. Pillow's warnings are silenced within the block.
    """
    claimed = sniff(source)
    if claimed is not None and claimed.pil_format not in decoders():
        raise UnsupportedImage(f"{claimed.name} images are not supported here (supported: {_supported()})")
    if claimed is not None and claimed.name == "ico":
        # Pillow decodes an icon's image while opening it: its declared size is checked first.
        pixels, limit = icon_pixels(source), max_pixels or Image.MAX_IMAGE_PIXELS  # Pillow's, for metadata
        if limit is not None and pixels > limit:
            raise PayloadTooLarge(f"an image in this icon declares {pixels / 1e6:.1f} megapixels; "
                                  f"the limit is {limit / 1e6:.1f} megapixels")
    with warnings.catch_warnings():
        # Pillow warns about odd EXIF and the like; we judge by errors. Its bomb warning
        # (over Image.MAX_IMAGE_PIXELS) is silenced too: our own check of the declared size
        # against max_pixels follows at once, before any decoding, and is the one that decides
        # (so a limit set above Pillow's default works). Pillow's bomb *error* (over twice its
        # limit) still stops the open: it becomes a 413 below.
        warnings.filterwarnings("ignore", module=r"PIL\.")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(source), formats=decoders())
        except Image.DecompressionBombError as exc:
            raise PayloadTooLarge(f"image too large to decode safely: {exc}") from exc
        except UnidentifiedImageError as exc:
            if claimed is not None:
                raise UnprocessableImage(f"corrupt or truncated {claimed.name} image (unreadable header)") from exc
            raise UnsupportedImage(f"not an image of a supported kind ({_supported()})") from exc
        except DECODE_ERRORS as exc:
            raise UnprocessableImage(f"corrupt image header: {exc}") from exc
        with im:
            kind = kind_for_pil_format(im.format)
            if kind is None:  # unreachable with formats=decoders(), kept so a new plugin cannot slip by
                raise UnsupportedImage(f"{im.format} images are not supported ({_supported()})")
            if im.format in ("JPEG", "MPO"):
                # The whole file to the decoder in one piece: libjpeg never suspends at the
                # end of a 64 KiB block and restarts the MCU (~2% of a 12 MP decode).
                im.decodermaxblock = max(im.decodermaxblock, len(source))
            width, height = im.size
            if width < 1 or height < 1:
                raise UnprocessableImage(f"image declares an empty size {width}x{height}")
            if max_pixels is not None and width * height > max_pixels:
                raise PayloadTooLarge(
                    f"image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
                    f"the limit is {max_pixels / 1e6:.1f} megapixels"
                )
            yield im, kind


def orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8), 1 when absent or unreadable."""
    try:
        value = im.getexif().get(0x0112, 1)
    except DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def frame_count(im: Image.Image) -> int:
    """Frames of an opened image, the current one kept; a PSD is one (its flattened composite:
    Pillow counts its layers)."""
    if im.format == "PSD":
        return 1
    at = im.tell()
    frames = int(getattr(im, "n_frames", 1))
    if im.tell() != at:
        im.seek(at)
    return frames


def load_first_frame(im: Image.Image, kind: Kind, *, at_least: tuple[int, int] | None = None,
                     source: bytes | None = None) -> None:
    """Decode the current (first) frame, a JPEG at the smallest DCT scale still ``at_least`` that big,
    a JPEG 2000 (given its ``source``) at the smallest resolution level still that big.

    Any decoder failure is a 422.
    """
    try:
        if at_least is not None and im.format in ("JPEG", "MPO"):
            im.draft(im.mode, at_least)  # DCT-domain downscale: never decode more than needed
        elif at_least is not None and im.format == "JPEG2000" and source is not None:
            reduce = j2k_reduce(im.size, at_least, j2k_levels(source))
            if reduce:
                im.reduce = reduce  # type: ignore[assignment,method-assign]  # Pillow's J2K property
        im.load()
    except DECODE_ERRORS as exc:
        raise UnprocessableImage(f"corrupt or truncated {kind.name} image: {exc}") from exc


@dataclass(frozen=True)
class ImageInfo:
    """What an upload is: its kind, stored (header) size and frame count."""

    kind: Kind
    width: int
    height: int
    content_type: str
    frames: int


def probe(source: bytes, *, max_pixels: int) -> ImageInfo:
    """Check that ``source`` is a whole image we serve: 415 unsupported, 413 too big, 422 broken.

    Decodes the first frame only, and a JPEG at 1/8 scale (the entropy decoder still reads
    every byte, so truncation shows).
    """
    with open_image(source, max_pixels=max_pixels) as (im, kind):
        width, height = im.size
        try:
            frames = frame_count(im)
        except DECODE_ERRORS as exc:
            raise UnprocessableImage(f"corrupt {kind.name} image: cannot count its frames ({exc})") from exc
        # A JPEG 2000 at its smallest resolution: openjpeg still refuses a cut codestream.
        load_first_frame(im, kind, at_least=(1, 1), source=source)
        return ImageInfo(kind, width, height, kind.content_type, frames)

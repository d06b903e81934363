"""derive(): original bytes + DerivationSpec -> derived image bytes. Pure: no I/O, no settings.

Pipeline: open (only the decoders of ``formats.INPUT_KINDS``), check the header size, decode
the first frame at the smallest JPEG DCT scale that still covers the target, resample
(``reduce()`` then LANCZOS), turn by the EXIF orientation (on the small image), convert
to sRGB, sharpen thumbnails, fit the mode to the output kind, encode.

Colour: an embedded ICC profile is *applied*: pixels are converted to sRGB and written
untagged, the same for every output kind (GIF and BMP cannot carry a profile, and a CMYK
profile must not ride along on RGB output). Everything else of the original's metadata
(EXIF, GPS, XMP, IPTC, comments, PNG text, the profile itself) is dropped, because the
output is drawn into a new image whose ``info`` is empty.
"""

from __future__ import annotations

import functools
import importlib
import io
import struct
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageCms, ImageFilter, UnidentifiedImageError

from ..errors import PayloadTooLarge, UnprocessableImage, UnsupportedImage
from . import intermediate as intermediates
from .formats import INPUT_KINDS, KINDS, Kind, kind_for_pil_format
from .intermediate import Intermediate, Wish
from .spec import DerivationSpec

DEFAULT_THUMBNAIL_BOX = (50, 50)
"""Used only for a thumbnail spec with no box (parse_query normally fills the configured one)."""

DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, SyntaxError, ValueError, struct.error, EOFError, ZeroDivisionError,
    IndexError, KeyError, TypeError, OverflowError, RuntimeError, MemoryError,
)  # fmt: skip
"""What Pillow's decoders raise on bad data (libtiff: RuntimeError; huge frames: MemoryError)."""

# What exif_transpose() does for each EXIF orientation; 5-8 swap width and height.
ORIENTATION_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_SAVE_PARAMS: dict[str, dict[str, object]] = {
    "jpg": {"quality": 85, "optimize": False, "progressive": False},
    "png": {"compress_level": 6, "optimize": False},
    "webp": {"quality": 80, "method": 4},
    "tif": {"compression": "tiff_lzw"},
    "gif": {"optimize": False},
    "bmp": {},
}
_WHITE = (255, 255, 255)
RESAMPLE_FILTERS: dict[str, Image.Resampling] = {
    # The last resampling step only: a JPEG's DCT-scaled decode, or a box reduce(), has
    # already brought the image within 2x of the target (reducing_gap=2.0).
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "hamming": Image.Resampling.HAMMING,
    "bilinear": Image.Resampling.BILINEAR,
}


@dataclass(frozen=True)
class Derived:
    """An encoded derivative and what it is."""

    data: bytes
    kind: str
    content_type: str
    width: int
    height: int
    intermediate: Intermediate | None = None
    """Made when derive() was given a Wish and the decoded frame was worth keeping."""
    decoded_pixels: int = 0
    """Pixels of the frame as decoded (after any DCT scaling): how much memory the decode took."""


# --- opening ---------------------------------------------------------------------------


@functools.cache
def decoders() -> tuple[str, ...]:
    """Pillow format names we decode: INPUT_KINDS whose plugin is present (HEIF needs pillow_heif)."""
    try:
        heif = importlib.import_module("pillow_heif")
    except ImportError:
        pass
    else:
        heif.register_heif_opener()
    Image.init()
    names = [k.pil_format for k in INPUT_KINDS.values() if k.pil_format in Image.OPEN]
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


def load_first_frame(im: Image.Image, kind: Kind, *, at_least: tuple[int, int] | None = None) -> None:
    """Decode the current (first) frame, a JPEG at the smallest DCT scale still ``at_least`` that big.

    Any decoder failure is a 422.
    """
    try:
        if at_least is not None and im.format in ("JPEG", "MPO"):
            im.draft(im.mode, at_least)  # DCT-domain downscale: never decode more than needed
        im.load()
    except DECODE_ERRORS as exc:
        raise UnprocessableImage(f"corrupt or truncated {kind.name} image: {exc}") from exc


# --- geometry -----------------------------------------------------------------------------


def fit_size(size: tuple[int, int], box: tuple[int | None, int | None]) -> tuple[int, int]:
    """``size`` scaled to fit within ``box`` (None: unbounded), aspect kept, never up, >= 1x1.

    The limiting side takes the box's side exactly; the other is rounded down, as the 2016
    server did for square boxes (so 400x300 in 50x50 is 50x37). Integer arithmetic: no
    float error can push a side over the box or one short of it.
    """
    width, height = size
    box_w = width if box[0] is None else box[0]
    box_h = height if box[1] is None else box[1]
    if box_w >= width and box_h >= height:
        return size
    if box_w * height <= box_h * width:  # width is the tighter bound
        return box_w, max(1, height * box_w // width)
    return max(1, width * box_h // height), box_h


def draft_scale(size: tuple[int, int], target: tuple[int, int]) -> int:
    """The JPEG DCT scale denominator (1, 2, 4, 8) ``Image.draft(mode, target)`` decodes at.

    The largest that keeps both sides >= the target, as Pillow's JpegImageFile.draft picks it.
    """
    ratio = min(size[0] // target[0], size[1] // target[1])
    return next(s for s in (8, 4, 2, 1) if ratio >= s)


# --- pixels -------------------------------------------------------------------------------


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.lru_cache(maxsize=32)
def _to_srgb(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform from the embedded profile to sRGB (cached: cameras repeat a few profiles)."""
    space = {"RGB": "RGB", "RGBA": "RGB", "CMYK": "CMYK"}.get(mode)
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if space is None or profile.profile.xcolor_space.strip() != space:
            return None  # a profile that does not describe these pixels is ignored
        return ImageCms.buildTransform(profile, _srgb(), mode, "RGBA" if mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _to_8bit(im: Image.Image) -> Image.Image:
    """Deep greyscale (I;16*, I, F) as L, scaled to 0..255 rather than clipped at white."""
    if im.mode == "F":
        hi = im.getextrema()[1]
        scale = 255.0 if isinstance(hi, float) and hi <= 1.0 else 1.0
        return im.point(lambda v: v * scale).convert("L")
    deep = im.mode.startswith("I;16")
    wide = im if im.mode == "I" else im.convert("I")
    hi = wide.getextrema()[1]
    if deep or (isinstance(hi, int) and hi > 255):
        wide = wide.point(lambda v: v / 257)  # 16-bit range onto 8-bit
    return wide.convert("L")


def _resamplable(im: Image.Image) -> Image.Image:
    """``im`` in a mode LANCZOS and the later steps handle: L, LA, RGB, RGBA or CMYK."""
    mode = im.mode
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        if "transparency" in im.info and mode in ("L", "RGB"):
            return im.convert("RGBA")
        return im
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info or im.palette is not None and im.palette.mode == "RGBA"
        return im.convert("RGBA" if has_alpha else "RGB")
    if mode == "1":
        return im.convert("L")
    if mode.startswith("I") or mode == "F":
        return _to_8bit(im)
    if mode in ("La", "RGBa"):
        return im.convert(mode.upper())
    return im.convert("RGBA" if "A" in mode else "RGB")  # YCbCr, LAB, HSV ...


def _colour(im: Image.Image, icc: bytes | None) -> Image.Image:
    """sRGB pixels: apply the embedded profile if it fits, then CMYK -> RGB."""
    if icc and (transform := _to_srgb(icc, im.mode)) is not None:
        try:
            im = ImageCms.applyTransform(im, transform) or im
        except (ImageCms.PyCMSError, ValueError):
            pass
    return im.convert("RGB") if im.mode == "CMYK" else im


def _on_white(im: Image.Image) -> Image.Image:
    """Alpha composited onto white (a transparent area must not turn black)."""
    base = Image.new("RGB" if im.mode == "RGBA" else "L", im.size, _WHITE if im.mode == "RGBA" else 255)
    base.paste(im.convert(base.mode), mask=im.getchannel("A"))
    return base


def _to_gif(im: Image.Image) -> Image.Image:
    """A palette image; pixels less than half opaque become the transparent index 255."""
    if im.mode == "L":
        return im
    if im.mode not in ("LA", "RGBA"):
        return im.convert("RGB").quantize(colors=256)
    opaque = _on_white(im).convert("RGB")
    pal = opaque.quantize(colors=255)
    holes = im.getchannel("A").point(lambda a: 255 if a < 128 else 0, "1")
    if holes.getbbox() is not None:
        colours = (pal.getpalette() or [])[: 255 * 3]
        pal.putpalette(colours + [0] * (255 * 3 - len(colours)) + [255, 255, 255])
        pal.paste(255, mask=holes)
        pal.info["transparency"] = 255
    return pal


def _for_output(im: Image.Image, kind: str) -> Image.Image:
    """``im`` (L, LA, RGB or RGBA) in a mode ``kind`` can store."""
    alpha = im.mode in ("LA", "RGBA")
    if kind in ("jpg", "bmp"):  # BMP alpha is not honoured by most readers (Pillow included)
        return _on_white(im) if alpha else im
    if kind == "webp" and im.mode in ("L", "LA"):
        return im.convert("RGBA" if alpha else "RGB")
    if kind == "gif":
        return _to_gif(im)
    return im


# --- derive -------------------------------------------------------------------------------


def spec_box(spec: DerivationSpec) -> tuple[int | None, int | None]:
    """The box ``spec`` fits the image in."""
    if spec.thumbnail and not spec.resizes:
        return DEFAULT_THUMBNAIL_BOX
    return (spec.width, spec.height)


def resample_target(shown: tuple[int, int], turn: int, spec: DerivationSpec) -> tuple[int, int]:
    """The size to resample to, in the stored orientation, for an image displayed ``shown`` big."""
    target = fit_size(shown, spec_box(spec))
    return (target[1], target[0]) if turn >= 5 else target


def derive(
    source: bytes,
    spec: DerivationSpec,
    *,
    max_pixels: int,
    max_output_pixels: int,
    keep: Wish | None = None,
    stand_in: Intermediate | None = None,
    resample: str = "lanczos",
) -> Derived:
    """Make the image ``spec`` asks for from the original's bytes.

    ``keep``: also return an intermediate of the decoded frame (imaging/intermediate.py).
    ``stand_in``: ``source`` is that intermediate, not the original: sizes are computed
    from the original's displayed size and the EXIF turn it records.
    """
    box = spec_box(spec)
    with open_image(source, max_pixels=max_pixels) as (im, kind):
        turn = orientation(im) if stand_in is None else stand_in.turn
        swapped = turn >= 5
        shown = stand_in.shown if stand_in is not None else (im.height, im.width) if swapped else im.size
        target = fit_size(shown, box)
        if target[0] * target[1] > max_output_pixels:
            raise PayloadTooLarge(
                f"the result would be {target[0]}x{target[1]}; the limit is "
                f"{max_output_pixels / 1e6:.1f} megapixels (ask for a smaller xsize/ysize)"
            )
        stored_target = (target[1], target[0]) if swapped else target
        # An intermediate is decoded at twice the target at least: its DCT scaling on top of
        # the original's would differ visibly (SSIM ~0.98 vs ~0.995 against the original's result).
        at_least = stored_target if stand_in is None else (2 * stored_target[0], 2 * stored_target[1])
        load_first_frame(im, kind, at_least=at_least)
        icc = im.info.get("icc_profile")
        icc = icc if isinstance(icc, bytes) else None
        made: list[Intermediate] = []
        # The original's extent in the decoded frame's pixels, when it is not the whole frame.
        span = None
        if stand_in is not None and stand_in.span is not None:  # scaled by any DCT scaling of the stand-in
            span = (stand_in.span[0] * im.width / stand_in.width, stand_in.span[1] * im.height / stand_in.height)

        def keeping(frame: Image.Image) -> tuple[Image.Image, tuple[float, float] | None]:
            """Make the intermediate ``keep`` asks for from the decoded ``frame``: what to go on from."""
            assert keep is not None
            kept = intermediates.make(frame, keep, target=stored_target, source_kind=kind.name,
                                      source_pixels=shown[0] * shown[1], turn=turn, shown=shown, icc=icc)
            if kept is None:
                return frame, None
            made.append(kept[1])
            return kept[0], kept[1].span

        try:
            out = _process(im, spec, stored_target, turn, icc, keeping if keep is not None else None,
                           RESAMPLE_FILTERS[resample], span)
            try:
                buf = io.BytesIO()
                out.save(buf, KINDS[spec.kind].pil_format, **_save_params(spec.kind, out))
                return Derived(buf.getvalue(), spec.kind, KINDS[spec.kind].content_type, out.width, out.height,
                               made[0] if made else None, im.width * im.height)
            finally:
                out.close()
        except DECODE_ERRORS as exc:
            raise UnprocessableImage(f"cannot convert this {kind.name} image to {spec.kind}: {exc}") from exc


def _process(
    im: Image.Image,
    spec: DerivationSpec,
    target: tuple[int, int],
    turn: int,
    icc: bytes | None,
    keeping: Callable[[Image.Image], tuple[Image.Image, tuple[float, float] | None]] | None = None,
    resample: Image.Resampling = Image.Resampling.LANCZOS,
    span: tuple[float, float] | None = None,
) -> Image.Image:
    """The decoded frame ``im`` resampled, turned, coloured, sharpened, in the output's mode.

    ``span``: the original's extent in ``im``'s pixels, when a reduce() left a partly
    covered edge. ``keeping`` makes an intermediate and hands back what to resample from
    (the intermediate's pixels, when it reduced the frame) and their span.

    Each step makes a new image and frees the one before; the last is a new image with
    empty ``info``, so no metadata of the original reaches the encoder.
    """
    out = im

    def step(new: Image.Image) -> None:
        nonlocal out
        if new is not out:
            if out is not im:  # the source is closed by its owner
                out.close()
            out = new

    step(_resamplable(out))
    if keeping is not None:
        kept, kept_span = keeping(out)
        if kept is not out:
            step(kept)
            span = kept_span
    box = None if span is None else (0.0, 0.0, span[0], span[1])
    if out.size != target or box is not None:
        step(out.resize(target, resample, box=box, reducing_gap=2.0))
    if turn in ORIENTATION_TRANSPOSE:
        step(out.transpose(ORIENTATION_TRANSPOSE[turn]))
    step(_colour(out, icc))
    if spec.thumbnail:
        step(out.filter(ImageFilter.UnsharpMask(radius=0.8, percent=60, threshold=2)))
    step(_for_output(out, spec.kind))
    if out is im:
        step(im.copy())  # never hand the opened file (with its tags and info) to an encoder
    transparency = out.info.get("transparency") if out.mode == "P" else None
    out.info = {} if transparency is None else {"transparency": transparency}
    return out


def _save_params(kind: str, im: Image.Image) -> dict[str, object]:
    params = dict(_SAVE_PARAMS[kind])
    if "transparency" in im.info:
        params["transparency"] = im.info["transparency"]
    return params


# --- probe --------------------------------------------------------------------------------


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
            frames = int(getattr(im, "n_frames", 1))
            im.seek(0)
        except DECODE_ERRORS as exc:
            raise UnprocessableImage(f"corrupt {kind.name} image: cannot count its frames ({exc})") from exc
        load_first_frame(im, kind, at_least=(1, 1))
        return ImageInfo(kind, width, height, kind.content_type, frames)

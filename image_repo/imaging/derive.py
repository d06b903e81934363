"""derive(): original bytes + DerivationSpec -> derived image bytes. Pure: no I/O, no settings.

Pipeline: open (decode.py: only the decoders of ``formats.INPUT_KINDS``), check the
header size, decode the first frame at the smallest JPEG DCT scale that still covers the
target, resample (``reduce()`` then LANCZOS), turn by the EXIF orientation (on the small
image), convert to sRGB, sharpen thumbnails, fit the mode to the output kind, encode
(pixels.py). The embedded ICC profile is applied, not carried; everything else of the
original's metadata (EXIF, GPS, XMP, IPTC, comments, PNG text) is dropped, because the
output is drawn into a new image whose ``info`` is empty.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageFilter

from ..errors import PayloadTooLarge, UnprocessableImage
from . import intermediate as intermediates
from .decode import DECODE_ERRORS, load_first_frame, open_image, orientation
from .formats import KINDS
from .intermediate import Intermediate, Wish
from .pixels import colour, for_output, resamplable, save_params
from .spec import DerivationSpec

DEFAULT_THUMBNAIL_BOX = (50, 50)
"""Used only for a thumbnail spec with no box (parse_query normally fills the configured one)."""

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
        load_first_frame(im, kind, at_least=at_least, source=source)
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
                out.save(buf, KINDS[spec.kind].pil_format, **save_params(spec.kind, out))
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

    step(resamplable(out))
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
    step(colour(out, icc))
    if spec.thumbnail:
        step(out.filter(ImageFilter.UnsharpMask(radius=0.8, percent=60, threshold=2)))
    step(for_output(out, spec.kind))
    if out is im:
        step(im.copy())  # never hand the opened file (with its tags and info) to an encoder
    transparency = out.info.get("transparency") if out.mode == "P" else None
    out.info = {} if transparency is None else {"transparency": transparency}
    return out

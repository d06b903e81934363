"""Intermediates: a bounded-size copy of an original's decoded pixels, to derive later sizes from.

A 12 MP JPEG costs ~25 ms to decode even at 1/8 scale (perf.md section 3: the entropy
decode of every byte). The first derivation of an original has the decoded frame in hand
anyway (at the DCT scale its target needed); encoding that frame once more (~0.5 ms for
500x375) gives later requests for any size that fits inside it a source ~50x smaller.

What an intermediate holds: the first frame, in the mode the resampler works in (L, LA,
RGB, RGBA), in the *stored* orientation (the EXIF turn is applied after resampling, as for
an original), with the original's ICC profile embedded (colour is converted after
resampling too), and nothing else. What it needs to stand in for the original (the EXIF
turn, the original's displayed size, from which every target size is computed, and the
original's extent in its pixels when a reduce() left a partly covered edge) travels in the
object's metadata. JPEG q95 4:2:0 when the original is itself lossy; PNG (fast
compression) when it is lossless or has alpha, so a lossless original never picks up JPEG
artefacts on the way.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

MAX_SIDE = 2048
"""Longest side of an intermediate: big enough for most sizes asked of a web image, ~1-2 MB."""
MIN_GAIN = 4
"""Only keep an intermediate with at most 1/MIN_GAIN of the original's pixels: else decoding
the original costs about as much as decoding the intermediate."""
LOSSY_SOURCES = frozenset({"jpg", "webp", "heic", "avif"})
# 4:2:0 like the photos it stands in for: 0.6 ms to encode 500x375 against 0.9 for 4:4:4, and
# the same SSIM of what is derived from it, within 0.002 (bench; tests/imaging).
_JPEG = {"quality": 95, "subsampling": 2, "optimize": False, "progressive": False}
_PNG = {"compress_level": 1}


@dataclass(frozen=True)
class Wish:
    """What the caller of derive() wants kept: intermediates up to ``max_side``, bigger than ``have``."""

    max_side: int = MAX_SIDE
    have: tuple[int, int] | None = None
    """Size of the intermediate already stored (a new one is made only if larger)."""


@dataclass(frozen=True)
class Intermediate:
    """An encoded intermediate and what it stands for."""

    data: bytes
    width: int
    height: int
    turn: int
    shown: tuple[int, int]
    """The original's size as displayed (after the EXIF turn): what target sizes are computed from."""
    content_type: str
    span: tuple[float, float] | None = None
    """The original's whole extent in this image's pixels, when it is not ``(width, height)``:
    a reduce() by 7 of 4000x3000 is 572x429 pixels, the last ones only partly covered, and
    the original spans 571.43x428.57 of them."""

    @property
    def extent(self) -> tuple[float, float]:
        return self.span if self.span is not None else (float(self.width), float(self.height))

    def fits(self, stored_target: tuple[int, int]) -> bool:
        """Whether a target (in stored orientation) can be made from this without upscaling."""
        return stored_target[0] <= self.extent[0] and stored_target[1] <= self.extent[1]

    def metadata(self) -> dict[str, str]:
        meta = {"iw": str(self.width), "ih": str(self.height), "turn": str(self.turn),
                "sw": str(self.shown[0]), "sh": str(self.shown[1])}
        if self.span is not None:
            meta.update(ew=repr(self.span[0]), eh=repr(self.span[1]))
        return meta

    @classmethod
    def stored(cls, data: bytes, metadata: dict[str, str] | None, content_type: str | None) -> Intermediate | None:
        """The intermediate a cache entry holds, or None if its metadata is not ours."""
        try:
            meta = metadata or {}
            span = (float(meta["ew"]), float(meta["eh"])) if "ew" in meta else None
            return cls(data, int(meta["iw"]), int(meta["ih"]), int(meta["turn"]),
                       (int(meta["sw"]), int(meta["sh"])), content_type or "application/octet-stream", span)
        except (KeyError, ValueError, TypeError):
            return None


def make(
    frame: Image.Image,
    wish: Wish,
    *,
    target: tuple[int, int],
    source_kind: str,
    source_pixels: int,
    turn: int,
    shown: tuple[int, int],
    icc: bytes | None,
) -> tuple[Image.Image, Intermediate] | None:
    """The intermediate ``frame`` (decoded, resamplable mode, stored orientation) gives, or None.

    The frame as decoded when it is small enough (a JPEG decoded at a DCT scale: no pixel
    work at all); else ``reduce()``d by the factor ``resize(target, reducing_gap=2.0)`` would
    reduce it by anyway (a 12 MP PNG for 256 px: by 7, to 572x429), or by more to be at most
    ``max_side`` big. Returned with the reduced image, so the caller goes on from it rather
    than reducing the frame a second time. None when not worth keeping: not smaller than
    the original by MIN_GAIN, not larger than what is stored, or a mode we do not keep (CMYK).
    """
    if frame.mode not in ("L", "LA", "RGB", "RGBA"):
        return None
    width, height = frame.size
    factor = max(1, min(width // (2 * target[0]), height // (2 * target[1])), -(-max(width, height) // wish.max_side))
    size = (-(-width // factor), -(-height // factor))  # reduce() keeps the partly covered last pixels
    if size[0] * size[1] * MIN_GAIN > source_pixels:
        return None
    if wish.have is not None and size[0] <= wish.have[0] and size[1] <= wish.have[1]:
        return None
    # reduce(), not a BOX resize to a whole size: 3.5x cheaper on a 12 MP frame. The span
    # records the fraction, so what is made from it lines up with what the frame gives.
    small = frame.reduce(factor) if factor > 1 else frame
    span = None if factor == 1 or (width % factor == 0 and height % factor == 0) else (width / factor, height / factor)
    lossless = source_kind not in LOSSY_SOURCES or small.mode in ("LA", "RGBA")
    buf = io.BytesIO()
    params: dict[str, object] = dict(_PNG if lossless else _JPEG)
    if icc:
        params["icc_profile"] = icc
    try:
        small.save(buf, "PNG" if lossless else "JPEG", **params)
    except BaseException:
        if small is not frame:
            small.close()
        raise
    return small, Intermediate(buf.getvalue(), small.width, small.height, turn, shown,
                               "image/png" if lossless else "image/jpeg", span)

"""Intermediates: a bounded-size copy of an original's decoded pixels, to derive later sizes from.

A 12 MP JPEG costs ~25 ms to decode even at 1/8 scale (perf.md section 3: the entropy
decode of every byte). The first derivation of an original has the decoded frame in hand
anyway (at the DCT scale its target needed); encoding that frame once more (~0.5 ms for
500x375) gives later requests for any size that fits inside it a source ~50x smaller.

What an intermediate holds: the first frame, in the mode the resampler works in (L, LA,
RGB, RGBA), in the *stored* orientation (the EXIF turn is applied after resampling, as for
an original), with the original's ICC profile embedded (colour is converted after
resampling too), and nothing else. What it needs to stand in for the original (the EXIF
turn and the original's displayed size, from which every target size is computed) travels
in the object's metadata. JPEG q95 4:2:0 when the original is itself lossy; PNG (fast
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

    def fits(self, stored_target: tuple[int, int]) -> bool:
        """Whether a target (in stored orientation) can be made from this without upscaling."""
        return stored_target[0] <= self.width and stored_target[1] <= self.height

    def metadata(self) -> dict[str, str]:
        return {"iw": str(self.width), "ih": str(self.height), "turn": str(self.turn),
                "sw": str(self.shown[0]), "sh": str(self.shown[1])}

    @classmethod
    def stored(cls, data: bytes, metadata: dict[str, str] | None, content_type: str | None) -> Intermediate | None:
        """The intermediate a cache entry holds, or None if its metadata is not ours."""
        try:
            meta = metadata or {}
            return cls(data, int(meta["iw"]), int(meta["ih"]), int(meta["turn"]),
                       (int(meta["sw"]), int(meta["sh"])), content_type or "application/octet-stream")
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
) -> Intermediate | None:
    """The intermediate ``frame`` (decoded, resamplable mode, stored orientation) gives, or None.

    The frame as decoded when it is small enough (a JPEG decoded at a DCT scale: no pixel
    work at all); else box-reduced as far as ``resize(target, reducing_gap=2.0)`` reduces it
    anyway (a 12 MP PNG for 256 px: 571x429), and at most ``max_side`` big. A BOX resize, not
    ``reduce()``, so the intermediate spans exactly the original's extent and results made
    from it line up with results made from the original. None when not worth keeping: not smaller than the
    original by MIN_GAIN, not larger than what is stored, or a mode we do not keep (CMYK).
    """
    if frame.mode not in ("L", "LA", "RGB", "RGBA"):
        return None
    width, height = frame.size
    factor = max(1, min(width // (2 * target[0]), height // (2 * target[1])))
    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    if max(size) > wish.max_side:  # as large as max_side allows
        scale = wish.max_side / max(width, height)
        size = (max(1, min(wish.max_side, round(width * scale))), max(1, min(wish.max_side, round(height * scale))))
    if size[0] * size[1] * MIN_GAIN > source_pixels:
        return None
    if wish.have is not None and size[0] <= wish.have[0] and size[1] <= wish.have[1]:
        return None
    small = frame.resize(size, Image.Resampling.BOX) if size != frame.size else frame
    try:
        lossless = source_kind not in LOSSY_SOURCES or small.mode in ("LA", "RGBA")
        buf = io.BytesIO()
        params: dict[str, object] = dict(_PNG if lossless else _JPEG)
        if icc:
            params["icc_profile"] = icc
        small.save(buf, "PNG" if lossless else "JPEG", **params)
        return Intermediate(buf.getvalue(), small.width, small.height, turn, shown,
                            "image/png" if lossless else "image/jpeg")
    finally:
        if small is not frame:
            small.close()

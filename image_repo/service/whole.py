"""A TiledSource over an original that has no pyramid: every image is IIIF-servable.

Its levels are the original halved until it fits one tile; they are made, not stored: a
region of a level is cut from one decode of the original (a JPEG at the smallest DCT scale
that still has the level's detail), or of its intermediate when that has enough
(service/intermediates.py). The first decode of the original keeps an intermediate, as
derive() does, so the smaller levels of a viewer's first look come from it. EXIF orientation
is applied, so IIIF and /images agree on width and height; an ICC profile is converted to sRGB.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import UnprocessableImage
from ..imaging import heap
from ..imaging import intermediate as intermediates
from ..imaging.decode import DECODE_ERRORS, load_first_frame, open_image, orientation
from ..imaging.derive import ORIENTATION_TRANSPOSE, RESAMPLE_FILTERS
from ..imaging.intermediate import Intermediate, Wish
from ..imaging.pixels import colour, resamplable
from ..pyramids.source import Channel, Level, SourceInfo

Box = tuple[float, float, float, float]

GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


@dataclass(frozen=True)
class Described:
    """What an original is, read from its header: its displayed size, EXIF turn and stored size."""

    width: int
    height: int
    turn: int
    grey: bool
    alpha: bool

    @property
    def stored(self) -> tuple[int, int]:
        return (self.height, self.width) if self.turn >= 5 else (self.width, self.height)

    def to_json(self) -> bytes:
        return json.dumps({"width": self.width, "height": self.height, "turn": self.turn, "grey": self.grey,
                           "alpha": self.alpha}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Described | None:
        try:
            raw = json.loads(data)
            return cls(int(raw["width"]), int(raw["height"]), int(raw["turn"]), bool(raw["grey"]), bool(raw["alpha"]))
        except (ValueError, KeyError, TypeError):
            return None


def describe(source: bytes, *, max_pixels: int) -> Described:
    """The original's header (no decode): 415/413/422 as for any derivation."""
    with open_image(source, max_pixels=max_pixels) as (im, _kind):
        turn = orientation(im)
        width, height = (im.height, im.width) if turn >= 5 else im.size
        alpha = "A" in im.mode or "transparency" in im.info
        return Described(width, height, turn, im.mode in GREY_MODES, alpha)


def whole_info(described: Described, tile: int) -> SourceInfo:
    """The levels a whole-image source serves: halved from full size until one tile holds the image."""
    levels = []
    scale = 1
    while True:
        width, height = math.ceil(described.width / scale), math.ceil(described.height / scale)
        levels.append(Level(width, height, float(scale)))
        if width <= tile and height <= tile:
            break
        scale *= 2
    bands = ("grey",) if described.grey else ("red", "green", "blue")
    if described.alpha:
        bands = (*bands, "alpha")
    return SourceInfo(
        width=described.width, height=described.height, tile_width=tile, tile_height=tile, levels=tuple(levels),
        photometric="grey" if described.grey else "rgb", channels=tuple(Channel(b, "uint8") for b in bands),
        stored="none",
    )


def shown_to_stored(box: Box, turn: int, stored: tuple[float, float]) -> Box:
    """A box of the displayed image as the same pixels' box in the stored orientation (EXIF ``turn``)."""
    x0, y0, x1, y1 = box
    ws, hs = stored
    return {
        1: (x0, y0, x1, y1),
        2: (ws - x1, y0, ws - x0, y1),
        3: (ws - x1, hs - y1, ws - x0, hs - y0),
        4: (x0, hs - y1, x1, hs - y0),
        5: (y0, x0, y1, x1),
        6: (y0, hs - x1, y1, hs - x0),
        7: (ws - y1, hs - x1, ws - y0, hs - x0),
        8: (ws - y1, x0, ws - y0, x1),
    }[turn]


class WholeImageSource:
    """The TiledSource of an original without a pyramid (``info`` from ``whole_info``)."""

    def __init__(
        self,
        info: SourceInfo,
        described: Described,
        *,
        read_original: Callable[[], bytes],
        intermediate: Callable[[], Intermediate | None],
        keep: Callable[[Intermediate], None] | None = None,
        max_pixels: int,
        resample: str = "lanczos",
    ) -> None:
        self.info = info
        self.described = described
        self._read_original = read_original
        self._intermediate = intermediate
        self._keep = keep
        self._max_pixels = max_pixels
        self._resample = RESAMPLE_FILTERS[resample]
        self.decoded: list[tuple[int, int]] = []
        """The size of each frame this source decoded (a JPEG's at its DCT scale): what region() cost."""

    def stored_tile(self, level: int, column: int, row: int) -> bytes | None:
        return None  # nothing is stored as tiles

    def region(self, level: int, x: int, y: int, width: int, height: int,
               channels: tuple[int, ...] | None = None) -> np.ndarray:
        """The box of ``level`` from one decode of the intermediate or the original."""
        scale = self.info.levels[level].scale
        d = self.described
        # The box in full-resolution displayed pixels.
        shown = (x * scale, y * scale, min((x + width) * scale, d.width), min((y + height) * scale, d.height))
        level_size = (self.info.levels[level].width, self.info.levels[level].height)
        have = self._intermediate()
        if have is not None and _covers(have, level_size):
            im = self._cut(have.data, None, have.extent, shown, (width, height), level_size, have=have)
        else:
            im = self._cut(self._read_original(), self._max_pixels, d.stored, shown, (width, height), level_size, have=have,
                           original=True)
        pixels = np.asarray(im)
        return pixels if channels is None or pixels.ndim == 2 else pixels[:, :, list(channels)]

    def _cut(self, data: bytes, max_pixels: int | None, extent: tuple[float, float], shown: Box,
             size: tuple[int, int], level_size: tuple[int, int], *, have: Intermediate | None,
             original: bool = False) -> Image.Image:
        """``shown`` (displayed full-resolution box) of ``data`` at ``size``; ``extent``: the original's
        extent in ``data``'s stored pixels (its stored size for the original itself)."""
        d = self.described
        turn = d.turn
        swapped = turn >= 5
        need = (level_size[1], level_size[0]) if swapped else level_size
        with open_image(data, max_pixels=max_pixels) as (im, kind):
            stored_w, stored_h = im.size
            load_first_frame(im, kind, at_least=need)
            self.decoded.append(im.size)
            decoded_pixels = im.width * im.height
            try:
                icc = im.info.get("icc_profile")
                frame = resamplable(im)
                if original and self._keep is not None:
                    self._keep_intermediate(frame, have, kind.name, icc if isinstance(icc, bytes) else None)
                # Full-resolution stored box -> the decoded frame's pixels (a DCT-scaled decode is smaller).
                sx0, sy0, sx1, sy1 = shown_to_stored(shown, turn, d.stored)
                fx, fy = extent[0] * frame.width / stored_w / d.stored[0], extent[1] * frame.height / stored_h / d.stored[1]
                box = (sx0 * fx, sy0 * fy, sx1 * fx, sy1 * fy)
                target = (size[1], size[0]) if swapped else size
                cut = frame.resize(target, self._resample, box=box, reducing_gap=2.0)
                if turn in ORIENTATION_TRANSPOSE:
                    cut = cut.transpose(ORIENTATION_TRANSPOSE[turn])
                out = colour(cut, icc if isinstance(icc, bytes) else None)
                return out if out.mode in ("L", "LA", "RGB", "RGBA") else out.convert("RGB")
            except DECODE_ERRORS as exc:
                raise UnprocessableImage(f"cannot cut a region of this {kind.name} image: {exc}") from exc
            finally:
                heap.release_after_decode(decoded_pixels)

    def _keep_intermediate(self, frame: Image.Image, have: Intermediate | None, source_kind: str,
                           icc: bytes | None) -> None:
        """Keep (best effort) an intermediate of this decode when it beats the stored one."""
        assert self._keep is not None
        d = self.described
        wish = Wish(intermediates.MAX_SIDE, None if have is None else (have.width, have.height))
        made = intermediates.make(frame, wish, target=frame.size, source_kind=source_kind,
                                  source_pixels=d.width * d.height, turn=d.turn, shown=(d.width, d.height), icc=icc)
        if made is not None:
            small, kept = made
            if small is not frame:
                small.close()
            self._keep(kept)


def _covers(have: Intermediate, level_size: tuple[int, int]) -> bool:
    """Whether the intermediate has the detail of a level of ``level_size`` (displayed pixels)."""
    extent_w, extent_h = have.extent
    shown_w, shown_h = (extent_h, extent_w) if have.turn >= 5 else (extent_w, extent_h)
    return shown_w >= level_size[0] - 0.5 and shown_h >= level_size[1] - 0.5

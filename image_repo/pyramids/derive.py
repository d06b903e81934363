"""The 2016 parameters (xsize, ysize, thumbnail, kind) from a TiledSource, never from the original.

The smallest level at least as big as the target is read (only its tiles), shown as 8 bits
(16-bit through the window measured at build time; N channels composited by the request's
rendering, or the default one made at build time), and handed to derive() as a stand-in for the
original: sizes, sharpening and output formats are exactly those of every other image.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..errors import PayloadTooLarge
from ..imaging.derive import Derived, derive, fit_size, spec_box
from ..imaging.intermediate import Intermediate
from ..imaging.rendering import composite, default_rendering
from ..imaging.spec import DerivationSpec
from .source import SourceInfo, TiledSource


def pick_level(info: SourceInfo, target: tuple[int, int]) -> int:
    """The smallest level with both sides at least ``target``'s (the base when none is smaller)."""
    for i in range(len(info.levels) - 1, -1, -1):
        lv = info.levels[i]
        if lv.width >= target[0] and lv.height >= target[1]:
            return i
    return 0


def needs_base(info: SourceInfo, spec: DerivationSpec) -> bool:
    """Whether ``spec`` would be made from the pyramid's full-resolution level: its tiles are a lossy
    copy of the original, so an original that can be decoded whole serves such a size better itself."""
    return pick_level(info, fit_size((info.width, info.height), spec_box(spec))) == 0


def as_8bit(arr: np.ndarray, info: SourceInfo, channels: tuple[int, ...]) -> np.ndarray:
    """Pixels for display: 8-bit as they are; 16-bit through the image's window (or each channel's own)."""
    if arr.dtype == np.uint8:
        return arr
    if info.window is not None and info.photometric != "channels":
        lo, hi = info.window
        windows = [(lo, hi)] * arr.shape[2]
    else:
        windows = []
        for c in channels:
            stats = info.channels[c].stats
            lo, hi = stats.get("p0.1", 0.0), stats.get("p99.9", 65535.0)
            windows.append((lo, hi if hi > lo else lo + 1))
    out = np.empty(arr.shape, np.uint8)
    for b, (lo, hi) in enumerate(windows):
        scaled = (arr[..., b].astype(np.float32) - lo) * (255.0 / (hi - lo))
        out[..., b] = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    return out


def derive_from_source(source: TiledSource, spec: DerivationSpec, *, max_pixels: int, max_output_pixels: int,
                       resample: str = "lanczos") -> Derived:
    """What derive() would make of the original, made from the pyramid's smallest level big enough."""
    info = source.info
    shown = (info.width, info.height)
    target = fit_size(shown, spec_box(spec))
    if target[0] * target[1] > max_output_pixels:
        raise PayloadTooLarge(f"the result would be {target[0]}x{target[1]}; the limit is "
                              f"{max_output_pixels / 1e6:.1f} megapixels (ask for a smaller xsize/ysize)")
    level = pick_level(info, target)
    lv = info.levels[level]
    if lv.width * lv.height > max_pixels:
        raise PayloadTooLarge(f"{target[0]}x{target[1]} would be made from {lv.width}x{lv.height} pixels; "
                              f"the limit is {max_pixels / 1e6:.1f} megapixels (ask for a smaller xsize/ysize)")
    if info.photometric == "channels":  # composited as the rendering asks (the default one unless named)
        rendering = spec.rendering or info.rendering or default_rendering(info.channels)
        rendering.check(len(info.channels))
        arr = composite(source.region(level, 0, 0, lv.width, lv.height, channels=rendering.indices), rendering)
    else:
        channels = tuple(range(len(info.channels)))
        arr = as_8bit(source.region(level, 0, 0, lv.width, lv.height, channels=channels), info, channels)
    frame = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr, "L" if arr.shape[2] == 1 else "RGB")
    buf = io.BytesIO()
    frame.save(buf, "TIFF")  # uncompressed: a copy of the pixels, no codec work either way
    stand_in = Intermediate(buf.getvalue(), lv.width, lv.height, 1, shown, "image/tiff")
    return derive(stand_in.data, spec, stand_in=stand_in, max_pixels=max_pixels,
                  max_output_pixels=max_output_pixels, resample=resample)

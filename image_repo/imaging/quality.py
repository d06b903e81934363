"""How close a derivative made from an intermediate is to the one made from the original.

For the benchmark and the tests: ``intermediate_ssim(original, first, second)`` derives
``first`` from the original (which leaves an intermediate, as the server's first request
does), then ``second`` both from that intermediate and from the original, and returns the
SSIM of the two results (1.0: identical). Needs numpy (a test/bench dependency, not the
server's).
"""
from __future__ import annotations

import io
from typing import Any

from PIL import Image

from .derive import derive
from .intermediate import MAX_SIDE, Wish
from .spec import DerivationSpec

_MAX_PIXELS, _MAX_OUTPUT_PIXELS = 200_000_000, 100_000_000


def ssim(a: bytes, b: bytes) -> float:
    """Mean SSIM of two encoded images' luma (Gaussian window 11, sigma 1.5; Wang et al. 2004)."""
    import numpy as np

    def luma(data: bytes) -> Any:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("L"), dtype=np.float64)

    x, y = luma(a), luma(b)
    if x.shape != y.shape:
        raise ValueError(f"sizes differ: {x.shape} vs {y.shape}")
    taps = np.exp(-0.5 * (np.arange(11) - 5) ** 2 / 1.5**2)
    taps /= taps.sum()

    def blur(img: Any) -> Any:
        if min(img.shape) < 11:
            return np.full_like(img, img.mean())
        rows = np.lib.stride_tricks.sliding_window_view(img, 11, axis=1) @ taps
        return np.lib.stride_tricks.sliding_window_view(rows, 11, axis=0) @ taps

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    index = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(index.mean())


def intermediate_ssim(original: bytes, first: DerivationSpec, second: DerivationSpec,
                      max_side: int = MAX_SIDE) -> tuple[float, tuple[int, int] | None]:
    """(SSIM of ``second`` made via the intermediate ``first`` leaves vs made from the original, its size).

    The size is None, and the SSIM 1.0, when ``first`` leaves no intermediate that ``second`` fits in.
    """
    limits: dict[str, Any] = {"max_pixels": _MAX_PIXELS, "max_output_pixels": _MAX_OUTPUT_PIXELS}
    made = derive(original, first, keep=Wish(max_side), **limits).intermediate
    direct = derive(original, second, **limits)
    if made is None or not made.fits((direct.width, direct.height) if made.turn < 5 else (direct.height, direct.width)):
        return 1.0, None
    via = derive(made.data, second, stand_in=made, **limits)
    return ssim(via.data, direct.data), (made.width, made.height)

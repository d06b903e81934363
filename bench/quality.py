"""SSIM of each server's thumbnail against a reference made the slow, exact way.

The reference is the full decode of the same base image (no DCT scaling) resized with
Pillow's LANCZOS straight to the output's size: what a thumbnail would be with no
shortcut. Both servers' outputs are compared with it, so a cheaper path that loses
quality (a coarser DCT scale, another filter) shows as a lower SSIM than its peer's.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

import load
from report import Row
from servers import Running

WINDOW = 7


def _box_mean(a: np.ndarray, n: int = WINDOW) -> np.ndarray:
    """Mean over every n x n window (valid positions only), from summed-area tables."""
    s = np.pad(a, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return (s[n:, n:] - s[:-n, n:] - s[n:, :-n] + s[:-n, :-n]) / (n * n)


def ssim(a: Image.Image, b: Image.Image) -> float:
    """Mean SSIM of the luma of two same-sized images (Wang et al. 2004, uniform 7x7 windows)."""
    x = np.asarray(a.convert("L"), dtype=np.float64)
    y = np.asarray(b.convert("L"), dtype=np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _box_mean(x), _box_mean(y)
    vx, vy = _box_mean(x * x) - mx * mx, _box_mean(y * y) - my * my
    cov = _box_mean(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(value.mean())


def compare(base: bytes, answers: dict[str, tuple[Running, list[str]]]) -> dict[str, list[float]]:
    """SSIM of each server's answers (server label -> (server, paths of the same base's thumbnails))."""
    with Image.open(io.BytesIO(base)) as im:
        full = im.convert("RGB")
    refs: dict[tuple[int, int], Image.Image] = {}
    out: dict[str, list[float]] = {}
    for label, (srv, paths) in answers.items():
        for path in paths:
            got = load.fetch(srv.port, path)
            if got.status != 200:
                raise RuntimeError(f"{label} answered {got.status} to {path}")
            with Image.open(io.BytesIO(got.body)) as thumb:
                thumb.load()
                ref = refs.setdefault(thumb.size, full.resize(thumb.size, Image.Resampling.LANCZOS))
                out.setdefault(label, []).append(ssim(thumb, ref))
    return out


def row(scores: dict[str, list[float]], box: int) -> Row:
    text = "; ".join(f"{label} {min(v):.4f}-{max(v):.4f}" for label, v in scores.items())
    return Row(scenario=f"SSIM of 12 MP -> {box} px vs full decode + LANCZOS", tool="in-process",
               requests=sum(len(v) for v in scores.values()), note=text)

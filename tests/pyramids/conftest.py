"""Generated originals for pyramid tests: pixels from a formula, so any box of them is known
without decoding the original (libvips makes and writes them streamed, whatever their size)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from image_repo.config.settings import Settings
from image_repo.storage.base import ObjectStore
from image_repo.storage.filesystem import FileStore


def vips_pattern(width: int, height: int, kind: str = "rgb") -> Any:
    """A libvips image (lazy: computed as it is written) whose pixels ``pattern_pixels`` gives."""
    import pyvips

    xy = pyvips.Image.xyz(width, height)
    x, y = xy[0], xy[1]
    if kind == "rgb":
        r = (x * 255 / width).cast("uchar")
        g = (y * 255 / height).cast("uchar")
        b = (((x + y) % 1024) / 4).cast("uchar")
        return r.bandjoin([g, b]).copy(interpretation="srgb")
    if kind == "grey16":
        return ((x * 7 + y * 3) % 60000 + 1000).cast("ushort").copy(interpretation="grey16")
    if kind == "channels":  # 5 bands of 16 bits, each its own pattern
        bands = [((x * (c + 1) + y * (5 - c)) % 50000 + 100 * c).cast("ushort") for c in range(5)]
        return bands[0].bandjoin(bands[1:]).copy(interpretation="multiband")
    raise ValueError(kind)


def pattern_pixels(x0: int, y0: int, w: int, h: int, width: int, height: int, kind: str = "rgb",
                   step: int = 1) -> np.ndarray:
    """The pixels of the box of ``vips_pattern(width, height, kind)``, height x width x bands (every ``step``-th)."""
    y, x = np.mgrid[y0:y0 + h:step, x0:x0 + w:step].astype(np.float64)
    if kind == "rgb":
        r = np.floor(x * 255 / width)
        g = np.floor(y * 255 / height)
        b = np.floor(((x + y) % 1024) / 4)
        return np.stack([r, g, b], axis=2).astype(np.uint8)
    if kind == "grey16":
        return ((x * 7 + y * 3) % 60000 + 1000).astype(np.uint16)[..., None]
    if kind == "channels":
        return np.stack([((x * (c + 1) + y * (5 - c)) % 50000 + 100 * c) for c in range(5)], axis=2).astype(np.uint16)
    raise ValueError(kind)


def write_pattern(path: Path, width: int, height: int, kind: str = "rgb", **save: Any) -> Path:
    """The pattern written to ``path`` (format from its extension), streamed by libvips."""
    im = vips_pattern(width, height, kind)
    if path.suffix == ".jpg":
        im.jpegsave(str(path), Q=save.pop("Q", 95), **save)
    else:
        im.write_to_file(str(path), **save)
    return path


@pytest.fixture
def pyramid_settings(tmp_path: Path) -> Settings:
    """Settings for a repository under tmp_path, builds in the foreground (the tests call them)."""
    return Settings(data_dir=str(tmp_path / "data"), pyramid_builders=0)


@pytest.fixture
def file_stores(tmp_path: Path) -> tuple[ObjectStore, ObjectStore]:
    return FileStore(str(tmp_path / "originals"), fsync=False), FileStore(str(tmp_path / "cache"), fsync=False)

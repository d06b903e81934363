"""An ordinary original longer than pyramid_min_side: its 2016 derivatives made from the pyramid
match those made from the whole image (the path they took before it had a pyramid)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from image_repo.config.settings import Settings
from image_repo.web.app import create_app

W, H = 5000, 3000  # within max_pixels, beyond pyramid_min_side (4096): a camera's photo, scaled down


@pytest.fixture(scope="module")
def apps(tmp_path_factory, photo):
    """The same upload in two repositories: one without pyramids (the whole-image path), one with its pyramid."""
    root = tmp_path_factory.mktemp("match")
    whole = create_app(Settings(data_dir=str(root / "whole"), pyramid_min_side=0, pyramid_builders=0))
    tiled = create_app(Settings(data_dir=str(root / "tiled"), pyramid_builders=0))
    for app in (whole, tiled):
        assert app.test_client().put("/images/photo", data=photo).status_code == 201
    svc = tiled.extensions["image_repo"]
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    yield whole, tiled
    for app in (whole, tiled):
        app.extensions["image_repo"].cache.close()


@pytest.fixture(scope="module")
def photo() -> bytes:
    """A photo-like JPEG: smooth structure and grain, so resampling differences show as they would."""
    import pyvips

    xy = pyvips.Image.xyz(W, H)
    x, y = xy[0], xy[1]
    bands = [((x / (37 + 11 * i)).sin() * 55 + (y / (53 + 7 * i)).cos() * 55 + 128
              + pyvips.Image.gaussnoise(W, H, sigma=8, mean=0)) for i in range(3)]
    im = bands[0].bandjoin(bands[1:]).cast("uchar").copy(interpretation="srgb")
    return bytes(im.jpegsave_buffer(Q=90))


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB")).astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a - b) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.parametrize("query, from_pyramid", [
    ("thumbnail=true", 1), ("xsize=800", 1), ("xsize=1500&kind=PNG", 1), ("xsize=2400", 1),
    ("ysize=2500", 0),  # only the base level is big enough: the original serves it (the tiles are a JPEG copy)
])
def test_derivatives_from_the_pyramid_match_the_whole_image(apps, query, from_pyramid):
    whole, tiled = apps
    svc = tiled.extensions["image_repo"]
    before = svc.counters()["from_pyramid"]
    a = whole.test_client().get(f"/images/photo?{query}")
    b = tiled.test_client().get(f"/images/photo?{query}")
    assert a.status_code == b.status_code == 200 and a.headers["Content-Type"] == b.headers["Content-Type"]
    assert svc.counters()["from_pyramid"] - before == from_pyramid and whole.extensions["image_repo"].counters()["from_pyramid"] == 0
    pa, pb = pixels(a.data), pixels(b.data)
    assert pa.shape == pb.shape
    if not from_pyramid:
        assert a.data == b.data
    # The pyramid's tiles are JPEG q85 of a reduced image: close, not identical.
    assert np.abs(pa - pb).mean() < 2.5 and psnr(pa, pb) > 35, (np.abs(pa - pb).mean(), psnr(pa, pb))

"""Intermediates: later sizes that fit inside one are made from it, not from the original."""
from __future__ import annotations

from dataclasses import replace

import pytest
from PIL import ImageChops, ImageStat

from image_repo.config.settings import Settings
from image_repo.imaging.derive import derive
from image_repo.imaging.intermediate import Intermediate, Wish
from image_repo.imaging.quality import intermediate_ssim
from image_repo.imaging.spec import DerivationSpec
from image_repo.service.intermediates import Intermediates
from image_repo.storage.memory import MemoryStore
from image_repo.web.app import create_app
from tests.fixtures.images import assert_scene, make_jpeg, make_png, open_bytes, scene

LIMITS = {"max_pixels": 100_000_000, "max_output_pixels": 50_000_000}


class CountingStore(MemoryStore):
    """A memory store that counts reads of object bytes (how often an original is fetched)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_with_info(self, key):  # type: ignore[override]
        self.reads += 1
        return super().get_with_info(key)

    def get(self, key):  # type: ignore[override]
        self.reads += 1
        return super().get(key)


@pytest.fixture
def setup(tmp_path):
    settings = Settings()
    settings.data_dir = str(tmp_path)
    store = CountingStore()
    app = create_app(settings, store=store, cache_store=MemoryStore())
    return app.test_client(), store, app.extensions["image_repo"]


def test_a_smaller_size_is_made_from_the_intermediate_not_the_original(setup):
    client, store, svc = setup
    client.put("/images/p", data=make_jpeg(2400, 1800))
    assert client.get("/images/p?xsize=256&ysize=256").status_code == 200
    assert svc.counters()["intermediates_kept"] == 1
    reads = store.reads
    r = client.get("/images/p?xsize=128&ysize=128")
    assert r.status_code == 200 and r.headers["X-Image-Repo-Cache"] == "miss"
    assert store.reads == reads, "the original was read again"
    assert svc.counters()["from_intermediate"] == 1 and svc.counters()["derivations"] == 2
    im = open_bytes(r.data)
    assert im.size == (128, 96)
    assert_scene(im)


def test_a_larger_size_reads_the_original_and_keeps_a_larger_intermediate(setup):
    client, store, svc = setup
    client.put("/images/p", data=make_jpeg(2400, 1800))
    client.get("/images/p?xsize=100")  # decoded at 1/8: a 300x225 intermediate
    reads = store.reads
    assert open_bytes(client.get("/images/p?xsize=500").data).width == 500  # does not fit: the original
    assert store.reads == reads + 1 and svc.counters()["from_intermediate"] == 0
    assert svc.counters()["intermediates_kept"] == 2  # 600x450 now
    client.get("/images/p?xsize=400")
    assert store.reads == reads + 1 and svc.counters()["from_intermediate"] == 1


def test_a_replaced_original_never_uses_the_old_intermediate(setup):
    client, _, svc = setup
    client.put("/images/p", data=make_jpeg(2400, 1800))
    client.get("/images/p?xsize=256")
    client.put("/images/p", data=make_png(1600, 1600))
    im = open_bytes(client.get("/images/p?xsize=128").data)
    assert im.size == (128, 128) and svc.counters()["from_intermediate"] == 0


def test_intermediate_key_is_dropped_with_the_derivatives(setup):
    client, _, svc = setup
    client.put("/images/p", data=make_jpeg(2400, 1800))
    client.get("/images/p?xsize=256")
    original = svc.get_original("p")
    assert svc.intermediates.get(original) is not None
    assert Intermediates.key(original).startswith("p/.d/" + original.version + ".")
    assert client.delete("/images/p").status_code == 204
    assert svc.intermediates.get(original) is None


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_sizes_from_an_intermediate_match_sizes_from_the_original(orientation):
    original = make_jpeg(2001, 1333, exif_orientation=orientation)
    made = derive(original, DerivationSpec("jpg", 300, 300), keep=Wish(), **LIMITS).intermediate
    assert made is not None and made.turn == orientation
    for box in [(97, 97), (120, None), (None, 77), (250, 250)]:
        spec = DerivationSpec("png", *box)
        direct = derive(original, spec, **LIMITS)
        via = derive(made.data, spec, stand_in=made, **LIMITS)
        assert (via.width, via.height) == (direct.width, direct.height)
        assert_scene(open_bytes(via.data))


def test_no_intermediate_of_a_small_original_or_a_bigger_one_than_stored():
    small = make_jpeg(400, 300)
    assert derive(small, DerivationSpec("jpg", 256, 256), keep=Wish(), **LIMITS).intermediate is None
    big = make_jpeg(2400, 1800)
    made = derive(big, DerivationSpec("jpg", 256, 256), keep=Wish(), **LIMITS).intermediate
    assert made is not None and (made.width, made.height) == (300, 225)
    assert derive(big, DerivationSpec("jpg", 200, 200), keep=Wish(have=(300, 225)), **LIMITS).intermediate is None


def test_lossless_and_transparent_originals_keep_lossless_intermediates():
    for original in (make_png(2400, 1800), make_png(2400, 1800, mode="RGBA")):
        made = derive(original, DerivationSpec("png", 256, 256), keep=Wish(), **LIMITS).intermediate
        assert made is not None and made.content_type == "image/png"
        assert max(made.width, made.height) <= 2048


def test_the_intermediate_is_bounded_by_max_side():
    made = derive(make_png(3000, 1000), DerivationSpec("png", 2900, 2900), keep=Wish(1024), **LIMITS).intermediate
    assert made is not None and (made.width, made.height) == (1000, 334)  # reduced by 3: 1000 x 333.3
    assert made.span == (1000.0, 1000 / 3) and made.fits((1000, 333)) and not made.fits((1000, 334))


def _mean_difference(a: bytes, b: bytes) -> float:
    first, second = open_bytes(a).convert("RGB"), open_bytes(b).convert("RGB")
    assert first.size == second.size
    return sum(ImageStat.Stat(ImageChops.difference(first, second)).mean) / 3


def test_a_reduced_intermediate_records_the_partly_covered_edge_and_results_line_up():
    original = make_png(2003, 1501)  # reduced by 7 for 128 px: 286.1 x 214.4 of 287 x 215 pixels
    made = derive(original, DerivationSpec("png", 128, 128), keep=Wish(), **LIMITS).intermediate
    assert made is not None and (made.width, made.height) == (287, 215)
    assert made.span == pytest.approx((2003 / 7, 1501 / 7))
    stored = Intermediate.stored(made.data, made.metadata(), made.content_type)
    assert stored is not None and stored.span == made.span
    spec = DerivationSpec("png", 120, 120)
    direct = derive(original, spec, **LIMITS).data
    lined_up = _mean_difference(direct, derive(made.data, spec, stand_in=stored, **LIMITS).data)
    stretched = _mean_difference(direct, derive(made.data, spec, stand_in=replace(stored, span=None), **LIMITS).data)
    assert lined_up < 1.0 and lined_up < stretched / 2, (lined_up, stretched)


def test_results_from_the_intermediate_look_like_results_from_the_original():
    buf = __import__("io").BytesIO()
    scene(2400, 1800).save(buf, "JPEG", quality=90)
    value, size = intermediate_ssim(buf.getvalue(), DerivationSpec("jpg", 256, 256), DerivationSpec("jpg", 128, 128))
    assert size == (300, 225) and value > 0.97

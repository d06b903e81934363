"""Parsing and resolving IIIF requests: every bad part is a 400 naming it; equal meanings share a key."""
from __future__ import annotations

import pytest

from image_repo.errors import InvalidRequest
from image_repo.iiif import check_quality, parse_request
from image_repo.iiif.params import parse_region, parse_rotation, parse_size

MAX = 50_000_000


def resolve(path: str, version: int = 3, size: tuple[int, int] = (1000, 800), max_area: int = MAX):
    region, sz, rotation, qf = path.split("/")
    return parse_request(version, region, sz, rotation, qf).resolve(*size, max_area=max_area)


@pytest.mark.parametrize("path, part", [
    ("fulll/max/0/default.jpg", "region"),
    ("0,0,10/max/0/default.jpg", "region"),
    ("-1,0,10,10/max/0/default.jpg", "region"),
    ("0,0,10,10,10/max/0/default.jpg", "region"),
    ("pct:0,0,101,10/max/0/default.jpg", "region"),
    ("pct:a,0,1,1/max/0/default.jpg", "region"),
    ("full/maxx/0/default.jpg", "size"),
    ("full/full/0/default.jpg", "size"),
    ("full/,/0/default.jpg", "size"),
    ("full/0,/0/default.jpg", "size"),
    ("full/!10,/0/default.jpg", "size"),
    ("full/pct:0/0/default.jpg", "size"),
    ("full/pct:101/0/default.jpg", "size"),
    ("full/^^max/0/default.jpg", "size"),
    ("full/max/-90/default.jpg", "rotation"),
    ("full/max/361/default.jpg", "rotation"),
    ("full/max/!!0/default.jpg", "rotation"),
    ("full/max/ninety/default.jpg", "rotation"),
    ("full/max/0/default", "format"),
    ("full/max/0/default.bmp", "format"),
    ("full/max/0/default.jp2", "format"),
    ("full/max/0/Default.jpg", "quality"),
    ("full/max/0/.jpg", "quality"),
])
def test_syntax_errors_name_the_part(path, part):
    region, size, rotation, qf = path.split("/")
    with pytest.raises(InvalidRequest) as e:
        parse_request(3, region, size, rotation, qf)
    assert e.value.status == 400
    assert e.value.message.startswith(part + ":"), e.value.message


@pytest.mark.parametrize("path, part", [
    ("1000,0,10,10/max/0/default.jpg", "region"),  # outside a 1000x800 image
    ("0,800,10,10/max/0/default.jpg", "region"),
    ("0,0,0,10/max/0/default.jpg", "region"),
    ("pct:0,0,0,10/max/0/default.jpg", "region"),
    ("full/1001,/0/default.jpg", "size"),  # above the region without ^
    ("full/,801/0/default.jpg", "size"),
    ("full/1000,801/0/default.jpg", "size"),
    ("full/!2000,3000/0/default.jpg", "size"),  # would upscale (the validator's size_noup)
    ("0,0,10,10/11,11/0/default.jpg", "size"),
    ("full/^100000,/0/default.jpg", "size"),  # over maxArea even with ^
])
def test_resolution_errors_name_the_part(path, part):
    with pytest.raises(InvalidRequest) as e:
        resolve(path)
    assert e.value.message.startswith(part + ":"), e.value.message


def test_unknown_quality_is_a_400_listing_the_known_ones():
    check_quality("gray")
    check_quality("dna-cd45", ("dna-cd45",))
    with pytest.raises(InvalidRequest, match="^quality: 'sepia' is not one of default, color, gray, bitonal"):
        check_quality("sepia")


@pytest.mark.parametrize("path, region, out", [
    ("full/max/0/default.jpg", (0, 0, 1000, 800), (1000, 800)),
    ("square/max/0/default.jpg", (100, 0, 800, 800), (800, 800)),
    ("900,700,500,500/max/0/default.jpg", (900, 700, 100, 100), (100, 100)),  # cropped at the edges
    ("pct:10,10,50,50/max/0/default.jpg", (100, 80, 500, 400), (500, 400)),
    ("full/500,/0/default.jpg", (0, 0, 1000, 800), (500, 400)),
    ("full/,400/0/default.jpg", (0, 0, 1000, 800), (500, 400)),
    ("full/pct:25/0/default.jpg", (0, 0, 1000, 800), (250, 200)),
    ("full/300,300/0/default.jpg", (0, 0, 1000, 800), (300, 300)),
    ("full/!500,500/0/default.jpg", (0, 0, 1000, 800), (500, 400)),
    ("full/!2000,500/0/default.jpg", (0, 0, 1000, 800), (625, 500)),
    ("full/^2000,/0/default.jpg", (0, 0, 1000, 800), (2000, 1600)),
    ("full/^pct:150/0/default.jpg", (0, 0, 1000, 800), (1500, 1200)),
    ("full/^!2000,3000/0/default.jpg", (0, 0, 1000, 800), (2000, 1600)),
    ("0,0,512,512/512,512/0/default.jpg", (0, 0, 512, 512), (512, 512)),
])
def test_resolve(path, region, out):
    r = resolve(path)
    assert r.region == region and (r.width, r.height) == out


def test_max_fits_max_area_and_up_max_fills_it():
    r = resolve("full/max/0/default.jpg", max_area=100_000)
    assert r.width * r.height <= 100_000 and abs(r.width / r.height - 1.25) < 0.01
    up = resolve("0,0,10,8/^max/0/default.jpg", max_area=100_000)
    assert up.width * up.height <= 100_000 and up.width > 300


def test_version_2_has_full_and_may_grow_without_caret():
    assert (resolve("full/full/0/default.jpg", version=2).width) == 1000
    assert resolve("full/2000,/0/default.jpg", version=2).width == 2000
    with pytest.raises(InvalidRequest, match="^size:"):
        resolve("full/^2000,/0/default.jpg", version=2)


def test_requests_that_mean_the_same_image_share_a_key():
    same = [resolve("full/max/0/default.jpg"), resolve("0,0,1000,800/1000,800/0/default.jpg"),
            resolve("pct:0,0,100,100/1000,/360/default.jpg"), resolve("full/full/0/default.jpg", version=2),
            resolve("0,0,5000,5000/,800/0/default.jpg")]
    assert len({r.key() for r in same}) == 1
    different = [resolve("full/max/90/default.jpg"), resolve("full/max/!0/default.jpg"),
                 resolve("full/max/0/gray.jpg"), resolve("full/max/0/default.png"), resolve("full/999,/0/default.jpg")]
    assert len({r.key() for r in different + same[:1]}) == len(different) + 1


def test_canonical_forms():
    assert resolve("pct:0,0,100,100/1000,/0/default.jpg").canonical(3, MAX) == "full/max/0/default.jpg"
    assert resolve("0,0,10,10/5,5/!90/gray.png").canonical(3, MAX) == "0,0,10,10/5,5/!90/gray.png"
    assert resolve("0,0,10,10/^20,20/22.50/default.jpg").canonical(3, MAX) == "0,0,10,10/^20,20/22.5/default.jpg"
    assert resolve("full/500,/0/default.jpg", version=2).canonical(2, MAX) == "full/500,/0/default.jpg"
    assert resolve("full/500,300/0/default.jpg", version=2).canonical(2, MAX) == "full/500,300/0/default.jpg"
    assert resolve("full/max/0/default.jpg", version=2).canonical(2, MAX) == "full/full/0/default.jpg"


def test_arbitrary_rotation_bounds_the_turned_size():
    r = resolve("full/100,100/45/default.png")
    assert r.turned_size == (142, 142)
    with pytest.raises(InvalidRequest, match="^rotation:"):
        resolve("full/1000,800/45/default.png", max_area=1_000_000)


def test_parts_parse_alone():
    assert str(parse_region("pct:41.6,7.5,40,70")) == "pct:41.6,7.5,40,70"
    assert parse_rotation("!360").degrees == 0 and parse_rotation("!360").mirror
    assert parse_size("^!10,20", 3).upscale

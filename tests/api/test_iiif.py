"""The IIIF routes through Flask: identifiers, info.json, headers, caching, tokens, stored tiles passed through."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from image_repo.config.settings import Settings
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg
from tests.fixtures.tiled import ArraySource, gradient


@pytest.fixture
def make_client(tmp_path):
    apps = []

    def make(**overrides):
        s = Settings()
        s.data_dir = str(tmp_path / f"data{len(apps)}")
        for key, value in overrides.items():
            setattr(s, key, value)
        app = create_app(s)
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["image_repo"].cache.close()


@pytest.fixture
def fc(make_client):
    """A client of a file-store app holding ``site/photo`` (a 640x480 JPEG)."""
    c = make_client()
    assert c.put("/images/site/photo", data=make_jpeg(640, 480)).status_code == 201
    return c


def image_of(response) -> Image.Image:
    im = Image.open(io.BytesIO(response.data))
    im.load()
    return im


def test_image_on_every_store(client):
    """The whole flow on the file store, Swift and S3: info, an image, its cached copy."""
    assert client.put("/images/a/b", data=make_jpeg(640, 480)).status_code == 201
    info = client.get("/iiif/3/a%2Fb/info.json").get_json()
    assert (info["width"], info["height"]) == (640, 480)
    first = client.get("/iiif/3/a%2Fb/0,0,320,240/160,/0/default.jpg")
    assert first.status_code == 200 and image_of(first).size == (160, 120)
    again = client.get("/iiif/3/a%2Fb/0,0,320,240/160,/0/default.jpg")
    assert again.headers["X-Image-Repo-Cache"] == "hit" and again.data == first.data


def test_info_json_fields(fc):
    r = fc.get("/iiif/3/site%2Fphoto/info.json")
    doc = r.get_json()
    assert r.headers["Content-Type"] == "application/json"
    assert doc["id"] == "http://localhost/iiif/3/site%2Fphoto"
    assert doc["type"] == "ImageService3" and doc["profile"] == "level2" and doc["protocol"] == "http://iiif.io/api/image"
    assert doc["tiles"] == [{"width": 512, "height": 512, "scaleFactors": [1, 2]}]
    assert doc["sizes"] == [{"width": 320, "height": 240}, {"width": 640, "height": 480}]
    assert doc["maxArea"] == 50_000_000
    assert "mirroring" in doc["extraFeatures"] and doc["extraQualities"] == ["color", "gray", "bitonal"]
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert '<http://iiif.io/api/image/3/level2.json>;rel="profile"' in r.headers["Link"]
    v2 = fc.get("/iiif/2/site%2Fphoto/info.json").get_json()
    assert v2["@id"] == "http://localhost/iiif/2/site%2Fphoto"
    assert v2["profile"][0] == "http://iiif.io/api/image/2/level2.json" and v2["profile"][1]["maxArea"] == 50_000_000


def test_json_ld_when_asked(fc):
    r = fc.get("/iiif/3/site%2Fphoto/info.json", headers={"Accept": "application/ld+json"})
    assert r.headers["Content-Type"] == 'application/ld+json;profile="http://iiif.io/api/image/3/context.json"'
    r2 = fc.get("/iiif/2/site%2Fphoto/info.json", headers={"Accept": "application/ld+json"})
    assert r2.headers["Content-Type"].startswith('application/ld+json;profile="http://iiif.io/api/image/2/')
    profiled = 'application/ld+json;profile="http://iiif.io/api/image/3/context.json"'
    assert fc.get("/iiif/3/site%2Fphoto/info.json", headers={"Accept": profiled}).headers["Content-Type"] == profiled
    for accept in ("*/*", "application/json", "application/json, application/ld+json;q=0.5", "text/html,*/*;q=0.8"):
        assert fc.get("/iiif/3/site%2Fphoto/info.json", headers={"Accept": accept}).headers["Content-Type"] == "application/json"


def test_base_uri_redirects_to_info(fc):
    r = fc.get("/iiif/3/site%2Fphoto")
    assert r.status_code == 303 and r.headers["Location"] == "http://localhost/iiif/3/site%2Fphoto/info.json"


def test_an_unescaped_slash_and_unknown_images_are_404(fc):
    for path in ("/iiif/3/site/photo/info.json", "/iiif/3/site/photo/full/max/0/default.jpg",
                 "/iiif/3/nothing/info.json", "/iiif/3/site%2Fnothing/full/max/0/default.jpg", "/iiif/3/.hidden/info.json",
                 "/iiif/3/%FF/info.json"):
        r = fc.get(path)
        assert r.status_code == 404, path
        assert r.get_json()["message"].startswith("identifier:")
        assert r.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("path, part", [
    ("nowhere/max/0/default.jpg", "region"), ("full/big/0/default.jpg", "size"), ("full/max/x/default.jpg", "rotation"),
    ("full/max/0/sepia.jpg", "quality"), ("full/max/0/default.xyz", "format"), ("full/641,/0/default.jpg", "size"),
    ("700,0,10,10/max/0/default.jpg", "region"), ("%FF/max/0/default.jpg", "region"),
    ("full/max/%C3%A9/default.jpg", "rotation"),
])
def test_bad_parameters_are_400_naming_the_part(fc, path, part):
    r = fc.get(f"/iiif/3/site%2Fphoto/{path}")
    assert r.status_code == 400 and r.get_json()["message"].startswith(part + ":")


def test_a_result_over_max_output_pixels_is_refused(make_client):
    c = make_client(max_output_pixels=100_000)
    c.put("/images/p", data=make_jpeg(640, 480))
    r = c.get("/iiif/3/p/full/640,480/0/default.jpg")
    assert r.status_code == 400 and "maxArea" in r.get_json()["message"]
    small = c.get("/iiif/3/p/full/max/0/default.jpg")  # max fits within maxArea instead
    assert small.status_code == 200 and image_of(small).width * image_of(small).height <= 100_000


def test_etag_304_and_cache_control(fc):
    r = fc.get("/iiif/3/site%2Fphoto/full/200,/0/default.jpg")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "public, max-age=3600"
    etag = r.headers["ETag"]
    assert 'rel="canonical"' in r.headers["Link"] and "/full/200,150/0/default.jpg>" in r.headers["Link"]
    same = fc.get("/iiif/2/site%2Fphoto/0,0,640,480/200,150/0/color.jpg", headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.data == b""
    info = fc.get("/iiif/3/site%2Fphoto/info.json")
    assert fc.get("/iiif/3/site%2Fphoto/info.json", headers={"If-None-Match": info.headers["ETag"]}).status_code == 304


def test_a_replaced_original_changes_the_answer(fc):
    first = fc.get("/iiif/3/site%2Fphoto/full/max/0/default.jpg")
    fc.put("/images/site/photo", data=make_jpeg(320, 200))
    second = fc.get("/iiif/3/site%2Fphoto/full/max/0/default.jpg")
    assert image_of(second).size == (320, 200) and second.headers["ETag"] != first.headers["ETag"]


def test_head_and_preflight(fc):
    head = fc.head("/iiif/3/site%2Fphoto/full/100,/0/default.jpg")
    assert head.status_code == 200 and head.data == b"" and head.headers["Content-Type"] == "image/jpeg"
    preflight = fc.options("/iiif/3/site%2Fphoto/info.json", headers={"Origin": "https://viewer.example",
                                                                      "Access-Control-Request-Method": "GET"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]


def test_read_tokens(make_client):
    c = make_client(read_tokens=["r"])
    assert c.get("/iiif/3/x/info.json").status_code == 401
    assert c.options("/iiif/3/x/info.json").status_code == 200  # a CORS preflight carries no token
    assert c.get("/iiif/3/x/info.json", headers={"Authorization": "Bearer r"}).status_code == 404


def test_forwarded_headers_only_when_trusted(make_client):
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "images.example.org", "X-Forwarded-Prefix": "/repo"}
    for trusted, want in ((False, "http://localhost/iiif/3/p"), (True, "https://images.example.org/repo/iiif/3/p")):
        c = make_client(trust_forwarded_headers=trusted)
        c.put("/images/p", data=make_jpeg(64, 48))
        assert c.get("/iiif/3/p/info.json", headers=forwarded).get_json()["id"] == want


class Pyramids:
    """Stands where the pyramids part will: a ready pyramid for the names it holds."""

    def __init__(self, sources: dict[str, ArraySource]) -> None:
        self.sources = sources

    def source(self, original):
        return self.sources.get(original.name)


def test_a_request_for_one_stored_tile_is_answered_with_its_bytes(make_client):
    c = make_client()
    c.put("/images/big", data=make_jpeg(64, 48))  # the original; its "pyramid" is the array source
    source = ArraySource(gradient(2400, 2400), tile=512)
    svc = c.application.extensions["image_repo"]
    svc.pyramids = Pyramids({"big": source})
    info = c.get("/iiif/3/big/info.json").get_json()
    assert info["width"] == 2400 and info["tiles"][0]["scaleFactors"] == [1, 2, 4, 8]
    r = c.get("/iiif/3/big/1024,1024,1024,1024/512,512/0/default.jpg")
    assert r.status_code == 200 and r.data == source.stored_tile(1, 1, 1)
    assert source.region_calls == []  # no pixels read: the stored bytes as they are
    assert svc.counters()["tiles_passed_through"] == 1 and svc.counters()["iiif_renders"] == 0
    # Kept in this host's levels, not a second copy in the cache store (the pyramid there holds the bytes).
    from image_repo.service.images import bottom_level

    assert list(bottom_level(svc.cache).list("big/.d/")) == []
    assert c.get("/iiif/3/big/1024,1024,1024,1024/512,512/0/default.jpg").headers["X-Image-Repo-Cache"] == "hit"
    # An unaligned region is rendered from the same level, reading only what it covers.
    r2 = c.get("/iiif/3/big/1000,500,1024,1024/512,512/0/default.png")
    got = np.asarray(image_of(r2)).astype(int)
    want = np.asarray(Image.fromarray(source.levels[1][250:762, 500:1012])).astype(int)
    assert source.region_calls == [(1, 500, 250, 512, 512)] and np.abs(got - want).mean() < 2
    # The edge tile has no file of its own: rendered, with the same geometry.
    edge = c.get("/iiif/3/big/2048,2048,352,352/352,352/0/default.jpg")
    assert edge.status_code == 200 and image_of(edge).size == (352, 352)
    assert svc.counters()["iiif_renders"] == 2

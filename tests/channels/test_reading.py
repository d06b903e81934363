"""Multichannel TIFFs in every layout tifffile writes, through the service: names and colours from
the OME-XML, raw values kept, existing SubIFD pyramids used as they are, only the channels shown read."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from image_repo.config.settings import Settings
from image_repo.pyramids.service import index_key
from image_repo.storage.filesystem import FileStore
from tests.fixtures.counting import CountingStore
from image_repo.web.app import create_app

from .conftest import NAMES, RGB, composite, pattern, write_contig, write_ome, write_pages, write_separate

W, H = 1300, 1100  # beyond one 1024 level: a pyramid is built unless the file has one


def app_for(tmp_path: Path, cache=None, originals=None, **more):
    settings = Settings(data_dir=str(tmp_path / "data"), pyramid_builders=0, **more)
    settings.memory_cache.max_bytes = 0
    return create_app(settings, store=originals or FileStore(str(tmp_path / "originals"), fsync=False),
                      cache_store=cache or FileStore(str(tmp_path / "cache"), fsync=False), start_builders=False)


def uploaded(tmp_path: Path, path: Path, name: str = "slide", **app_options):
    app = app_for(tmp_path, **app_options)
    client = app.test_client()
    assert client.put(f"/images/{name}.tif", data=path.read_bytes()).status_code == 201
    svc = app.extensions["image_repo"]
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    return app, client, svc


LAYOUTS = {
    "ome-16": (lambda p: write_ome(p, 4, W, H), 16, True, False),
    "ome-8": (lambda p: write_ome(p, 3, W, H, bits=8), 8, True, False),
    "ome-16-subifd-pyramid": (lambda p: write_ome(p, 5, W, H, levels=3), 16, True, True),
    "separate-tiled-16": (lambda p: write_separate(p, 4, W, H), 16, False, False),
    "separate-strips-8": (lambda p: write_separate(p, 3, W, H, bits=8, tile=None), 8, False, False),
    "pages-16": (lambda p: write_pages(p, 4, W, H), 16, False, False),
    "contig-16": (lambda p: write_contig(p, 4, W, H), 16, False, False),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_each_layout_keeps_its_raw_values_and_names(tmp_path, layout):
    write, bits, ome, has_pyramid = LAYOUTS[layout]
    _, client, svc = uploaded(tmp_path, write(tmp_path / "src.tif"))
    meta = client.get("/images/slide?meta=true").get_json()
    assert meta["pyramid"]["photometric"] == "channels" and meta["pyramid"]["in_original"] is has_pyramid
    n = len(meta["channels"])
    assert [c["name"] for c in meta["channels"]] == (NAMES[:n] if ome else [f"channel {i}" for i in range(n)])
    assert {c["dtype"] for c in meta["channels"]} == {f"uint{bits}"}
    if ome:
        assert [c["colour"] for c in meta["channels"]] == RGB[:n]
    for c in meta["channels"]:
        assert c["min"] <= c["p0.1"] <= c["p1"] <= c["p99"] <= c["p99.9"] <= c["max"]
    assert meta["renderings"]["default"]["inline"]
    source = svc.pyramids.source(svc.get_original("slide"))
    box = source.region(0, 400, 300, 700, 600, channels=(n - 1, 0))  # across tiles, in the order asked
    assert box.dtype == np.dtype(f"uint{bits}")
    assert np.array_equal(box[..., 0], pattern(n - 1, 400, 300, 700, 600, bits))
    assert np.array_equal(box[..., 1], pattern(0, 400, 300, 700, 600, bits))


def test_broken_ome_xml_still_opens_with_default_names(tmp_path):
    broken = '<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image><Pixels><Channel Name="DNA"'
    _, client, _ = uploaded(tmp_path, write_ome(tmp_path / "src.tif", 3, W, H, description=broken))
    meta = client.get("/images/slide?meta=true").get_json()
    assert [c["name"] for c in meta["channels"]] == ["channel 0", "channel 1", "channel 2"]
    assert [c["colour"] for c in meta["channels"]] == [None, None, None]
    assert client.get("/iiif/3/slide/0,0,256,256/256,/0/default.png").status_code == 200


def test_a_rendered_tile_reads_only_its_channels_and_is_the_formula_pixel_by_pixel(tmp_path):
    cache = CountingStore()  # read tile by tile (no chunks kept on the host): what each tile costs shows
    _, client, svc = uploaded(tmp_path, write_ome(tmp_path / "src.tif", 6, W, H), cache=cache, pyramid_read_chunk_bytes=0)
    source = svc.pyramids.source(svc.get_original("slide"))
    tiff_key = source.index.key
    cache.ranges.clear()
    inline = "4:00FF00:1000:30000,1:FF00FF:500:60000:0.7"
    response = client.get(f"/iiif/3/slide/512,512,512,512/512,/0/channels:{inline}.png")
    assert response.status_code == 200, response.get_json()
    reads = [r for r in cache.ranges if r[0] == tiff_key]
    assert len(reads) == 2  # one tile of each channel shown, none of the other four
    got = np.asarray(Image.open(io.BytesIO(response.data)).convert("RGB"))
    want = composite([pattern(4, 512, 512, 512, 512), pattern(1, 512, 512, 512, 512)],
                     [("00FF00", 1000, 30000, 1), ("FF00FF", 500, 60000, 0.7)])
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    cache.ranges.clear()
    assert client.get(f"/iiif/3/slide/512,512,512,512/512,/0/channels:{inline}.png").status_code == 200
    assert [r for r in cache.ranges if r[0] == tiff_key] == []  # a derivative: cached like any other
    # The default rendering of the channels' own windows and OME colours, and the same through channels=.
    default = svc.pyramids.source(svc.get_original("slide")).info.rendering
    assert default is not None and [w.colour for w in default.channels] == RGB[:4]
    a = client.get("/iiif/3/slide/0,0,512,512/512,/0/default.png")
    b = client.get(f"/iiif/3/slide/0,0,512,512/512,/0/channels:{default.text()}.png")
    assert a.status_code == b.status_code == 200 and a.data == b.data


def test_nothing_is_composited_from_a_pyramid_not_yet_published(tmp_path):
    src = write_ome(tmp_path / "src.tif", 3, W, H)
    originals, cache = FileStore(str(tmp_path / "originals"), fsync=False), FileStore(str(tmp_path / "cache"), fsync=False)
    client = app_for(tmp_path, cache=cache, originals=originals).test_client()
    assert client.put("/images/slide.tif", data=src.read_bytes()).status_code == 201
    for url in ["/images/slide?channels=0:FF0000:0:9000", "/iiif/3/slide/0,0,256,256/256,/0/default.jpg",
                "/iiif/3/slide/info.json", "/images/slide?xsize=200"]:
        r = client.get(url)
        assert r.status_code == 503 and r.headers["Retry-After"] == "30", (url, r.status_code)
    assert "channels" not in client.get("/images/slide?meta=true").get_json()
    refused = client.put("/images/slide?renderings=dna", json={"channels": [{"index": 0, "colour": "FF0000", "low": 0, "high": 9}]})
    assert refused.status_code == 503
    # Built, then its index taken away: the tiles are there, but a pyramid without its index is not one.
    app = app_for(tmp_path, cache=cache, originals=originals)
    svc = app.extensions["image_repo"]
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    cache.delete(index_key("slide", svc.get_original("slide").version))
    later = app_for(tmp_path, cache=cache, originals=originals).test_client()
    assert later.get("/iiif/3/slide/0,0,256,256/256,/0/default.jpg").status_code == 503
    assert later.get("/images/slide?channels=0:FF0000:0:9000").status_code == 503

"""Renderings at the edges: real Gunicorn (IIIF qualities, the 2016 routes, authenticated saves),
and a pyramid on the real Swift read by one multi-range GET per rendered tile."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
import requests
from PIL import Image

from image_repo.web.app import create_app
from tests.fixtures.server import running_server

from .conftest import composite, pattern, write_ome

pytestmark = pytest.mark.slow
WRITE = "w-channels-0123456789"
AUTH = {"Authorization": f"Bearer {WRITE}"}
W, H = 1500, 1200
DNA_CD45 = {"channels": [{"index": 0, "colour": "0000FF", "low": 100, "high": 40000},
                         {"index": 1, "colour": "FFFF00", "low": 2000, "high": 50000, "gamma": 0.8}]}


def wait_ready(url: str, seconds: float = 180) -> dict:
    """Poll meta=true until the pyramid is ready or failed (a condition, not a timing)."""
    deadline = time.monotonic() + seconds
    while True:
        meta = requests.get(url + "?meta=true", timeout=30).json()
        if meta.get("pyramid", {}).get("state") in ("ready", "failed") or time.monotonic() > deadline:
            return meta
        time.sleep(0.2)


def pixels(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)


def test_saved_renderings_through_iiif_and_the_2016_routes(tmp_path):
    src = write_ome(tmp_path / "slide.ome.tif", 4, W, H)
    config = {"data_dir": str(tmp_path / "data"), "write_tokens": [WRITE], "pyramid_builders": 1}
    with running_server(config, tmp_path / "server") as server:
        url = f"{server.url}/images/slide"
        assert requests.put(url + ".tif", data=src.read_bytes(), headers=AUTH, timeout=60).status_code == 201
        meta = wait_ready(url)
        assert meta["pyramid"]["state"] == "ready", (meta, server.log_tail())
        assert [c["name"] for c in meta["channels"]] == ["DNA", "CD45", "CD3", "KI67"]
        assert set(meta["renderings"]) == {"default"}

        body = {"json": DNA_CD45, "timeout": 30}
        refused = requests.put(url + "?renderings=dna-cd45", **body)
        assert refused.status_code == 401 and refused.json()["message"]
        assert requests.put(url + "?renderings=dna-cd45", headers=AUTH, **body).status_code == 201
        again = requests.put(url + "?renderings=dna-cd45", headers=AUTH, **body)
        assert again.status_code == 200 and again.json()["inline"] == "0:0000FF:100:40000,1:FFFF00:2000:50000:0.8"
        for bad, says in [({"channels": [{"index": 9, "colour": "FF0000", "low": 0, "high": 5}]}, "body: channel index 9 is out of range"),
                          ({"channels": [{"index": 0, "colour": "FF00", "low": 0, "high": 5}]}, "body: channels[0]: colour 'FF00' is not 6 hex"),
                          ({"channels": [{"index": 0, "colour": "FF0000", "low": 5, "high": 5}]}, "body: channels[0]: high 5 is not above low 5")]:
            r = requests.put(url + "?renderings=bad", json=bad, headers=AUTH, timeout=30)
            assert r.status_code == 400 and r.json()["message"].startswith(says), r.text
        for rname, says in [("default", "is a quality of the IIIF API"), ("Bad Name", "is not a rendering name")]:
            r = requests.put(url + "?renderings=" + rname, headers=AUTH, **body)
            assert r.status_code == 400 and says in r.json()["message"]

        info = requests.get(f"{server.url}/iiif/3/slide/info.json", timeout=30).json()
        assert "dna-cd45" in info["extraQualities"]
        tile = pixels(requests.get(f"{server.url}/iiif/3/slide/512,512,512,512/512,/0/dna-cd45.png", timeout=60))
        want = composite([pattern(0, 512, 512, 512, 512), pattern(1, 512, 512, 512, 512)],
                         [("0000FF", 100, 40000, 1), ("FFFF00", 2000, 50000, 0.8)])
        assert np.abs(tile - want.astype(int)).max() <= 1
        assert requests.get(f"{server.url}/iiif/2/slide/0,0,512,512/256,/0/dna-cd45.jpg", timeout=30).status_code == 200
        unknown = requests.get(f"{server.url}/iiif/3/slide/0,0,512,512/256,/0/nope.jpg", timeout=30)
        assert unknown.status_code == 400 and "quality" in unknown.json()["message"]

        named = requests.get(url, params={"rendering": "dna-cd45", "xsize": 300}, timeout=60)
        assert named.status_code == 200 and named.headers["Content-Type"] == "image/jpeg"
        inline = requests.get(url, params={"channels": "0:0000FF:100:40000,1:FFFF00:2000:50000:0.8", "xsize": 300}, timeout=60)
        assert inline.status_code == 200 and inline.content == named.content  # one canonical form, one derivative
        default = requests.get(url, params={"xsize": 300}, timeout=60)
        assert default.status_code == 200 and default.content != named.content
        for params, says in [({"rendering": "nope"}, "rendering: 'slide' has no rendering named 'nope'"),
                             ({"channels": "7:FF0000:0:10"}, "channels: channel index 7 is out of range"),
                             ({"channels": "0:FF0000:10:2"}, "high 2 is not above low 10"),
                             ({"channels": "0:red:0:10"}, "colour 'red' is not 6 hex digits"),
                             ({"channels": ",".join(f"{i}:FF0000:0:9" for i in range(17))}, "at most 16"),
                             ({"channels": "0:FF0000:0:10", "rendering": "dna-cd45"}, "not both")]:
            r = requests.get(url, params=params, timeout=30)
            assert r.status_code == 400 and says in r.json()["message"], (params, r.text)

        listed = requests.get(url + "?meta=true", timeout=30).json()["renderings"]
        assert listed["dna-cd45"]["channels"][1]["name"] == "CD45"
        # Saved anew with other settings: the tiles follow (keyed by what they show, not by the name).
        other = {"channels": [{"index": 2, "colour": "FF0000", "low": 0, "high": 60000}]}
        assert requests.put(url + "?renderings=dna-cd45", json=other, headers=AUTH, timeout=30).status_code == 200
        moved = pixels(requests.get(f"{server.url}/iiif/3/slide/512,512,512,512/512,/0/dna-cd45.png", timeout=60))
        assert np.abs(moved - tile).max() > 50
        assert requests.delete(url + "?renderings=dna-cd45", timeout=30).status_code == 401
        assert requests.delete(url + "?renderings=dna-cd45", headers=AUTH, timeout=30).status_code == 204
        gone = requests.get(f"{server.url}/iiif/3/slide/info.json", timeout=30).json()
        assert "dna-cd45" not in gone.get("extraQualities", [])
        assert "Traceback" not in server.log.read_text()


@pytest.mark.parametrize("chunk_bytes", [0, 2**16])
def test_a_rendered_tile_on_swift_is_one_multi_range_get(tmp_path, swift_settings, swift_store, chunk_bytes):
    swift_settings.pyramid_read_chunk_bytes = chunk_bytes  # tile by tile, or by chunks kept on the host
    swift_settings.data_dir = str(tmp_path / "data")
    swift_settings.pyramid_builders = 0
    swift_settings.memory_cache.max_bytes = 0
    app = create_app(swift_settings, store=swift_store, cache_store=swift_store, start_builders=False)
    client = app.test_client()
    assert client.put("/images/slide.tif", data=write_ome(tmp_path / "s.tif", 5, W, H).read_bytes()).status_code == 201
    svc = app.extensions["image_repo"]
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    gets: list[int] = []
    real = swift_store.get_ranges

    def counted(key, ranges):  # the real multi-range GET, counted
        gets.append(len(ranges))
        return real(key, ranges)

    swift_store.get_ranges = counted  # type: ignore[method-assign]
    single = swift_store.get_range
    swift_store.get_range = lambda *a: (gets.append(1), single(*a))[1]  # type: ignore[method-assign]
    # A 600 x 600 box across 2 x 2 tiles of 512, three channels: 12 channel tiles in one GET,
    # or the chunks that hold them (at least one per channel: their planes lie apart) in one GET.
    r = client.get("/iiif/3/slide/300,300,600,600/600,/0/channels:0:FF0000:0:60000,2:00FF00:0:60000,4:0000FF:0:60000.png")
    assert r.status_code == 200, r.get_json()
    if chunk_bytes == 0:
        assert gets == [12]
    else:
        assert len(gets) == 1 and 3 <= gets[0] < 12, gets
        gets.clear()
        again = client.get("/iiif/3/slide/300,300,600,600/600,/0/channels:0:00FF00:0:50000,4:FF0000:0:50000.png")
        assert again.status_code == 200 and gets == []  # other colours of the same tiles: the kept chunks
    got = np.asarray(Image.open(io.BytesIO(r.data)).convert("RGB")).astype(int)
    want = composite([pattern(c, 300, 300, 600, 600) for c in (0, 2, 4)],
                     [("FF0000", 0, 60000, 1), ("00FF00", 0, 60000, 1), ("0000FF", 0, 60000, 1)])
    assert np.abs(got - want.astype(int)).max() <= 1

"""Builds through the service: huge originals served from their pyramid, replaced originals,
interrupted builds, two servers at once, corrupt files."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from image_repo.config.settings import Settings
from image_repo.pyramids.service import index_key, pyramid_key
from image_repo.pyramids.state import build_id
from image_repo.storage.filesystem import FileStore
from image_repo.web.app import create_app

from .conftest import pattern_pixels, write_pattern

W, H = 4600, 1400  # longer than pyramid_min_side, and beyond the tests' max_pixels of 2 MP


class CountingFileStore(FileStore):
    """A real FileStore that records which keys were read whole or streamed."""

    reads: list[str]

    def get_with_info(self, key: str):  # type: ignore[no-untyped-def]
        self.reads.append(key)
        return super().get_with_info(key)

    def iter_get(self, key: str, chunk_size: int = 1 << 20):  # type: ignore[no-untyped-def]
        self.reads.append(key)
        return super().iter_get(key, chunk_size)


def settings_for(tmp_path: Path, **more) -> Settings:
    s = Settings(data_dir=str(tmp_path / "data"), max_pixels=2_000_000, pyramid_builders=0, **more)
    s.memory_cache.max_bytes = 0  # every request reaches the cache store: what is asked of the stores shows
    return s


def app_for(tmp_path: Path, originals=None, cache=None, **more):
    originals = originals or FileStore(str(tmp_path / "originals"), fsync=False)
    cache = cache or FileStore(str(tmp_path / "cache"), fsync=False)
    return create_app(settings_for(tmp_path, **more), store=originals, cache_store=cache, start_builders=False)


def build_pending(app) -> list[dict]:
    svc = app.extensions["image_repo"]
    return [svc.pyramids.build(rec) for rec in svc.pyramids.pending()]


@pytest.fixture(scope="module")
def huge_jpeg(tmp_path_factory) -> bytes:
    return write_pattern(tmp_path_factory.mktemp("src") / "huge.jpg", W, H, "rgb").read_bytes()


def test_a_huge_original_is_accepted_by_header_and_served_from_its_pyramid(tmp_path, huge_jpeg):
    originals = CountingFileStore(str(tmp_path / "originals"), fsync=False)
    originals.reads = []
    app = app_for(tmp_path, originals)
    c = app.test_client()
    assert c.put("/images/maps/huge", data=huge_jpeg).status_code == 201
    meta = c.get("/images/maps/huge?meta=true").get_json()
    assert (meta["width"], meta["height"], meta["pyramid"]) == (W, H, {"state": "queued"})
    pending = c.get("/images/maps/huge?thumbnail=true")
    assert pending.status_code == 503 and int(pending.headers["Retry-After"]) > 0
    assert "retry later" in pending.get_json()["message"]
    assert build_pending(app) == [{"state": "ready", "levels": 5}]
    meta = c.get("/images/maps/huge?meta=true").get_json()
    assert meta["pyramid"]["state"] == "ready" and meta["pyramid"]["tile_size"] == [512, 512]
    assert meta["pyramid"]["levels"] == 5
    originals.reads.clear()
    thumb = c.get("/images/maps/huge?thumbnail=true")
    assert thumb.status_code == 200 and thumb.content_type == "image/jpeg"
    sized = c.get("/images/maps/huge?xsize=1000&kind=png")
    assert sized.status_code == 200 and sized.content_type == "image/png"
    import io

    from PIL import Image
    with Image.open(io.BytesIO(sized.data)) as im:
        assert im.size == (1000, 1000 * H // W)
        got = np.asarray(im.convert("RGB")).astype(int)
    for gx, gy in [(100, 50), (500, 150), (900, 280)]:  # the pattern where each output pixel falls
        want = pattern_pixels(int((gx + 0.5) * W / 1000), int((gy + 0.5) * H / got.shape[0]), 1, 1, W, H)[0, 0]
        assert np.abs(got[gy, gx] - want.astype(int)).max() < 12, (gx, gy, got[gy, gx], want)
    assert originals.reads == []  # never the original: the pyramid's levels only
    assert app.extensions["image_repo"].counters()["from_pyramid"] == 2


def test_a_replaced_original_never_serves_its_old_tiles(tmp_path, huge_jpeg):
    cache = FileStore(str(tmp_path / "cache"), fsync=False)
    app = app_for(tmp_path, cache=cache)
    c = app.test_client()
    svc = app.extensions["image_repo"]
    c.put("/images/p", data=huge_jpeg)
    build_pending(app)
    old = svc.get_original("p")
    old_tile = svc.pyramids.source(old).stored_tile(0, 0, 0)
    assert old_tile is not None
    import pyvips
    inverted = (255 - pyvips.Image.new_from_buffer(huge_jpeg, "")).cast("uchar").jpegsave_buffer(Q=90)
    assert c.put("/images/p", data=inverted).status_code == 200
    new = svc.get_original("p")
    assert new.version != old.version
    assert svc.pyramids.source(new) is None
    assert cache.stat(pyramid_key("p", old.version)) is None and cache.stat(index_key("p", old.version)) is None
    assert c.get("/images/p?xsize=300").status_code == 503
    build_pending(app)
    tile = svc.pyramids.source(new).stored_tile(0, 0, 0)
    assert tile is not None and tile != old_tile
    import io

    from PIL import Image
    with Image.open(io.BytesIO(tile)) as a, Image.open(io.BytesIO(old_tile)) as b:
        assert np.abs(np.asarray(a).astype(int) + np.asarray(b).astype(int) - 255).mean() < 4


def test_two_servers_asked_at_once_build_one_image_once(tmp_path, huge_jpeg):
    originals = FileStore(str(tmp_path / "originals"), fsync=False)
    cache = FileStore(str(tmp_path / "cache"), fsync=False)
    one, two = app_for(tmp_path, originals, cache), app_for(tmp_path, originals, cache)
    one.test_client().put("/images/both", data=huge_jpeg)
    recs = one.extensions["image_repo"].pyramids.pending()
    assert len(recs) == 1
    start = threading.Barrier(2)
    results: list[dict] = []

    def ask(app) -> None:
        start.wait()
        results.append(app.extensions["image_repo"].pyramids.build(dict(recs[0])))

    threads = [threading.Thread(target=ask, args=(a,)) for a in (one, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = [a.extensions["image_repo"].pyramids.builds_run for a in (one, two)]
    assert sorted(runs) == [0, 1], runs
    assert {"state": "ready", "levels": 5} in results
    assert two.test_client().get("/images/both?meta=true").get_json()["pyramid"]["state"] == "ready"


def test_a_build_killed_at_any_moment_resumes_and_leaves_no_orphans(tmp_path, huge_jpeg):
    app = app_for(tmp_path)
    svc = app.extensions["image_repo"]
    app.test_client().put("/images/k", data=huge_jpeg)
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "store": f"file://{tmp_path}/originals",
                                      "cache_store": f"file://{tmp_path}/cache", "max_pixels": 2_000_000}))
    cli = subprocess.Popen([sys.executable, "-m", "image_repo", "-y", str(config), "pyramids", "build", "k"],
                           start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    build_dir = Path(svc.settings.pyramid_build_path())
    child = None
    deadline = time.monotonic() + 120
    while child is None and time.monotonic() < deadline and cli.poll() is None:
        child = next((int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _is_build_child(p, cli.pid)),
                     None)
    assert child is not None, "the build process never started"
    os.kill(child, signal.SIGSTOP)  # caught mid-build: now kill the command (and with it the build) at once
    os.killpg(cli.pid, signal.SIGKILL)
    cli.wait()
    original = svc.get_original("k")
    assert svc.pyramids.status(original) == {"state": "queued"}  # its builder is gone
    assert any(build_dir.iterdir())  # what the killed build left
    assert svc.pyramids.source(original) is None  # nothing partial is served
    assert build_pending(app) == [{"state": "ready", "levels": 5}]
    assert list(build_dir.iterdir()) == []
    assert svc.pyramids.status(original)["state"] == "ready"
    assert [i.key for i in svc.pyramids.bottom.list(".pyramids/")] == []


def _is_build_child(proc: Path, parent: int) -> bool:
    try:
        stat = (proc / "stat").read_text()
        cmd = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"image_repo.pyramids.build" in cmd


def test_a_truncated_huge_file_fails_with_its_reason_and_is_kept(tmp_path, huge_jpeg):
    app = app_for(tmp_path)
    c = app.test_client()
    cut = huge_jpeg[: len(huge_jpeg) * 6 // 10]
    assert c.put("/images/cut", data=cut).status_code == 201  # beyond max_pixels: judged by header
    assert build_pending(app)[0]["state"] == "failed"
    pyramid = c.get("/images/cut?meta=true").get_json()["pyramid"]
    assert pyramid["state"] == "failed" and "truncated" in pyramid["reason"]
    assert c.get("/images/cut?original=true").data == cut
    refused = c.get("/images/cut?thumbnail=true")
    assert refused.status_code == 422 and "could not be built" in refused.get_json()["message"]
    svc = app.extensions["image_repo"]
    original = svc.get_original("cut")
    assert svc.pyramids.bottom.stat(index_key("cut", original.version)) is None
    assert svc.pyramids.bottom.stat(pyramid_key("cut", original.version)) is None
    assert svc.pyramids.records.load(build_id("cut", original.version))["state"] == "failed"


def test_an_original_that_is_already_a_pyramid_is_used_as_it_is(tmp_path):
    import pyvips
    src = write_pattern(tmp_path / "s.png", W, H, "rgb")
    pyr = tmp_path / "pyr.tif"
    pyvips.Image.new_from_file(str(src)).tiffsave(str(pyr), tile=True, tile_width=256, tile_height=256,
                                                  pyramid=True, compression="jpeg", Q=90)
    app = app_for(tmp_path)
    c = app.test_client()
    assert c.put("/images/scan.tif", data=pyr.read_bytes()).status_code == 201
    assert build_pending(app)[0]["state"] == "ready"
    svc = app.extensions["image_repo"]
    assert svc.pyramids.builds_run == 0  # no second pyramid
    status = c.get("/images/scan?meta=true").get_json()["pyramid"]
    assert status["in_original"] is True and status["tile_size"] == [256, 256]
    original = svc.get_original("scan")
    assert svc.pyramids.bottom.stat(pyramid_key("scan", original.version)) is None
    assert c.get("/images/scan?thumbnail=true").status_code == 200
    box = svc.pyramids.source(original).region(0, 1000, 500, 300, 200)
    assert np.abs(box.astype(int) - pattern_pixels(1000, 500, 300, 200, W, H).astype(int)).mean() < 3


def test_an_import_of_a_huge_original_queues_its_pyramid_and_larger_than_uploads_is_spooled(tmp_path, huge_jpeg):
    import hashlib
    from urllib.parse import urlsplit

    app = app_for(tmp_path, url_key="k", max_upload_bytes=len(huge_jpeg) // 2)  # spooled, probed by header
    c = app.test_client()
    sha = hashlib.sha256(huge_jpeg).hexdigest()
    rec = c.post("/imports", json={"name": "imp/huge", "sha256": sha, "size": len(huge_jpeg)}).get_json()
    url = urlsplit(rec["upload_url"])
    assert c.put(f"{url.path}?{url.query}", data=huge_jpeg).status_code == 201
    body = c.put(f"/imports/{rec['id']}", json={"complete": True}).get_json()
    deadline = time.monotonic() + 60
    while body["state"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
        body = c.get(f"/imports/{rec['id']}").get_json()
    assert body["state"] == "done", body
    assert c.get("/images/imp/huge?meta=true").get_json()["pyramid"] == {"state": "queued"}
    assert build_pending(app) == [{"state": "ready", "levels": 5}]
    assert c.get("/images/imp/huge?thumbnail=true").status_code == 200


def test_url_and_zips_of_huge_images_come_from_their_pyramids(tmp_path, huge_jpeg):
    import io
    import zipfile

    app = app_for(tmp_path, url_key="k")
    c = app.test_client()
    c.put("/images/set/a", data=huge_jpeg)
    c.put("/images/set/b", data=huge_jpeg)  # same bytes, another name: a pyramid of its own
    build_pending(app)
    signed = c.get("/images/set/a?xsize=200&url=true").get_json()
    got = c.get(urlsplit_path(signed["url"]))
    assert got.status_code == 200 and got.content_type == "image/jpeg"
    z = c.get("/images/set/?thumbnail=true")
    assert z.status_code == 200 and z.content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(z.data)) as zf:
        assert sorted(zf.namelist()) == ["set/a.jpg", "set/b.jpg"]
        assert all(zf.read(n).startswith(b"\xff\xd8") for n in zf.namelist())


def urlsplit_path(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_deleting_the_original_drops_its_pyramid(tmp_path, huge_jpeg):
    cache = FileStore(str(tmp_path / "cache"), fsync=False)
    app = app_for(tmp_path, cache=cache)
    c = app.test_client()
    c.put("/images/gone", data=huge_jpeg)
    build_pending(app)
    version = app.extensions["image_repo"].get_original("gone").version
    assert cache.stat(pyramid_key("gone", version)) is not None
    assert c.delete("/images/gone").status_code == 204
    assert cache.stat(pyramid_key("gone", version)) is None and cache.stat(index_key("gone", version)) is None
    assert c.get("/images/gone?thumbnail=true").status_code == 404


def test_iiif_of_a_huge_image_waits_for_its_pyramid_then_serves_its_tiles(tmp_path, huge_jpeg):
    app = app_for(tmp_path)
    c = app.test_client()
    c.put("/images/iiif/huge", data=huge_jpeg)
    waiting = c.get("/iiif/3/iiif%2Fhuge/info.json")
    assert waiting.status_code == 503 and waiting.headers["Retry-After"] == "30"
    build_pending(app)
    info = c.get("/iiif/3/iiif%2Fhuge/info.json")
    assert info.status_code == 200, info.get_data()[:300]
    body = info.get_json()
    assert (body["width"], body["height"]) == (W, H)
    assert body["tiles"][0]["width"] == 512 and body["tiles"][0]["scaleFactors"][:3] == [1, 2, 4]
    tile = c.get("/iiif/3/iiif%2Fhuge/512,0,512,512/512,/0/default.jpg")
    assert tile.status_code == 200 and tile.data.startswith(b"\xff\xd8")
    svc = app.extensions["image_repo"]
    assert tile.data == svc.pyramids.source(svc.get_original("iiif/huge")).stored_tile(0, 1, 0)  # as stored

"""The IIIF tile fast path: stored tiles of a real pyramid without Flask, answered as Flask answers them."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from image_repo.config.settings import Settings
from image_repo.web.app import create_app
from image_repo.web.fastpath import FastPath
from image_repo.web.tilepath import TilePath
from tests.fixtures.counting import CountingApp
from tests.pyramids.conftest import write_pattern

W, H = 4600, 1400  # longer than pyramid_min_side: it gets a pyramid of 512 px JPEG tiles
TILE = "/iiif/3/maps%2Fpano/512,512,512,512/512,512/0/default.jpg"


@pytest.fixture(scope="module")
def pano(tmp_path_factory) -> Path:
    """A data directory holding ``maps/pano`` and its ready pyramid, built once for the module."""
    root = tmp_path_factory.mktemp("pano")
    app = create_app(Settings(data_dir=str(root / "data"), pyramid_builders=0))
    client = app.test_client()
    assert client.put("/images/maps/pano", data=write_pattern(root / "pano.jpg", W, H, "rgb").read_bytes()).status_code == 201
    svc = app.extensions["image_repo"]
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    svc.cache.close()
    shutil.rmtree(root / "data" / "disk_cache", ignore_errors=True)
    return root / "data"


def make(tmp_path, pano: Path, **overrides):
    shutil.copytree(pano, tmp_path / "data")
    settings = Settings(data_dir=str(tmp_path / "data"), pyramid_builders=0)
    for key, value in overrides.items():
        setattr(settings, key, value)
    app = create_app(settings)
    fast = app.wsgi_app
    assert isinstance(fast, FastPath) and isinstance(fast.app, TilePath)
    tilepath = fast.app
    flask = tilepath.app = CountingApp(tilepath.app)
    return app, app.test_client(), flask, tilepath


def get(client, path, **headers):
    # RAW_URI as Gunicorn sets it: the path as the client escaped it.
    return client.get(path, headers=headers, environ_overrides={"RAW_URI": path})


def test_a_stored_tile_is_answered_without_flask(tmp_path, pano):
    app, client, flask, _ = make(tmp_path, pano)
    svc = app.extensions["image_repo"]
    calls = flask.calls
    first = get(client, TILE)
    assert first.status_code == 200 and first.headers["X-Image-Repo-Cache"] == "miss"
    assert first.data[:2] == b"\xff\xd8" and flask.calls == calls
    again = get(client, TILE)
    assert again.headers["X-Image-Repo-Cache"] == "hit" and again.data == first.data and flask.calls == calls
    assert svc.counters()["tiles_passed_through"] == 1 and svc.counters()["iiif_renders"] == 0
    not_modified = get(client, TILE, **{"If-None-Match": first.headers["ETag"]})
    assert not_modified.status_code == 304 and not_modified.data == b"" and flask.calls == calls


@pytest.mark.parametrize("path, headers", [
    (TILE, {}),
    ("/iiif/2/maps%2Fpano/1024,0,512,512/512,/0/default.jpg", {}),  # 2.1, size by width
    ("/iiif/3/maps%2Fpano/2048,0,1024,1024/512,512/0/color.jpg", {}),  # level 1, color is default
    ("/iiif/3/maps%2Fpano/0,0,512,512/512,512/0/default.jpg", {"If-None-Match": '"other", W/"{etag}"'}),
    ("/iiif/3/maps%2Fpano/0,0,512,512/512,512/0/default.jpg", {"If-None-Match": '"other"'}),
    ("/iiif/3/maps%2Fpano/0,0,512,512/512,512/0/default.jpg", {"Origin": "https://viewer.example"}),
])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_tile_path_answers_as_flask_does(tmp_path, pano, path, headers, method):
    app, client, flask, tilepath = make(tmp_path, pano)
    etag = get(client, path).headers["ETag"].strip('"')
    headers = {k: v.replace("{etag}", etag) for k, v in headers.items()}
    tilepath.enabled = False
    slow = client.open(path, method=method, headers=headers, environ_overrides={"RAW_URI": path})
    tilepath.enabled = True
    calls = flask.calls
    fast = client.open(path, method=method, headers=headers, environ_overrides={"RAW_URI": path})
    assert flask.calls == calls  # answered in front of Flask
    assert fast.status == slow.status and fast.data == slow.data
    assert sorted(fast.headers.items()) == sorted(slow.headers.items())


@pytest.mark.parametrize("path, status", [
    ("/iiif/3/maps%2Fpano/info.json", 200),
    ("/iiif/3/maps%2Fpano/100,100,700,700/512,/0/default.jpg", 200),  # unaligned: rendered
    ("/iiif/3/maps%2Fpano/512,512,512,512/512,512/90/default.jpg", 200),  # turned: rendered
    ("/iiif/3/maps%2Fpano/512,512,512,512/512,512/0/default.png", 200),  # not the stored format
    ("/iiif/3/maps%2Fpano/0,0,0,512/512,512/0/default.jpg", 400),
    ("/iiif/3/maps%2Fpano/0,0,512,512/512,512/0/sepia.jpg", 400),
    ("/iiif/3/maps%2Fother/0,0,512,512/512,512/0/default.jpg", 404),
    ("/iiif/3/maps/pano/0,0,512,512/512,512/0/default.jpg", 404),  # an unescaped slash
])
def test_everything_else_goes_to_flask(tmp_path, pano, path, status):
    app, client, flask, _ = make(tmp_path, pano)
    calls = flask.calls
    r = get(client, path)
    assert r.status_code == status and flask.calls == calls + 1
    if status >= 400:
        assert r.get_json()["message"]


def test_a_rendered_answer_is_a_fast_hit_the_second_time(tmp_path, pano):
    app, client, flask, _ = make(tmp_path, pano)
    path = "/iiif/3/maps%2Fpano/100,100,700,700/512,/0/default.jpg"
    first = get(client, path)
    calls = flask.calls
    again = get(client, path)
    assert flask.calls == calls and again.data == first.data and again.headers["X-Image-Repo-Cache"] == "hit"
    assert app.extensions["image_repo"].counters()["fast_hits"] == 1


def test_tokens_and_ranges_go_to_flask(tmp_path, pano):
    app, client, flask, _ = make(tmp_path, pano)
    calls = flask.calls
    assert get(client, TILE, Range="bytes=0-10").status_code in (200, 206) and flask.calls == calls + 1
    _, locked, flask2, _ = make(tmp_path / "locked", pano, read_tokens=["r"])
    calls = flask2.calls
    assert get(locked, TILE).status_code == 401 and flask2.calls == calls + 1
    assert get(locked, TILE, Authorization="Bearer r").status_code == 200


def test_a_replaced_original_never_serves_its_old_tiles(tmp_path, pano):
    app, client, flask, _ = make(tmp_path, pano)
    old = get(client, TILE)
    assert old.status_code == 200
    flipped = write_pattern(tmp_path / "other.jpg", H, W, "rgb").read_bytes()  # another image, tall
    assert client.put("/images/maps/pano", data=flipped).status_code in (200, 201)
    svc = app.extensions["image_repo"]
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    new = get(client, TILE)
    assert new.status_code == 200 and new.data != old.data and new.headers["ETag"] != old.headers["ETag"]


def open_pyramid_files(data: Path) -> list[str]:
    """This process's descriptors open on pyramid files under ``data``."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(data)) and ".pyramid" in target:
            out.append(target)
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_worker_reads_a_pyramid_through_one_open_file_and_lets_it_go(tmp_path, pano, monkeypatch):
    """Tiles of a local pyramid are preads of its file, opened once per worker, not a walk of its
    key's directories each; a replaced original's file is let go, and so is the least recent past OPENED_FILES."""
    app, client, _, _ = make(tmp_path, pano)
    data = tmp_path / "data"
    svc = app.extensions["image_repo"]
    first = get(client, TILE)
    assert first.status_code == 200 and len(open_pyramid_files(data)) == 1
    assert len(svc.pyramids._opened) == 1
    (held,) = svc.pyramids._opened.values()
    walks = []
    store = held.store
    monkeypatch.setattr(store, "open_fd", lambda key: walks.append(key) or type(store).open_fd(store, key))
    others = [get(client, f"/iiif/3/maps%2Fpano/{x},0,512,512/512,512/0/default.jpg") for x in (0, 1024, 1536, 2048)]
    assert all(r.status_code == 200 and r.data[:2] == b"\xff\xd8" for r in others) and walks == []
    monkeypatch.undo()
    # What the open file gives is what the store gives.
    index = next(iter(svc.pyramids._indexes.values()))
    assert held.get_range(index.key, 100, 5000) == store.get_range(index.key, 100, 5000)
    assert held.get_ranges(index.key, [(0, 8), (100, 50)]) == [store.get_range(index.key, 0, 8), store.get_range(index.key, 100, 50)]

    flipped = write_pattern(tmp_path / "other.jpg", H, W, "rgb").read_bytes()
    assert client.put("/images/maps/pano", data=flipped).status_code in (200, 201)
    del held, index
    assert open_pyramid_files(data) == [], "the replaced original's pyramid file is closed"
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    assert get(client, TILE).status_code == 200 and len(open_pyramid_files(data)) == 1

    # Another worker's files go at its next look (at most SWEEP_SECONDS apart) once deleted.
    (held,) = svc.pyramids._opened.values()
    assert client.delete("/images/maps/pano").status_code in (200, 204)
    svc.pyramids._opened[held.key] = held  # as another worker, which was not told
    del held
    assert len(open_pyramid_files(data)) == 1
    assert client.put("/images/maps/pano", data=write_pattern(tmp_path / "third.jpg", W, H, "rgb", Q=80).read_bytes()).status_code == 201
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    svc.pyramids._next_sweep = 0.0
    assert get(client, TILE).status_code == 200
    files = open_pyramid_files(data)
    assert len(files) == 1 and "(deleted)" not in files[0]

    svc.pyramids._opened.clear()  # monkeypatch keeps what it replaces
    monkeypatch.setattr(svc.pyramids, "_opened", type(svc.pyramids._opened)(maxsize=1))
    assert get(client, TILE).status_code == 200
    assert client.put("/images/maps/other", data=flipped).status_code == 201
    assert [svc.pyramids.build(rec)["state"] for rec in svc.pyramids.pending()] == ["ready"]
    assert get(client, "/iiif/3/maps%2Fother/0,0,512,512/512,512/0/default.jpg").status_code == 200
    files = open_pyramid_files(data)
    assert len(files) == 1 and "other" in files[0], "past OPENED_FILES the least recent file is closed"


def test_tiles_are_counted_under_the_route_flask_names(tmp_path, pano):
    """/metrics counts a request by the route its environ names: a stored tile from the fast path
    is counted where Flask would count it, not as unmatched."""
    from image_repo.metrics import ROUTE

    app, client, flask, tilepath = make(tmp_path, pano)
    seen: list[dict] = []
    inner = app.wsgi_app

    def recording(environ, start_response):
        try:
            return inner(environ, start_response)
        finally:
            seen.append(environ)

    app.wsgi_app = recording
    calls = flask.calls
    assert get(client, TILE).status_code == 200 and flask.calls == calls
    tilepath.enabled = False
    assert get(client, "/iiif/3/maps%2Fpano/0,0,512,512/512,512/0/default.jpg").status_code == 200
    assert flask.calls == calls + 1
    assert [e.get(ROUTE) for e in seen] == ["/iiif/<any('3', '2'):version>/<path:rest>"] * 2

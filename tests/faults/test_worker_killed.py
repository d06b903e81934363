"""A Gunicorn worker SIGKILLed mid-request: while deriving, while writing its disk cache, while streaming a zip.

The moment is exact: the server runs with test points on (image_repo/testpoints.py), so the
worker stops at the named point and says so, and the test kills it there. Gunicorn replaces
it, no cache file is torn (disk cache entries verify, cache store files are whole images),
no lock is left held, and the next request is answered right.
"""
from __future__ import annotations

import io
import itertools
import os
import signal
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from image_repo.cache.disk import DiskCache, _parse
from image_repo.storage.fileio import is_reserved
from tests.fixtures.images import assert_scene, make_jpeg, open_bytes
from tests.fixtures.server import Server, running_server
from tests.fixtures.tally import Tally
from tests.fixtures.waiting import wait_for

from .conftest import no_tracebacks, worker_pids

NAMES = [f"z/{i}" for i in range(4)]
SIZES = itertools.count(201)
"""Each test asks for sizes never asked before, so a derivation (and a cache write) surely happens."""


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[Server, Path, Path]]:
    """Two workers on file stores with a disk cache level, test points on; originals z/0..3 stored."""
    root: Path = tmp_path_factory.mktemp("worker-killed")
    points = root / "points"
    points.mkdir()
    config = {"data_dir": str(root / "data"), "disk_cache": {"path": str(root / "disk")}, "log_level": "warning"}
    with running_server(config, root / "server", workers=2, env={"IMAGE_REPO_TEST_POINTS": str(points)}) as server:
        for name in NAMES:
            assert requests.put(f"{server.url}/images/{name}", data=make_jpeg(1200, 900), timeout=60).status_code == 201
        yield server, points, root


@pytest.fixture(autouse=True)
def no_worker_left_stopped(world):
    """After each test: no arming left, and any worker still stopped at a point let go."""
    yield
    _, points, _ = world
    for arm in points.glob("*.arm"):
        arm.unlink(missing_ok=True)
    for taken in points.glob("*.taken-*"):
        point, _, pid = taken.name.partition(".taken-")
        (points / f"{point}.go-{pid}").touch()


def stop_and_kill(server: Server, points: Path, point: str, tally: Tally, url: str) -> BaseException | bytes:
    """GET ``url`` in a thread; SIGKILL the worker when it stops at ``point``; wait for its replacement.
    What the client got: an exception, or whatever body arrived."""
    (points / f"{point}.arm").touch()
    got: list[BaseException | bytes] = []

    def fetch() -> None:
        try:
            got.append(tally.get(url).content)
        except requests.RequestException as e:
            got.append(e)

    thread = threading.Thread(target=fetch)
    thread.start()
    reached = points / f"{point}.reached"
    pid = int(wait_for(lambda: reached.exists() and reached.read_text(), f"a worker stopped at {point}"))
    before = worker_pids(server)
    assert pid in before
    os.kill(pid, signal.SIGKILL)
    tally.faults += 1
    thread.join()
    reached.unlink()
    wait_for(lambda: len(now := worker_pids(server)) == 2 and pid not in now, "Gunicorn replaced the killed worker")
    return got[0]


def assert_nothing_torn(root: Path) -> int:
    """Every disk cache entry verifies and every cache store file is a whole image; the disk cache's
    byte count is its files' (a writer killed under its lock left no wrong total). Entries checked."""
    checked = 0
    for path in (root / "disk").rglob("*"):
        if path.is_file() and len(path.name) == 64:  # entries; temp files (a killed writer's) start with "."
            assert _parse(path.read_bytes(), None, verify=True) is not None, f"torn disk cache entry {path}"
            checked += 1
    for path in (root / "data" / "cache").rglob("*"):
        if path.is_file() and not is_reserved(path.name):  # derivatives and intermediates: images all
            open_bytes(path.read_bytes())  # raises on a torn image
            checked += 1
    disk = DiskCache(str(root / "disk"), 2 * 2**30)
    assert disk.stats()["bytes"] == disk.scan_bytes()
    return checked


@pytest.mark.parametrize("point", ["derive", "disk-cache-write", "disk-cache-admit"])
def test_a_worker_killed_while_deriving_or_caching(world, tally, point):
    server, points, root = world
    query = f"xsize={next(SIZES)}"
    url = f"{server.url}/images/z/0?{query}"
    got = stop_and_kill(server, points, point, tally, url)
    assert isinstance(got, requests.RequestException), "the killed request cannot have been answered"
    if point.startswith("disk-cache"):  # what the dead writer left: a temp file, never an entry
        assert [p for p in (root / "disk").rglob(".*.tmp-*") if p.is_file()]
    tally.checked += assert_nothing_torn(root)
    # The next request, to whichever worker: right, and not held up by a lock the dead one had.
    again = tally.get(url)
    assert again.status_code == 200
    image = open_bytes(again.content)
    assert image.size == (int(query.split("=")[1]), image.size[1]) and image.format == "JPEG"
    assert_scene(image)
    other = tally.get(f"{server.url}/images/z/1?{query}")  # a new entry: the disk cache takes writes
    assert other.status_code == 200 and other.headers["X-Image-Repo-Cache"] == "miss"
    tally.checked += assert_nothing_torn(root)
    no_tracebacks(server)


def test_a_worker_killed_while_streaming_a_zip(world, tally):
    server, points, root = world
    url = f"{server.url}/images/z/?xsize={next(SIZES)}"
    got = stop_and_kill(server, points, "zip-stream", tally, url)
    # The chunked answer never had its last chunk: the client knows it was cut, and says so.
    assert isinstance(got, requests.RequestException), "a zip cut mid-way must not read as complete"
    whole = tally.get(url)
    assert whole.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(whole.content))
    assert archive.testzip() is None and sorted(archive.namelist()) == [f"{n}.jpg" for n in NAMES]
    for member in archive.namelist():
        assert_scene(open_bytes(archive.read(member)))
        tally.checked += 1
    tally.checked += assert_nothing_torn(root)
    no_tracebacks(server)

"""What each part counts, seen in this process's registry (one process: prometheus_client's plain mode)."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from image_repo.config.settings import S3Settings, Settings
from image_repo.errors import Overloaded, StorageUnavailable
from image_repo.host.limiter import Limiter
from image_repo.storage.s3 import S3Store
from image_repo.storage.swift import SwiftStore
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg
from tests.ingest.test_imports import finish, send, start


def figure(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on (bound, never listened: connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_limiter_queue_depth_and_refusals() -> None:
    limiter = Limiter(running=1, queued=1)
    running, waiting = figure("image_repo_derivations_running"), figure("image_repo_derivations_waiting")
    refused = figure("image_repo_derivations_refused_total")
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with limiter.slot():
            entered.set()
            release.wait(30)

    def queue() -> None:
        with limiter.slot():
            pass

    first = threading.Thread(target=hold)
    first.start()
    assert entered.wait(30)
    second = threading.Thread(target=queue)
    second.start()
    for _ in range(3000):  # until the second is queued behind the first (no sleep-and-hope: polled)
        if figure("image_repo_derivations_waiting") == waiting + 1:
            break
        threading.Event().wait(0.01)
    assert figure("image_repo_derivations_waiting") == waiting + 1
    assert figure("image_repo_derivations_running") == running + 1
    with pytest.raises(Overloaded), limiter.slot():
        pass
    assert figure("image_repo_derivations_refused_total") == refused + 1
    release.set()
    first.join(30)
    second.join(30)
    assert figure("image_repo_derivations_waiting") == waiting
    assert figure("image_repo_derivations_running") == running


def test_store_errors_by_backend(closed_port: int) -> None:
    swift = SwiftStore("c", connection_options={"preauthurl": f"http://127.0.0.1:{closed_port}/v1/AUTH_x",
                                                "preauthtoken": "t", "retries": 0})
    before = figure("image_repo_store_errors_total", backend="swift")
    with pytest.raises(StorageUnavailable):
        swift.get("k")
    assert figure("image_repo_store_errors_total", backend="swift") == before + 1

    s3 = S3Store("bucket", "", S3Settings(endpoint_url=f"http://127.0.0.1:{closed_port}", region="us-east-1",
                                          path_style=True, access_key_id="a", secret_access_key="b", retries=0))
    before = figure("image_repo_store_errors_total", backend="s3")
    with pytest.raises(StorageUnavailable):
        s3.get("k")
    assert figure("image_repo_store_errors_total", backend="s3") == before + 1


def test_import_states_and_cache_levels(tmp_path) -> None:
    s = Settings()
    s.data_dir, s.url_key = str(tmp_path / "data"), "k"
    s.disk_cache.path = str(tmp_path / "disk")  # memory, disk and the cache store: three levels
    app = create_app(s)
    client = app.test_client()
    states = {state: figure("image_repo_imports_total", state=state) for state in ("created", "uploaded", "processing", "done")}
    photo = make_jpeg(300, 200)
    rec = start(client, "plate/f1", photo)
    assert send(client, rec, photo).status_code == 201
    assert finish(client, rec)["state"] == "done"
    for state, was in states.items():
        assert figure("image_repo_imports_total", state=state) == was + 1, state
    # The import's thumbnail is made in the background after "done": let it finish before counting hits.
    app.extensions["image_repo_imports"]._pool.shutdown(wait=True)

    hits = {level: figure("image_repo_cache_hits_total", level=level) for level in ("memory", "disk", "store")}
    misses = figure("image_repo_cache_misses_total", level="memory")
    made = figure("image_repo_derivations_total")
    assert client.get("/images/plate/f1?xsize=33").headers["X-Image-Repo-Cache"] == "miss"
    assert figure("image_repo_derivations_total") == made + 1
    assert figure("image_repo_cache_misses_total", level="memory") >= misses + 1
    # The derivation read the import's intermediate: a hit of whichever level held it.
    assert sum(figure("image_repo_cache_hits_total", level=level) - was for level, was in hits.items()) == 1
    memory = figure("image_repo_cache_hits_total", level="memory")
    fast = app.extensions["image_repo"].counters()["fast_hits"]
    assert client.get("/images/plate/f1?xsize=33").headers["X-Image-Repo-Cache"] == "hit"
    assert app.extensions["image_repo"].counters()["fast_hits"] == fast + 1  # answered by the fast path, and
    assert figure("image_repo_cache_hits_total", level="memory") == memory + 1  # counted as the memory level's


def test_pyramid_build_states_and_the_running_gauge(tmp_path, monkeypatch) -> None:
    from tests.pyramids.conftest import write_pattern
    from tests.pyramids.test_builds import H, W, app_for, build_pending

    app = app_for(tmp_path)
    c = app.test_client()
    states = {state: figure("image_repo_pyramid_builds_total", state=state) for state in ("queued", "building", "ready", "failed")}
    huge = write_pattern(tmp_path / "huge.jpg", W, H, "rgb").read_bytes()
    assert c.put("/images/maps/huge", data=huge).status_code == 201
    assert figure("image_repo_pyramid_builds_total", state="queued") == states["queued"] + 1
    import image_repo.pyramids.builder as builder

    seen_running: list[float] = []
    real_run_build = builder.run_build

    def run_build(*args, **kwargs):  # the build's child process is running while this is called
        seen_running.append(figure("image_repo_pyramid_builds_running"))
        return real_run_build(*args, **kwargs)

    monkeypatch.setattr(builder, "run_build", run_build)
    assert build_pending(app) == [{"state": "ready", "levels": 5}]
    for state, more in (("queued", 1), ("building", 1), ("ready", 1), ("failed", 0)):
        assert figure("image_repo_pyramid_builds_total", state=state) == states[state] + more, state
    assert seen_running == [1.0] and figure("image_repo_pyramid_builds_running") == 0.0
    cut = huge[: len(huge) * 6 // 10]
    assert c.put("/images/cut", data=cut).status_code == 201
    assert build_pending(app)[0]["state"] == "failed"
    assert figure("image_repo_pyramid_builds_total", state="failed") == states["failed"] + 1

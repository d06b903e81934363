"""Several image_repo servers on one real Swift, and Swift going away under them."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from PIL import Image

from tests.fixtures.images import make_jpeg
from tests.fixtures.server import running_server
from tests.fixtures.swift import SCRIPTS, SwiftServer, _free_ports, _parse, _state_root

pytestmark = pytest.mark.swift


def server_config(swift: SwiftServer, originals: str, cache: str, data_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "data_dir": str(data_dir),
        "store": f"swift://{originals}",
        "cache_store": f"swift://{cache}",
        "url_key": "k",
        "swift": {"auth_url": swift.auth_url, "user": swift.user, "key": swift.key, "auth_version": "1",
                  "retries": 0, "timeout": 5},
        **extra,
    }


def derivations(server_url: str) -> int:
    return int(requests.get(server_url + "/metrics", headers={"Accept": "application/json"}, timeout=5).json()["counters"]["derivations"])


def wait_for_object(swift: SwiftServer, container: str, prefix: str, timeout: float = 10) -> None:
    conn = swift.connection()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if conn.get_container(container, prefix=prefix)[1]:
            return
        time.sleep(0.1)
    pytest.fail(f"nothing under {prefix!r} in {container} after {timeout} s")


def test_two_servers_share_the_containers(swift_server, swift_container_pair, tmp_path):
    originals, cache = swift_container_pair
    ttl = 1.0
    with running_server(server_config(swift_server, originals, cache, tmp_path / "a"), tmp_path / "sa", workers=1) as a, \
         running_server(server_config(swift_server, originals, cache, tmp_path / "b", original_stat_ttl=ttl),
                        tmp_path / "sb", workers=1) as b:
        photo = make_jpeg(400, 300)
        r = requests.post(f"{a.url}/images/shared/photo.jpg", files={"file": ("photo.jpg", photo)})
        assert r.status_code == 200
        # Read after write through the other server, at once.
        assert requests.get(f"{b.url}/images").json() == ["shared/photo"]
        assert requests.get(f"{b.url}/images/shared/photo").status_code == 200

        made = requests.get(f"{a.url}/images/shared/photo?xsize=64")
        assert made.headers["X-Image-Repo-Cache"] == "miss"
        wait_for_object(swift_server, cache, "shared/photo/.d/")
        before = derivations(b.url)
        served = requests.get(f"{b.url}/images/shared/photo?xsize=64")
        assert served.headers["X-Image-Repo-Cache"] == "hit" and served.content == made.content
        assert derivations(b.url) == before, "the other server must not derive it again"

        # Replace through A: after original_stat_ttl, B never serves the old derivative.
        assert requests.put(f"{a.url}/images/shared/photo", data=make_jpeg(300, 400)).status_code == 200
        time.sleep(ttl + 0.2)
        for _ in range(3):
            fresh = requests.get(f"{b.url}/images/shared/photo?xsize=64")
            assert Image.open(io.BytesIO(fresh.content)).size == (64, 85)


@pytest.fixture
def private_swift() -> Iterator[dict[str, Any]]:
    """A Swift of this test's own, which the test may stop and start again (data kept)."""
    state_dir = tempfile.mkdtemp(prefix="image_repo-swift-private-", dir=_state_root())
    proxy, obj, cont, acct = _free_ports(4)
    env = dict(os.environ, SWIFT_STATE_DIR=state_dir, SWIFT_PROXY_PORT=str(proxy), SWIFT_OBJECT_PORT=str(obj),
               SWIFT_CONTAINER_PORT=str(cont), SWIFT_ACCOUNT_PORT=str(acct))

    def start() -> SwiftServer:
        done = subprocess.run([str(SCRIPTS / "start-swift.sh")], env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"private Swift did not start:\n{done.stderr[-3000:]}")
        return _parse(done.stdout)

    def stop() -> None:
        subprocess.run([str(SCRIPTS / "stop-swift.sh")], env={**env, "SWIFT_WIPE": "0"}, capture_output=True,
                       timeout=60)

    try:
        yield {"start": start, "stop": stop, "server": start()}
    finally:
        subprocess.run([str(SCRIPTS / "stop-swift.sh")], env={**env, "SWIFT_WIPE": "1"}, capture_output=True,
                       timeout=60)
        shutil.rmtree(state_dir, ignore_errors=True)


def test_swift_stopped_mid_run(private_swift, tmp_path):
    swift: SwiftServer = private_swift["server"]
    config = server_config(swift, "originals", "cache", tmp_path / "data")
    with running_server(config, tmp_path / "s", workers=1) as s:
        base = f"{s.url}/images"
        for name in ("a", "b"):
            assert requests.put(f"{base}/{name}", data=make_jpeg(200, 150)).status_code == 201
        warm = requests.get(f"{base}/a?xsize=50")
        assert warm.status_code == 200

        private_swift["stop"]()
        cached = requests.get(f"{base}/a?xsize=50", timeout=30)
        assert cached.status_code == 200 and cached.content == warm.content
        for url in (f"{base}/a?xsize=60", f"{base}/b", f"{base}", f"{s.url}/readyz"):
            r = requests.get(url, timeout=30)
            assert r.status_code == 503, url
            assert r.json()["message"] and "Traceback" not in r.text
        assert requests.get(f"{base}/a?xsize=60", timeout=30).headers.get("Retry-After")

        private_swift["start"]()
        deadline = time.monotonic() + 20
        while requests.get(f"{s.url}/readyz", timeout=30).status_code != 200:
            assert time.monotonic() < deadline, "server did not recover after Swift came back"
            time.sleep(0.2)
        assert requests.get(f"{base}/a?xsize=60").status_code == 200
        assert requests.get(f"{base}/b").status_code == 200
        assert sorted(requests.get(base).json()) == ["a", "b"]

"""Several image_repo servers on one real Swift, and Swift going away under them."""
from __future__ import annotations

import io
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from tests.fixtures.images import make_jpeg
from tests.fixtures.server import running_server
from tests.fixtures.swift import SwiftServer

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


def test_two_servers_share_the_containers(swift_server, swift_container_pair, tmp_path):
    originals, cache = swift_container_pair
    ttl = 1.0
    # B waits for Swift's word on an original past its TTL, however slow: what is under test
    # is that a replace is seen after the TTL, not how a slow Swift is ridden out.
    b_config = server_config(swift_server, originals, cache, tmp_path / "b", original_stat_ttl=ttl,
                             original_check_wait=0)
    with running_server(server_config(swift_server, originals, cache, tmp_path / "a"), tmp_path / "sa", workers=1) as a, \
         running_server(b_config, tmp_path / "sb", workers=1) as b:
        photo = make_jpeg(400, 300)
        r = requests.post(f"{a.url}/images/shared/photo.jpg", files={"file": ("photo.jpg", photo)})
        assert r.status_code == 200
        # Read after write through the other server, at once.
        assert requests.get(f"{b.url}/images").json() == ["shared/photo"]
        assert requests.get(f"{b.url}/images/shared/photo").status_code == 200

        made = requests.get(f"{a.url}/images/shared/photo?xsize=64")
        assert made.headers["X-Image-Repo-Cache"] == "miss"
        # The cache store's copy is written behind the answer; url=true writes it before its own.
        assert requests.get(f"{a.url}/images/shared/photo?xsize=64&url=true").status_code == 200
        before = derivations(b.url)
        served = requests.get(f"{b.url}/images/shared/photo?xsize=64")
        assert served.headers["X-Image-Repo-Cache"] == "hit" and served.content == made.content
        assert derivations(b.url) == before, "the other server must not derive it again"

        # Replace through A: after original_stat_ttl, B never serves the old derivative.
        assert requests.put(f"{a.url}/images/shared/photo", data=make_jpeg(300, 400)).status_code == 200
        time.sleep(ttl + 0.2)  # a lower bound: B's TTL has surely run out, however busy the machine
        for _ in range(3):
            fresh = requests.get(f"{b.url}/images/shared/photo?xsize=64")
            assert Image.open(io.BytesIO(fresh.content)).size == (64, 85)


def test_swift_stopped_mid_run(private_swift, tmp_path):
    swift: SwiftServer = private_swift.server
    # Containers of this test's own: the module's Swift keeps its data between tests (and --count runs).
    suffix = uuid.uuid4().hex[:8]
    config = server_config(swift, f"originals-{suffix}", f"cache-{suffix}", tmp_path / "data")
    with running_server(config, tmp_path / "s", workers=1) as s:
        base = f"{s.url}/images"
        for name in ("a", "b"):
            assert requests.put(f"{base}/{name}", data=make_jpeg(200, 150)).status_code == 201
        warm = requests.get(f"{base}/a?xsize=50")
        assert warm.status_code == 200

        private_swift.stop()
        cached = requests.get(f"{base}/a?xsize=50", timeout=30)
        assert cached.status_code == 200 and cached.content == warm.content
        for url in (f"{base}/a?xsize=60", f"{base}/b", f"{base}", f"{s.url}/readyz"):
            r = requests.get(url, timeout=30)
            assert r.status_code == 503, url
            assert r.json()["message"] and "Traceback" not in r.text
        assert requests.get(f"{base}/a?xsize=60", timeout=30).headers.get("Retry-After")

        private_swift.start()  # returns once Swift answers: the very next request must find it
        assert requests.get(f"{s.url}/readyz", timeout=30).status_code == 200, "no recovery without a restart"
        assert requests.get(f"{base}/a?xsize=60").status_code == 200
        assert requests.get(f"{base}/b").status_code == 200
        assert sorted(requests.get(base).json()) == ["a", "b"]

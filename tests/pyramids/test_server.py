"""Huge images through real Gunicorn: built in the background after an upload, or by the CLI batch."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from tests.fixtures.server import running_server

from .conftest import write_pattern

pytestmark = pytest.mark.slow


def wait_for_state(url: str, states: set[str], seconds: float = 120) -> dict:
    """Poll meta=true until the pyramid reaches one of ``states`` (a condition, not a timing)."""
    deadline = time.monotonic() + seconds
    while True:
        pyramid = requests.get(url + "?meta=true", timeout=30).json()["pyramid"]
        if pyramid["state"] in states or time.monotonic() > deadline:
            return pyramid
        time.sleep(0.2)


def huge_server(tmp_path, builders: int):
    """A server (to enter) where a 6000 x 2000 upload is beyond max_pixels, and that upload's bytes."""
    data = write_pattern(tmp_path / "huge.jpg", 6000, 2000, "rgb").read_bytes()
    config = {"data_dir": str(tmp_path / "data"), "max_pixels": 4_000_000, "pyramid_builders": builders}
    return running_server(config, tmp_path / "server"), data


def test_an_upload_is_built_in_the_background_and_served(tmp_path):
    serving, data = huge_server(tmp_path, builders=1)
    with serving as server:
        url = f"{server.url}/images/pano"
        assert requests.put(url, data=data, timeout=30).status_code == 201
        pyramid = wait_for_state(url, {"ready", "failed"})
        assert pyramid["state"] == "ready", (pyramid, server.log_tail())
        assert pyramid["levels"] == 5 and pyramid["tile_size"] == [512, 512]
        thumb = requests.get(url + "?thumbnail=true", timeout=30)
        assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
        assert "Traceback" not in server.log.read_text()


def test_without_builders_a_huge_image_is_503_until_the_cli_builds_it(tmp_path):
    serving, data = huge_server(tmp_path, builders=0)
    with serving as server:
        url = f"{server.url}/images/maps/a"
        assert requests.put(url, data=data, timeout=30).status_code == 201
        assert requests.put(f"{server.url}/images/maps/small", data=write_pattern(
            tmp_path / "s.jpg", 800, 600).read_bytes(), timeout=30).status_code == 201
        pending = requests.get(url + "?xsize=500", timeout=30)
        assert pending.status_code == 503 and pending.headers["Retry-After"] == "30"
        assert "pyramid" in pending.json()["message"]
        assert requests.get(url + "?meta=true", timeout=30).json()["pyramid"] == {"state": "queued"}
        cli = subprocess.run([sys.executable, "-m", "image_repo", "-y", str(tmp_path / "server" / "config.yml"),
                              "pyramids", "build", "--all", "-p", "2"], capture_output=True, text=True, timeout=300, check=False)
        assert cli.returncode == 0, cli.stderr
        assert "pyramids: 100%" in cli.stderr and "1/1" in cli.stderr  # the small one needs none
        assert wait_for_state(url, {"ready", "failed"})["state"] == "ready"
        sized = requests.get(url + "?xsize=500", timeout=30)
        assert sized.status_code == 200 and sized.headers["Content-Type"] == "image/jpeg"
        again = subprocess.run([sys.executable, "-m", "image_repo", "-y", str(tmp_path / "server" / "config.yml"),
                                "pyramids", "build", "maps/small"], capture_output=True, text=True, timeout=300, check=False)
        assert again.returncode == 0 and "no pyramid needed" in again.stderr

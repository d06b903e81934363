"""The Dockerfile built and its entrypoint run as the image's user, against the suite's real Swift.

Marked ``container`` (``-m "not container"`` leaves it out). Needs root with podman, buildah
and mmdebstrap (.ci/run installs them); without them it is skipped, or fails when
``CONTAINER_REQUIRED=1`` (CI). Cold (no stand-in base yet) it takes about 2 minutes; then
about 1 (see README, "The container test").
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from PIL import Image

from tests.container.engine import Engine, cache_dir, missing_tools
from tests.container.envfile import parse_env_file
from tests.fixtures.images import make_jpeg
from tests.fixtures.server import Server, free_port, wait_healthy
from tests.fixtures.swift import SwiftServer

pytestmark = [pytest.mark.container, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TOKEN = "container-write-token"
CACHE_CONTROL = "public, max-age=60 # part of the value: env-files have no inline comments"


@pytest.fixture(scope="module")
def engine() -> Engine:
    missing = missing_tools()
    why = f"needs {', '.join(missing)} (installed by .ci/run)" if missing else "needs root" if os.geteuid() else ""
    if why:
        if os.environ.get("CONTAINER_REQUIRED") == "1":
            pytest.fail(f"the container test is required (CONTAINER_REQUIRED=1) but {why}", pytrace=False)
        pytest.skip(why)
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    return Engine(root)


@pytest.fixture(scope="module")
def image(engine: Engine) -> Iterator[str]:
    """The Dockerfile built unchanged on the stand-in base (only PYTHON_IMAGE names it)."""
    base = engine.standin()
    tag = f"localhost/image_repo-test:{uuid.uuid4().hex[:12]}"
    engine.podman("build", "--isolation", "chroot", "--layers=false", "--format", "docker", "--pull=never",
                  "--build-arg", f"PYTHON_IMAGE={base}", "-t", tag, "-f", str(REPO / "Dockerfile"), str(REPO),
                  timeout=1200)
    yield tag
    engine.podman("rmi", "-f", tag, check=False)


class Entrypoint:
    """The image's entrypoint in a buildah working container, as the image's USER, with an env-file's variables."""

    def __init__(self, engine: Engine, image: str, env: list[tuple[str, str]], log: Path) -> None:
        self.engine, self.config, self.env, self.log = engine, engine.config(image), env, log
        self.container = engine.buildah("from", "--pull-never", "--name", f"image_repo-test-{uuid.uuid4().hex[:8]}",
                                        image).stdout.strip()

    def command(self, *args: str) -> list[str]:
        options = ["run", "--isolation", "chroot", "--user", self.config["User"]]
        for key, value in self.env:
            options += ["--env", f"{key}={value}"]
        return self.engine.buildah_command(*options, self.container, "--", *self.config["Entrypoint"], *args)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True, timeout=120, check=False,
                              stdin=subprocess.DEVNULL)

    def start(self) -> subprocess.Popen[bytes]:
        with open(self.log, "wb") as out:
            return subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)

    def remove(self) -> None:
        self.engine.buildah("rm", self.container, check=False)


def stop(process: subprocess.Popen[bytes], port: int) -> None:
    """As ``docker stop`` does: SIGTERM to the server (Gunicorn's master, the entrypoint's exec), so it
    shuts down gracefully; then, if anything is left, the whole buildah process group."""
    masters = [pid for pid, parent in serving(port).items() if parent not in serving(port)]
    for pid in masters:
        os.kill(pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def serving(port: int) -> dict[int, int]:
    """pid -> parent pid of the processes whose command line binds ``port`` (Gunicorn's master and workers)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        if f"0.0.0.0:{port}" in cmdline and "buildah" not in cmdline:
            found[int(entry)] = int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])
    return found


def container_metrics_dirs() -> set[Path]:
    """The metrics directories on the host's /dev/shm made by the image's user (not other tests' servers)."""
    found = set()
    for path in Path("/dev/shm").glob("image_repo-metrics-*"):
        try:
            if path.stat().st_uid == 10001:
                found.add(path)
        except OSError:
            pass
    return found


def uids_serving(port: int) -> set[int]:
    """The real uids of the processes serving ``port``."""
    uids = set()
    for pid in serving(port):
        status = Path(f"/proc/{pid}/status").read_text()
        uids.add(int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]))
    return uids


def test_the_image_serves_from_swift(engine: Engine, image: str, swift_server: SwiftServer,
                                     swift_container_pair: tuple[str, str], tmp_path: Path) -> None:
    originals, cache = swift_container_pair
    port = free_port()
    url_key = f"ctr-{uuid.uuid4().hex}"
    env_file = (
        "# The container test's env-file, in Docker's syntax.\n"
        f"SWIFT_P={originals}\n"
        f"SWIFT_C={cache}\n"
        f"URL_KEY={url_key}\n"
        f"ST_AUTH={swift_server.auth_url}\n"
        f"ST_USER={swift_server.user}\n"
        "# The key is not in the file: a bare name takes it from the environment.\n"
        "ST_KEY\n"
        f"PORT={port}\n"
        f"IMAGE_REPO_WRITE_TOKENS={TOKEN}\n"
        f"IMAGE_REPO_CACHE_CONTROL={CACHE_CONTROL}\n"
    )
    env = parse_env_file(env_file.encode(), {"ST_KEY": swift_server.key})
    assert dict(env)["ST_KEY"] == swift_server.key
    entry = Entrypoint(engine, image, env, tmp_path / "server.log")
    try:
        assert entry.config["User"] == "10001"
        # The documented first step, from the image itself: Swift takes TempURLs signed with URL_KEY.
        keyed = entry.run("swift", "set-temp-url-key", "--on", "container")
        assert keyed.returncode == 0 and "TempURL key set on the container" in keyed.stdout, keyed.stdout + keyed.stderr
        assert url_key not in keyed.stdout + keyed.stderr
        shm_before = container_metrics_dirs()
        process = entry.start()
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(Server(base, process, tmp_path / "server.log"), timeout=120)
            assert uids_serving(port) == {10001}, "the server runs as the image's USER only"
            _upload_thumbnail_and_temp_url(base, swift_server)
        finally:
            stop(process, port)
        # Under buildah's chroot the container shares the host's /dev/shm: the server's metrics
        # directory there must be gone once it stopped as docker stop stops it.
        assert container_metrics_dirs() <= shm_before
    finally:
        entry.remove()


def _upload_thumbnail_and_temp_url(base: str, swift: SwiftServer) -> None:
    photo = make_jpeg(640, 480)
    refused = requests.post(f"{base}/images/ctr/photo.jpg", files={"file": ("photo.jpg", photo)}, timeout=30)
    assert refused.status_code == 401  # IMAGE_REPO_WRITE_TOKENS reached the server
    r = requests.post(f"{base}/images/ctr/photo.jpg", files={"file": ("photo.jpg", photo, "image/jpeg")},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert r.status_code == 200 and r.json() == "ctr/photo", r.text
    original = requests.get(f"{base}/images/ctr/photo?original=true", headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=30)
    assert original.content == photo  # original=true takes a write token where writes need one

    thumb = requests.get(f"{base}/images/ctr/photo?thumbnail=true", timeout=30)
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
    assert thumb.headers["Cache-Control"] == CACHE_CONTROL  # the env-file's value, taken literally
    shown = Image.open(io.BytesIO(thumb.content))
    assert shown.format == "JPEG" and shown.size == (50, 37)

    signed = requests.get(f"{base}/images/ctr/photo?thumbnail=true&url=true", timeout=30).json()
    url = signed["url"]
    assert url.startswith(swift.storage_url + "/") and "temp_url_sig" in parse_qs(urlsplit(url).query)
    fetched = requests.get(url, timeout=30)  # from Swift itself, which checks the signature
    assert fetched.status_code == 200 and Image.open(io.BytesIO(fetched.content)).size == (50, 37)
    sig = parse_qs(urlsplit(url).query)["temp_url_sig"][0]
    forged = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    assert requests.get(forged, timeout=30).status_code == 401

    metrics = requests.get(f"{base}/metrics", timeout=30)
    assert 'image_repo_http_requests_total{method="POST",route="/images/<path:path>",status="200"}' in metrics.text

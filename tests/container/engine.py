"""Podman and buildah as root, without Docker and without a registry: a stand-in base, builds, runs.

``podman build --isolation chroot`` builds the Dockerfile; ``buildah run --isolation chroot``
runs a built image's entrypoint (``podman run`` needs rlimits these machines do not grant).
Both use one storage of their own (``Engine.root``), kept between runs so the stand-in base
is made once: ``python:3.11-slim`` cannot be pulled here, so it is made from Debian packages
with mmdebstrap (bookworm, python3 + python3-venv + python3-pip, as the real image has Python
and pip), trusting the host's extra CA certificates (packages come through an inspecting
proxy) and with Debian's externally-managed marker removed (pip installs into the system
Python, as in the real image). Its tag carries a hash of the recipe and of those
certificates, so a change of either makes a new one.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

TOOLS = ("podman", "buildah", "mmdebstrap")
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates", "passwd")
"""passwd: useradd, which the slim image has (it is not in mmdebstrap's apt variant)."""
HOST_CERTS = Path("/usr/local/share/ca-certificates")
CHANGES = (
    # What python:3.11-slim's configuration says that a bare rootfs does not.
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
STANDIN = "localhost/image_repo-test-python"


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def cache_dir() -> Path:
    """Where the engine's storage lives between runs (IMAGE_REPO_TEST_CONTAINERS, else ~/.cache)."""
    given = os.environ.get("IMAGE_REPO_TEST_CONTAINERS")
    return Path(given) if given else Path.home() / ".cache" / "image_repo-test" / "containers"


@dataclass
class Engine:
    root: Path

    def _global(self) -> list[str]:
        return ["--root", str(self.root / "storage"), "--runroot", str(self.root / "run"), "--storage-driver", "overlay"]

    def podman(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["podman", *self._global(), *args], timeout, check)

    def buildah(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run(["buildah", *self._global(), *args], timeout, check)

    def buildah_command(self, *args: str) -> list[str]:
        return ["buildah", *self._global(), *args]

    def exists(self, image: str) -> bool:
        return self.podman("image", "exists", image, check=False).returncode == 0

    def config(self, image: str) -> dict[str, Any]:
        """The image's configuration: User, Entrypoint, Env, WorkingDir, ExposedPorts..."""
        return dict(json.loads(self.podman("image", "inspect", "--format", "{{json .Config}}", image).stdout))

    def standin(self) -> str:
        """The stand-in for python:3.11-slim, made now if this storage does not have it yet."""
        tag = f"{STANDIN}:3.11-{recipe_hash()}"
        with FileLock(str(self.root / "standin.lock")):
            if self.exists(tag):
                return tag
            with tempfile.TemporaryDirectory(prefix="standin-") as tmp:
                tarball = Path(tmp) / "rootfs.tar"
                _run(["mmdebstrap", "--variant=apt", "--include=" + ",".join(PACKAGES),
                      "--customize-hook=" + _TRUST_HOST_CERTS,
                      '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
                      SUITE, str(tarball)], 900, True)
                changes = [arg for change in CHANGES for arg in ("--change", change)]
                self.podman("import", *changes, str(tarball), tag)
            for old in self.podman("images", "--format", "{{.Repository}}:{{.Tag}}", STANDIN).stdout.split():
                if old != tag:  # an earlier recipe's: only the current one is kept
                    self.podman("rmi", old, check=False)
            return tag


# The host's extra certificates, installed in the new root the way update-ca-certificates takes them.
_TRUST_HOST_CERTS = (
    'mkdir -p "$1/usr/local/share/ca-certificates" && '
    f'if [ -d {HOST_CERTS} ]; then cp -r {HOST_CERTS}/. "$1/usr/local/share/ca-certificates/"; fi && '
    'chroot "$1" update-ca-certificates'
)


def recipe_hash() -> str:
    """Of everything the stand-in is made from: the recipe and the host certificates it trusts."""
    h = hashlib.sha256(repr((SUITE, PACKAGES, CHANGES, _TRUST_HOST_CERTS)).encode())
    if HOST_CERTS.is_dir():
        for path in sorted(p for p in HOST_CERTS.rglob("*") if p.is_file()):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _run(command: list[str], timeout: float, check: bool) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise RuntimeError(f"{' '.join(command[:4])}... exited {done.returncode}:\n{tail}")
    return done

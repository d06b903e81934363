"""IIPImage, the peer of the tile benchmark: Debian's ``iipimage-server`` behind lighttpd's FastCGI.

iipsrv speaks only FastCGI, so lighttpd (also Debian's) serves HTTP on loopback and runs
one iipsrv process per core (``max-procs``), as image_repo runs one worker per core. Its
images are read from local files (``FILESYSTEM_PREFIX``): the same pyramidal TIFF image_repo
serves. Installed with apt-get when missing and we are root (like wrk); only processes we
started are ever signalled (lighttpd in its own session; it stops its FastCGI children).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import servers

IIPSRV = Path("/usr/lib/iipimage-server/iipsrv.fcgi")
PACKAGES = ("iipimage-server", "lighttpd")


def ensure_installed(log, *, install: bool = True) -> str | None:
    """None when iipsrv and lighttpd are there (installing them if we may), else why not."""
    if IIPSRV.exists() and shutil.which("lighttpd"):
        return None
    if not install:
        return "iipimage-server or lighttpd missing (--no-install)"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "iipimage-server or lighttpd missing, and cannot apt-get install them (not root or no apt)"
    log("  installing IIPImage and lighttpd (apt-get install -y iipimage-server lighttpd)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-qq", *PACKAGES], ["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        subprocess.run(cmd, env=env, capture_output=True, timeout=300, check=False)
        if IIPSRV.exists() and shutil.which("lighttpd"):
            return None
    return "could not apt-get install iipimage-server and lighttpd"


def iiif_prefix(image: Path) -> str:
    """The URL prefix of ``image`` on the peer: ``/fcgi-bin/iipsrv.fcgi?IIIF=<file>``."""
    return f"/fcgi-bin/iipsrv.fcgi?IIIF={image.name}"


def start(image: Path, workdir: Path, *, processes: int) -> servers.Running:
    """lighttpd on a free loopback port, with ``processes`` iipsrv FastCGI processes over ``image``'s directory."""
    workdir, image = workdir.resolve(), image.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = servers.free_port()
    docroot = workdir / "www"
    docroot.mkdir(exist_ok=True)
    conf = workdir / "lighttpd.conf"
    conf.write_text(f"""
server.modules = ("mod_fastcgi")
server.bind = "127.0.0.1"
server.port = {port}
server.document-root = "{docroot}"
server.errorlog = "{workdir / 'lighttpd-error.log'}"
server.pid-file = "{workdir / 'lighttpd.pid'}"
server.max-connections = 1024
server.max-keep-alive-requests = 1000
fastcgi.server = ( "/fcgi-bin/iipsrv.fcgi" => ((
    "socket" => "{workdir / 'iipsrv.sock'}",
    "check-local" => "disable",
    "min-procs" => {processes},
    "max-procs" => {processes},
    "bin-path" => "{IIPSRV}",
    "bin-environment" => (
        "FILESYSTEM_PREFIX" => "{image.parent}/",
        "LOGFILE" => "{workdir / 'iipsrv.log'}",
        "VERBOSITY" => "0",
        "MAX_IMAGE_CACHE_SIZE" => "10",
        "IIIF_VERSION" => "3",
        "CODEC_PASSTHROUGH" => "1",
        "JPEG_QUALITY" => "85",
        "MAX_CVT" => "5000"
    )
)))
""")
    cmd = ["lighttpd", "-D", "-f", str(conf)]
    return servers.start("iipimage", cmd, port, workdir / "lighttpd.log",
                         ready_path=f"{iiif_prefix(image)}/info.json", cwd=workdir)

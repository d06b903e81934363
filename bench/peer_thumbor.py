"""thumbor, the peer we compare uncached derivation against: own virtualenv, file loader, no caches.

Configured as in shared/reference/perf.md section 4: the file loader reads the very files
image_repo serves, no storage of originals and no result storage (so every request
derives, like a cold request to us), Pillow engine with LANCZOS, JPEG q85.
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from servers import Running, free_port, start

VERSION_SPEC = "thumbor==7.8.*"
"""7.8.0 is the version perf.md measured (cp311 wheel, pins Pillow 12.3)."""


def ensure_venv(venv: Path, log: Callable[[str], None] = print, timeout: float = 600.0) -> tuple[Path | None, str]:
    """(path of the thumbor command, "") once installed, or (None, why not)."""
    exe = venv / "bin" / "thumbor"
    marker = venv / ".installed"
    if exe.exists() and marker.exists() and marker.read_text() == VERSION_SPEC:
        return exe, ""
    log(f"  installing {VERSION_SPEC} into {venv} (first run only)")
    try:
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        done = subprocess.run([*pip, VERSION_SPEC], check=False, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"pip install {VERSION_SPEC} took more than {timeout:.0f} s"
    except (OSError, subprocess.CalledProcessError) as e:
        return None, f"cannot create a virtualenv: {e}"
    if done.returncode != 0 or not exe.exists():
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        return None, f"pip install {VERSION_SPEC} failed: {tail}"
    marker.write_text(VERSION_SPEC)
    return exe, ""


CONFIG = """\
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = {root!r}
ALLOW_UNSAFE_URL = True
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = None
QUALITY = 85
ENGINE = 'thumbor.engines.pil'
PILLOW_RESAMPLING_FILTER = 'LANCZOS'
AUTO_WEBP = False
RESPECT_ORIENTATION = False
MAX_WIDTH = 0
MAX_HEIGHT = 0
"""


def start_thumbor(exe: Path, image_root: Path, workdir: Path, processes: int) -> Running:
    """``thumbor --processes N`` on loopback serving ``image_root`` with the file loader."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "thumbor.conf"
    conf.write_text(CONFIG.format(root=str(image_root)))
    port = free_port()
    cmd = [str(exe), "-i", "127.0.0.1", "-p", str(port), "-c", str(conf), "-l", "warning", "--processes", str(processes)]
    return start("thumbor", cmd, port, workdir / "thumbor.log", ready_path="/healthcheck", cwd=workdir, min_workers=processes)


def url_path(key: str, box: int) -> str:
    """thumbor's fit-in URL for an original's store key (fit-in comes before the size)."""
    return f"/unsafe/fit-in/{box}x{box}/{key}"

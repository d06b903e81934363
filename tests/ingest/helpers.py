"""Trees of small distinct images, the CLI run as a subprocess, and what the server holds."""
from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests
from PIL import Image

from tests.fixtures.waiting import wait_for


def make_tree(root: Path, count: int, *, depth: int = 2, seed: int = 0) -> dict[str, str]:
    """``count`` distinct small PNGs under ``root`` (relative path -> sha256)."""
    out: dict[str, str] = {}
    for i in range(count):
        rel = Path(f"plate{i % 3}") / (f"w{(i // 3) % 5}" if depth > 1 else "") / f"f{i}.png"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.new("RGB", (4 + i % 13, 4 + i % 7), ((i * 37 + seed) % 256, (i * 11) % 256, i // 256)).save(buf, "PNG")
        path.write_bytes(buf.getvalue())
        out[rel.as_posix()] = hashlib.sha256(buf.getvalue()).hexdigest()
    return out


def cli(*args: str, state: Path, env: dict[str, str] | None = None, timeout: float = 300,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "image_repo", *args], capture_output=True, text=True, check=False,
                          timeout=timeout, env=cli_env(state, env))


def cli_env(state: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "XDG_STATE_HOME": str(state), "NO_PROXY": "127.0.0.1,localhost", **(env or {})}


def stored_original(server: str, name: str) -> bytes | None:
    r = requests.get(f"{server}/images/{name}?original=true", timeout=30)
    return r.content if r.status_code == 200 else None


def assert_all_stored(server: str, tree: dict[str, str], prefix: str = "") -> None:
    """Every file is in the repository, byte for byte (compared by SHA-256 of what is served as original)."""
    names = set(requests.get(f"{server}/images", timeout=30).json())
    expected = {prefix + rel.rsplit(".", 1)[0] for rel in tree}
    assert expected <= names, sorted(expected - names)[:10]
    for rel, sha in tree.items():
        data = stored_original(server, prefix + rel.rsplit(".", 1)[0])
        assert data is not None and hashlib.sha256(data).hexdigest() == sha, rel


def job_records(state: Path) -> list[dict]:
    (path,) = (state / "image_repo" / "jobs").glob("*.jsonl")
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def done_count(state: Path) -> int:
    """Files the job file of ``state`` records as done."""
    jobs = list((state / "image_repo" / "jobs").glob("*.jsonl"))
    return jobs[0].read_text().count('"t":"done"') if jobs else 0


def run_and_kill(args: list[str], state: Path, kill_after: list[int]) -> None:
    """Run the CLI, SIGKILL it once its job file has recorded ``n`` files done, for each ``n`` in turn."""
    for n in kill_after:
        run = subprocess.Popen([sys.executable, "-m", "image_repo", *args], env=cli_env(state),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: run.poll() is not None or done_count(state) >= n, f"{n} files done")  # noqa: B023
        run.send_signal(signal.SIGKILL)
        run.wait()


def worker_peak_rss(server_pid: int) -> dict[int, int]:
    """Peak resident memory (VmHWM, bytes) of each child of the Gunicorn master ``server_pid``."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(server_pid) and "VmHWM" in fields:
            out[int(entry)] = int(fields["VmHWM"].split()[0]) * 1024
    return out

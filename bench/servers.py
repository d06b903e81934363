"""Start and stop the servers under test on loopback: image_repo, the bare WSGI app, thumbor.

Each runs in its own session (process group) so stopping it stops its workers too, and
only what we started is ever signalled.
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import procs
import yaml

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def workers(self) -> list[int]:
        return procs.workers(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class StartError(RuntimeError):
    pass


def start(
    name: str,
    cmd: list[str],
    port: int,
    log: Path,
    *,
    ready_path: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
    min_workers: int = 0,
) -> Running:
    """Run ``cmd`` and wait until ``GET ready_path`` answers 2xx-4xx and ``min_workers`` workers exist."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    running = Running(name, process, port, log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise StartError(f"{name} exited with {process.returncode}:\n{running.log_tail()}")
        if _answers(port, ready_path) and len(running.workers()) >= min_workers:
            return running
        if time.monotonic() > deadline:
            running.stop()
            raise StartError(f"{name} did not answer {ready_path} in {timeout:.0f} s:\n{running.log_tail()}")
        time.sleep(0.2)


def _answers(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        return conn.getresponse().status < 500
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def start_image_repo(python: str, config: dict, workdir: Path, *, workers: int, quiet: bool) -> Running:
    """``image_repo -y <config> serve --bind 127.0.0.1:<port>``, as the README starts it."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "config.yml"
    cfg.write_text(yaml.safe_dump(config))
    port = free_port()
    cmd = [python, "-m", "image_repo", "-y", str(cfg), "serve", "--bind", f"127.0.0.1:{port}"]
    if quiet:
        cmd.append("-q")
    return start("image_repo", cmd, port, workdir / "server.log", ready_path="/healthz", cwd=workdir, min_workers=workers)


def start_bare_wsgi(python: str, config: Path, body: bytes, etag: str, workdir: Path, *, workers: int, quiet: bool) -> Running:
    """The bare WSGI app under image_repo's own Gunicorn options for ``config`` (see bare_server.py)."""
    workdir.mkdir(parents=True, exist_ok=True)
    body_file = workdir / "body.bin"
    body_file.write_bytes(body)
    port = free_port()
    cmd = [python, str(BENCH_DIR / "bare_server.py"), str(config), f"127.0.0.1:{port}"] + (["--quiet"] if quiet else [])
    env = {"BENCH_BODY_FILE": str(body_file), "BENCH_ETAG": f'"{etag}"'}
    return start("bare-wsgi", cmd, port, workdir / "bare.log", ready_path="/", env=env, cwd=workdir, min_workers=workers)

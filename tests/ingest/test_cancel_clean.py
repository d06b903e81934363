"""Stopping a running ingest with --cancel, and `image_repo imports clean` expiring forgotten imports."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml

from tests.fixtures.server import running_server
from tests.fixtures.waiting import HANG, wait_for

from .helpers import cli, cli_env, job_records, make_tree


def sigterm_pending(pid: int) -> bool:
    """Whether SIGTERM waits, undelivered, for the (stopped) process ``pid``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("ShdPnd:", "SigPnd:")) and int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            return True
    return False


def staging_files(data: Path) -> list[Path]:
    return list((data / "originals" / ".imports").glob("*.data"))


def test_cancel_stops_the_running_job_and_leaves_no_staging(tmp_path):
    make_tree(tmp_path / "tree", 300)
    state = tmp_path / "state"
    config = {"data_dir": str(tmp_path / "data"), "url_key": "k"}
    with running_server(config, tmp_path / "server") as server:
        args = [sys.executable, "-m", "image_repo", "ingest", str(tmp_path / "tree"), "--server", server.url, "-p", "2"]
        run = subprocess.Popen(args, env=cli_env(state), stderr=subprocess.PIPE, text=True)

        def twenty_done() -> list[Path]:
            jobs = list((state / "image_repo" / "jobs").glob("*.jsonl"))
            return jobs if jobs and jobs[0].read_text().count('"t":"done"') >= 20 else []

        jobs = wait_for(twenty_done, "20 files stored")
        # The run stands still while the cancel command starts (a second or more on a busy machine,
        # time enough for the run to store all 300 and end before it is cancelled), and goes on
        # only once the cancel has asked it to stop.
        os.kill(run.pid, signal.SIGSTOP)
        cancel = subprocess.Popen([sys.executable, "-m", "image_repo", "ingest", "--cancel", jobs[0].stem, "--server",
                                   server.url], env=cli_env(state), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        wait_for(lambda: sigterm_pending(run.pid), "the cancel asked the run to stop")
        os.kill(run.pid, signal.SIGCONT)
        out, err = cancel.communicate(timeout=HANG)
        assert cancel.returncode == 0 and f"job {jobs[0].stem} cancelled" in out, err
        assert run.wait(timeout=HANG) == 1
        assert "stopped before the end" in run.stderr.read()
        records = job_records(state)
        assert records[-1]["t"] == "cancel"
        stored = len(requests.get(f"{server.url}/images", timeout=10).json())
        assert 20 <= stored < 300
        assert staging_files(tmp_path / "data") == []


def test_imports_clean_expires_forgotten_imports(tmp_path):
    """An import announced, uploaded and never completed is expired by ``imports clean`` once its
    lifetime has passed, and its staging object removed. The lifetime is an hour, so the upload
    URL stays good however slow the machine; the passing of the hour is told to the clean (the
    command's own code, with a ``now``), not waited for."""
    from image_repo.config.loading import load_settings
    from image_repo.web.app import create_app

    config = {"data_dir": str(tmp_path / "data"), "url_key": "k", "import_lifetime": 3600}
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))
    with running_server(config, tmp_path / "server") as server:
        body = b"\x89PNG" + b"0" * 50
        rec = requests.post(f"{server.url}/imports", timeout=HANG, json={
            "name": "forgotten", "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}).json()
        assert requests.put(rec["upload_url"], data=body, timeout=HANG).status_code == 201
        assert len(staging_files(tmp_path / "data")) == 1
        done = cli("-y", str(tmp_path / "config.yml"), "imports", "clean", state=tmp_path)
        assert done.returncode == 0 and "0 expired" in done.stdout, done.stdout + done.stderr
        assert len(staging_files(tmp_path / "data")) == 1, "within its lifetime an import is kept"

        imports = create_app(load_settings(str(tmp_path / "config.yml"))).extensions["image_repo_imports"]
        assert imports.clean(now=time.time() + 3601, wait=True)["expired"] == 1
        assert staging_files(tmp_path / "data") == []
        status = requests.get(f"{server.url}/imports/{rec['id']}", timeout=HANG).json()
        assert status["state"] == "failed" and status["reason"].startswith("expired")

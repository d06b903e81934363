"""``image_repo ingest`` through direct-to-store imports on a real server's file store."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from PIL import Image

from tests.fixtures.server import running_server

from .helpers import assert_all_stored, cli, job_records, make_tree, run_and_kill, stored_original, worker_peak_rss


@pytest.mark.slow
def test_killed_direct_ingest_resumes_without_resending_what_was_done(file_server, tmp_path):
    tree = make_tree(tmp_path / "tree", 400)
    state = tmp_path / "state"
    args = ["ingest", str(tmp_path / "tree"), "--server", file_server.url, "-p", "6"]
    run_and_kill(args, state, [50, 150])
    done_before = {r["path"] for r in job_records(state) if r["t"] == "done"}
    assert 0 < len(done_before) < 400
    final = cli(*args, state=state)
    assert final.returncode == 0, final.stderr
    records = job_records(state)
    last_run = max(i for i, r in enumerate(records) if r["t"] == "run")
    restarted = {r["path"] for r in records[last_run:] if r["t"] == "import"}
    assert not restarted & done_before, "files done before the kill were sent again"
    assert_all_stored(file_server.url, tree)
    again = cli(*args, state=state)
    assert again.returncode == 0 and "0 stored, 400 already stored" in again.stderr


def test_checksum_mismatch_through_the_direct_path_fails_that_file_only(file_server, tmp_path):
    make_tree(tmp_path / "tree", 4)
    (tmp_path / "tree" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 100)
    done = cli("ingest", str(tmp_path / "tree"), "--server", file_server.url, state=tmp_path / "s")
    assert done.returncode == 1 and "4 stored" in done.stderr and "broken.png" in done.stderr
    assert "broken" not in cli_names(file_server.url)


def cli_names(server: str) -> list[str]:
    import requests

    return list(requests.get(f"{server}/images", timeout=10).json())


@pytest.mark.slow
def test_a_200_mb_image_goes_through_without_the_server_holding_it(tmp_path):
    big = tmp_path / "tree" / "big.tif"
    big.parent.mkdir()
    Image.frombytes("RGB", (8200, 8200), os.urandom(1 << 16) * (8200 * 8200 * 3 // (1 << 16)) +
                    os.urandom(8200 * 8200 * 3 % (1 << 16))).save(big)
    size = big.stat().st_size
    assert size > 200 * 10**6
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    config = {"data_dir": str(tmp_path / "data"), "url_key": "k"}
    with running_server(config, tmp_path / "server", workers=1) as server:
        done = cli("ingest", str(tmp_path / "tree"), "--server", server.url, state=tmp_path / "state")
        assert done.returncode == 0, done.stderr + server.log_tail()
        peaks = worker_peak_rss(server.process.pid)
        assert peaks and max(peaks.values()) < size / 2, {p: v // 2**20 for p, v in peaks.items()}
        print("worker peak RSS MiB:", {p: v // 2**20 for p, v in peaks.items()})
        data = stored_original(server.url, "big")
        assert data is not None and hashlib.sha256(data).hexdigest() == digest
    assert Path(tmp_path / "data" / "originals" / "big.tif").stat().st_size == size

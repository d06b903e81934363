"""``image_repo upload`` and ``image_repo ingest`` over plain uploads, against a real server on the file store."""
from __future__ import annotations

import collections
import hashlib
import re
import signal
import subprocess
import sys

import pytest

from tests.fixtures.images import make_jpeg
from tests.fixtures.server import Server
from tests.fixtures.waiting import wait_for

from .helpers import assert_all_stored, cli, cli_env, done_count, job_records, make_tree, stored_original


def successful_posts(server: Server) -> collections.Counter[str]:
    lines = server.log.read_text(errors="replace").splitlines()
    return collections.Counter(m.group(1) for line in lines
                               if (m := re.search(r'"POST /images/(\S+)\.png HTTP/1.1" 200 ', line)))


def test_upload_sends_the_checksum_and_is_safe_to_repeat(file_server, tmp_path):
    photo = tmp_path / "p.jpg"
    photo.write_bytes(make_jpeg(64, 48))
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    for _ in range(2):
        done = cli("upload", str(photo), "dir/photo", "--server", file_server.url, state=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["dir/photo", sha]
    assert stored_original(file_server.url, "dir/photo") == photo.read_bytes()
    photo.write_bytes(make_jpeg(65, 48))
    done = cli("upload", str(photo), "dir/photo", "--server", file_server.url, state=tmp_path)
    assert done.returncode == 1 and "409" in done.stderr


def test_parallel_ingest_of_hundreds_then_nothing_to_do(file_server, tmp_path):
    tree = make_tree(tmp_path / "tree", 300)
    args = ["ingest", str(tmp_path / "tree"), "--server", file_server.url, "-p", "8", "--plain", "--prefix", "run1"]
    done = cli(*args, state=tmp_path / "state")
    assert done.returncode == 0, done.stderr
    assert "300 stored" in done.stderr
    assert_all_stored(file_server.url, tree, prefix="run1/")
    again = cli(*args, state=tmp_path / "state")
    assert again.returncode == 0 and "0 stored, 300 already stored" in again.stderr
    assert set(successful_posts(file_server).values()) == {1}


def test_failed_files_are_listed_and_the_exit_status_says_so(file_server, tmp_path):
    make_tree(tmp_path / "tree", 5)
    (tmp_path / "tree" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    done = cli("ingest", str(tmp_path / "tree"), "--server", file_server.url, "--plain", state=tmp_path / "s")
    assert done.returncode == 1
    assert "5 stored" in done.stderr and "1 failed" in done.stderr
    assert re.search(r"^  broken\.png: .*(415|422)", done.stderr, re.MULTILINE), done.stderr


@pytest.mark.slow
def test_killed_ingest_resumes_and_stores_every_file_once(file_server, tmp_path):
    tree = make_tree(tmp_path / "tree", 400)
    state = tmp_path / "state"
    args = [sys.executable, "-m", "image_repo", "ingest", str(tmp_path / "tree"), "--server", file_server.url,
            "-p", "4", "--plain"]
    for kill_after in (60, 180):
        run = subprocess.Popen(args, env=cli_env(state), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: run.poll() is not None or done_count(state) >= kill_after,  # noqa: B023
                 f"{kill_after} files done")
        run.send_signal(signal.SIGKILL)
        run.wait()
    done_before = {r["path"] for r in job_records(state) if r["t"] == "done"}
    assert 0 < len(done_before) < 400
    final = subprocess.run(args, check=False, env=cli_env(state), capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    records = job_records(state)
    last_run = max(i for i, r in enumerate(records) if r["t"] == "run")
    resent = {r["path"] for r in records[last_run:] if r["t"] == "sending"}
    assert not resent & done_before, "files done before the kill were sent again"
    assert_all_stored(file_server.url, tree)
    posts = successful_posts(file_server)
    assert len(posts) == 400 and set(posts.values()) == {1}, [n for n, c in posts.items() if c > 1]

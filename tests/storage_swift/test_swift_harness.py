"""The Swift harness itself: S3 on the same server, credentials file, restart keeps data, wipe."""
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from tests.fixtures.swift import SCRIPTS, SwiftServer, _free_ports, _parse

pytestmark = pytest.mark.swift


def test_s3api_sees_the_swift_account(swift_server: SwiftServer, swift_conn, swift_container):
    s3 = boto3.client("s3", endpoint_url=swift_server.s3_endpoint, region_name=swift_server.s3_region,
                      aws_access_key_id=swift_server.s3_access_key,
                      aws_secret_access_key=swift_server.s3_secret_key,
                      config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                                    proxies={}))
    s3.put_object(Bucket=swift_container, Key="from s3/ü.jpg", Body=b"s3 bytes")
    assert swift_conn.get_object(swift_container, "from s3/ü.jpg")[1] == b"s3 bytes"
    swift_conn.put_object(swift_container, "from swift.jpg", b"swift bytes")
    listed = s3.list_objects_v2(Bucket=swift_container)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["from s3/ü.jpg", "from swift.jpg"]


def test_env_file_holds_the_credentials(swift_server: SwiftServer):
    env_sh = Path(swift_server.state_dir, "env.sh")
    out = subprocess.run(["bash", "-c", f"source {env_sh} && env"], capture_output=True, text=True, check=True)
    env = dict(line.split("=", 1) for line in out.stdout.splitlines() if line.startswith("SWIFT_"))
    assert _parse("\n".join(f"{k}={v}" for k, v in env.items())) == swift_server
    assert swift_server.state_dir.startswith("/dev/shm/") or not os.access("/dev/shm", os.W_OK)


def _running(pid: str) -> bool:
    try:  # a zombie waiting for init to reap it has stopped too
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
def test_restart_keeps_data_and_stop_wipes(swift_server: SwiftServer):
    # A second, private Swift (the session's must not stop): start, write, stop, start, read, wipe.
    state = f"/dev/shm/image_repo-swift-harness-{uuid.uuid4().hex[:8]}"
    ports = _free_ports(4)
    env = dict(os.environ, SWIFT_STATE_DIR=state, SWIFT_VENV=swift_server.venv,
               **{f"SWIFT_{n}_PORT": str(p) for n, p in zip(("PROXY", "OBJECT", "CONTAINER", "ACCOUNT"), ports)})

    def run(script: str, **extra: str) -> str:
        done = subprocess.run([str(SCRIPTS / script)], env={**env, **extra}, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    try:
        server = _parse(run("start-swift.sh"))
        server.connection().put_container("keep")
        server.connection().put_object("keep", "o.jpg", b"kept")
        pids = [p.read_text().strip() for p in Path(state, "run").glob("*.pid")]
        assert len(pids) == 4
        run("stop-swift.sh")
        assert not any(_running(pid) for pid in pids)
        assert swift_server.connection().head_account()  # the session's Swift is untouched
        server = _parse(run("start-swift.sh"))
        assert server.connection().get_object("keep", "o.jpg")[1] == b"kept"
    finally:
        run("stop-swift.sh", SWIFT_WIPE="1")
    assert not os.path.exists(state)

"""Direct imports on the real Swift: the client PUTs to a Swift TempURL, the server copies server-side."""
from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.fixtures.server import Server, running_server
from tests.fixtures.swift import SwiftServer, delete_container
from tests.fixtures.waiting import HANG, wait_for

from .helpers import assert_all_stored, cli, job_records, make_tree, run_and_kill

pytestmark = pytest.mark.swift


@pytest.fixture
def swift_repo(swift_server: SwiftServer, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """A server whose originals are in a new Swift container; TempURL key set by `image_repo swift set-temp-url-key`."""
    container = f"ingest-{uuid.uuid4().hex[:10]}"
    config = {"store": f"swift://{container}", "data_dir": str(tmp_path / "data"), "url_key": "test-url-key",
              "swift": {"auth_url": swift_server.auth_url, "auth_version": "1", "user": swift_server.user,
                        "key": swift_server.key, "retries": 1}}
    config_file = tmp_path / "swift.yml"
    config_file.write_text(yaml.safe_dump(config))
    done = cli("-y", str(config_file), "swift", "set-temp-url-key", "--on", "container", state=tmp_path)
    assert done.returncode == 0 and "TempURL key set on the container" in done.stdout, done.stderr
    assert "test-url-key" not in done.stdout + done.stderr
    try:
        with running_server(config, tmp_path / "server") as server:
            yield server, container
    finally:
        delete_container(swift_server.connection(), container)


def staging_left(swift_server: SwiftServer, container: str) -> list[str]:
    _, objects = swift_server.connection().get_container(container, prefix=".imports/", full_listing=True)
    return [o["name"] for o in objects if o["name"].endswith(".data")]


def test_direct_import_through_a_swift_tempurl(swift_repo, swift_server):
    server, container = swift_repo
    assert requests.get(f"{server.url}/imports", timeout=10).json()["direct"] is True
    data = Path(__file__).read_bytes()  # not an image: the import must fail and leave nothing
    photo = make_tree_file()
    for body, ok in ((photo, True), (data, False)):
        rec = requests.post(f"{server.url}/imports", timeout=10, json={
            "name": f"d/{'ok' if ok else 'bad'}", "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}).json()
        assert rec["upload_url"].startswith(swift_server.storage_url.split("/v1/")[0])
        headers = {"Content-Type": "image/png", **rec["upload_headers"]}
        put = requests.put(rec["upload_url"], data=body, headers=headers, timeout=30)
        assert put.status_code == 201
        done = requests.put(f"{server.url}/imports/{rec['id']}", json={"complete": True}, timeout=HANG).json()
        if done["state"] == "processing":  # the server waits 20 s for it; a busy machine may need longer
            status_url = f"{server.url}/imports/{rec['id']}"
            done = wait_for(lambda: (now := requests.get(status_url, timeout=HANG).json())  # noqa: B023 - called at once
                            ["state"] != "processing" and now, "the import finished")
        assert done["state"] == ("done" if ok else "failed"), done
    assert requests.get(f"{server.url}/images", timeout=10).json() == ["d/ok"]
    assert requests.get(f"{server.url}/images/d/ok?original=true", timeout=10).content == photo
    head = swift_server.connection().head_object(container, "d/ok.png")
    assert head["x-object-meta-sha256"] == hashlib.sha256(photo).hexdigest()
    assert head["content-type"] == "image/png"
    assert staging_left(swift_server, container) == []


def make_tree_file() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (20, 10), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


def test_ingest_into_swift_killed_resumed_and_a_bad_file(swift_repo, swift_server, tmp_path):
    """A run SIGKILLed with imports in flight, then run again: nothing done is imported twice,
    every file ends stored whole, the bad one fails with its reason, no staging is left.

    40 files, killed once 12 are done with 6 at once in flight: every case of the resume (done,
    in flight, never begun) at ~2 s a Swift import on a loaded machine; 150 files proved no more
    and took two minutes."""
    server, container = swift_repo
    tree = make_tree(tmp_path / "tree", 40)
    (tmp_path / "tree" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 100)
    state = tmp_path / "state"
    args = ["ingest", str(tmp_path / "tree"), "--server", server.url, "-p", "6"]
    run_and_kill(args, state, [12])
    done_before = {r["path"] for r in job_records(state) if r["t"] == "done"}
    assert 12 <= len(done_before) < 41, "killed part way"
    final = cli(*args, state=state)
    assert final.returncode == 1 and "broken.png" in final.stderr and ", 1 failed;" in final.stderr, final.stderr
    records = job_records(state)
    last_run = max(i for i, r in enumerate(records) if r["t"] == "run")
    assert not {r["path"] for r in records[last_run:] if r["t"] == "import"} & done_before
    assert_all_stored(server.url, tree)
    assert staging_left(swift_server, container) == []
    first = min(tree).rsplit(".", 1)[0] + ".png"
    assert swift_server.connection().head_object(container, first)["content-type"] == "image/png"


def test_cancel_removes_unfinished_staging_objects(swift_repo, swift_server, tmp_path):
    server, container = swift_repo
    body = make_tree_file()
    rec = requests.post(f"{server.url}/imports", timeout=10, json={
        "name": "c", "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}).json()
    requests.put(rec["upload_url"], data=body, headers=rec["upload_headers"], timeout=30).raise_for_status()
    assert staging_left(swift_server, container) == [f".imports/{rec['id']}.data"]
    job = tmp_path / "job.jsonl"
    job.write_text(json.dumps({"t": "import", "path": "c.png", "id": rec["id"]}) + "\n")
    done = cli("ingest", "--cancel", str(job), "--server", server.url, state=tmp_path)
    assert done.returncode == 0 and "1 unfinished import(s) removed" in done.stdout, done.stderr
    assert staging_left(swift_server, container) == []
    status = requests.get(f"{server.url}/imports/{rec['id']}", timeout=10).json()
    assert status["state"] == "failed" and status["reason"] == "cancelled"
    assert requests.get(f"{server.url}/images", timeout=10).json() == []

"""``image_repo doctor`` against the file store and the real Swift (and its S3 API), passing and failing."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from image_repo.config.settings import Settings
from image_repo.imaging import formats
from image_repo.ops import doctor
from image_repo.storage.swift import SwiftStore, set_temp_url_key
from tests.fixtures.swift import SwiftServer
from tests.s3.fixtures import new_bucket_name, remove_bucket

REPO = Path(__file__).resolve().parents[2]


def run_doctor(config: dict, workdir: Path, *, user: int | None = None) -> subprocess.CompletedProcess[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "image_repo", "-y", str(path), "doctor"]
    if user is not None:  # the same command as another user (only root can do that)
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(REPO)}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=workdir, env=env, check=False)


def lines(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """check name -> its whole line."""
    out = {}
    for line in done.stdout.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("ok", "warn", "FAIL"):
            out[rest.strip().split(": ", 1)[0]] = line
    return out


def swift_config(server: SwiftServer, tmp_path: Path, url_key: str, originals: str, cache: str) -> dict:
    return {"data_dir": str(tmp_path / "data"), "url_key": url_key, "store": f"swift://{originals}",
            "cache_store": f"swift://{cache}",
            "swift": {"auth_url": server.auth_url, "auth_version": "1", "user": server.user, "key": server.key,
                      "retries": 0, "timeout": 5}}


def test_file_store_passes_and_leaves_nothing(tmp_path: Path) -> None:
    done = run_doctor({"data_dir": str(tmp_path / "data"), "url_key": "k"}, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    found = lines(done)
    for name in (f"store file://{tmp_path}/data/originals", f"cache_store file://{tmp_path}/data/cache",
                 "temp_url GET cache_store", "codecs", "codec AVIF", "codec JPEG 2000", "codec HEIF",
                 "directory store", "directory cache_store"):
        assert found[name].startswith("ok "), found.get(name, done.stdout)
    assert found["pyvips"].split()[0] in ("ok", "warn")
    assert done.stdout.splitlines()[-1].endswith(", 0 failed")
    left = [p for p in (tmp_path / "data").rglob("*") if "doctor" in p.name]
    assert left == []


def test_config_errors_and_missing_url_key(tmp_path: Path) -> None:
    bad = run_doctor({"data_dir": str(tmp_path / "data"), "thumbnail_default_size": [0, 5]}, tmp_path / "bad")
    assert bad.returncode == 1 and bad.stdout.startswith("FAIL config: thumbnail_default_size"), bad.stdout
    keyless = run_doctor({"data_dir": str(tmp_path / "data")}, tmp_path / "keyless")
    assert keyless.returncode == 0
    assert lines(keyless)["temp_url"].startswith("warn temp_url: url_key is not set")


def test_unwritable_data_directories_fail(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    done = run_doctor({"data_dir": str(blocker / "data"), "url_key": "k"}, tmp_path / "w")
    assert done.returncode == 1
    assert "FAIL store file://" in done.stdout and "cannot be opened" in done.stdout
    assert lines(done)["directory store"].startswith("FAIL directory store:")
    open_to_all = tmp_path / "open"
    open_to_all.mkdir(mode=0o777)
    open_to_all.chmod(0o777)
    check = doctor.check_directory("disk_cache", str(open_to_all))
    assert check.status == doctor.WARN and "writable by every local user" in check.detail


@pytest.fixture
def unwritable(tmp_path: Path):
    """A directory this user cannot create files in: mode 0555, and immutable when we are root (root
    ignores modes; chattr +i holds for root too)."""
    path = tmp_path / "locked"
    path.mkdir()
    path.chmod(0o555)
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"root, and no immutable attribute here to lock a directory with: {done.stderr.strip()}")
    yield path
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=False)
    path.chmod(0o755)


def test_a_directory_this_user_cannot_write(tmp_path: Path, unwritable: Path) -> None:
    config = {"data_dir": str(tmp_path / "data"), "cache_store": f"file://{unwritable}", "url_key": "k"}
    done = run_doctor(config, tmp_path / "run")
    assert done.returncode == 1, done.stdout + done.stderr
    found = lines(done)
    assert found["directory cache_store"].startswith("FAIL") and "cannot create files there" in found["directory cache_store"]
    assert found[f"cache_store file://{unwritable}"].startswith(f"FAIL cache_store file://{unwritable}: put failed")
    assert found[f"store file://{tmp_path}/data/originals"].startswith("ok ")


def test_a_codec_that_cannot_encode_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # No real Pillow lacks its core codecs: a kind it has no encoder for stands in for one.
    monkeypatch.setitem(formats.KINDS, "nope", formats.Kind("nope", "NOPE", "image/x-nope", ("nope",)))
    (codecs, *_) = doctor.check_codecs(Settings())
    assert codecs.status == doctor.FAIL and "cannot encode nope" in codecs.detail


@pytest.mark.swift
def test_swift_with_its_temp_url_key_passes(swift_server: SwiftServer, swift_container_pair, tmp_path: Path) -> None:
    originals, cache = swift_container_pair
    config = swift_config(swift_server, tmp_path, "doctor-key", originals, cache)
    settings = Settings()
    settings.swift.auth_url, settings.swift.auth_version = swift_server.auth_url, "1"
    settings.swift.user, settings.swift.key = swift_server.user, swift_server.key
    for container in swift_container_pair:
        set_temp_url_key(SwiftStore.from_url(f"swift://{container}", settings), "doctor-key", on="container")
    done = run_doctor(config, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    found = lines(done)
    for name in (f"store swift://{originals}", f"cache_store swift://{cache}", "temp_url GET store",
                 "temp_url PUT store", "temp_url GET cache_store", "directory disk_cache"):
        assert found[name].startswith("ok "), done.stdout
    conn = swift_server.connection()
    for container in swift_container_pair:
        assert conn.get_container(container)[1] == [], "the probes are removed"


@pytest.mark.swift
def test_swift_refusing_the_temp_url_and_an_unreachable_swift_fail(swift_server: SwiftServer, swift_container_pair,
                                                                   tmp_path: Path) -> None:
    originals, cache = swift_container_pair
    done = run_doctor(swift_config(swift_server, tmp_path, f"not-set-{uuid.uuid4().hex}", originals, cache),
                      tmp_path / "key")
    assert done.returncode == 1
    found = lines(done)
    assert found[f"store swift://{originals}"].startswith("ok ")
    assert found["temp_url GET store"].startswith("FAIL") and "image_repo swift set-temp-url-key" in found["temp_url GET store"]
    assert swift_server.connection().get_container(originals)[1] == [], "a failed check removes its probe too"

    config = swift_config(swift_server, tmp_path, "k", originals, cache)
    config["swift"]["auth_url"] = "http://127.0.0.1:9/auth/v1.0"  # nothing listens there
    down = run_doctor(config, tmp_path / "down")
    assert down.returncode == 1
    assert lines(down)[f"store swift://{originals}"].startswith(f"FAIL store swift://{originals}: put failed: swift")


@pytest.mark.swift
def test_s3_store_passes(swift_server: SwiftServer, tmp_path: Path) -> None:
    bucket = new_bucket_name()
    try:
        config = {"data_dir": str(tmp_path / "data"), "url_key": "k", "store": f"s3://{bucket}/originals",
                  "cache_store": f"s3://{bucket}/cache",
                  "s3": {"endpoint_url": swift_server.s3_endpoint, "region": swift_server.s3_region, "path_style": True,
                         "access_key_id": swift_server.s3_access_key, "secret_access_key": swift_server.s3_secret_key,
                         "retries": 0}}
        done = run_doctor(config, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        found = lines(done)
        for name in ("temp_url GET store", "temp_url PUT store", "temp_url GET cache_store"):
            assert found[name].startswith("ok "), done.stdout
    finally:
        remove_bucket(swift_server, bucket)

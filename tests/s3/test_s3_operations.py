"""S3 timeouts and retries (botocore Config) and encryption on presigned PUTs (direct imports).

The test Swift's s3api takes SSE-S3 (``AES256``) when it runs at-rest encryption (the
``encrypted_swift_server`` fixture), never SSE-KMS (it answers 501 NotImplemented): KMS is
checked as far as the request goes.
"""
from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from image_repo.config.settings import S3Settings, Settings
from image_repo.errors import StorageUnavailable
from image_repo.storage.s3 import S3Store
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg
from tests.s3.fixtures import new_bucket_name, s3_settings_for, s3_store_on

SSE = "x-amz-server-side-encryption"


class SilentEndpoint:
    """A loopback server that accepts connections and never answers: every request times out."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentEndpoint]:
    endpoint = SilentEndpoint()
    yield endpoint
    endpoint.close()


def offline(**overrides: object) -> S3Settings:
    s = S3Settings(endpoint_url="http://127.0.0.1:9", region="us-east-1", path_style=True,
                   access_key_id="AKIDEXAMPLE", secret_access_key="secret")
    for name, value in overrides.items():
        setattr(s, name, value)
    return s


def test_timeouts_and_retries_reach_botocore() -> None:
    store = S3Store("bucket", "", offline(connect_timeout=2.5, read_timeout=7.0, retries=5, retry_mode="adaptive"))
    config = store.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (2.5, 7.0)
    assert config.retries == {"mode": "adaptive", "total_max_attempts": 6}  # botocore counts the first try too


def test_a_silent_endpoint_times_out_and_is_retried(silent: SilentEndpoint) -> None:
    store = S3Store("bucket", "", offline(endpoint_url=f"http://127.0.0.1:{silent.port}", read_timeout=0.3,
                                          connect_timeout=2.0, retries=1))
    with pytest.raises(StorageUnavailable, match="s3 s3://bucket: get 'k'"):
        store.get("k")
    assert len(silent.accepted) == 2  # the first try and one retry, each cut off by the read timeout


def test_bad_retry_mode_is_a_config_error(tmp_path) -> None:
    from image_repo.config.loading import load_settings
    from image_repo.errors import ConfigError

    with pytest.raises(ConfigError, match="s3.retry_mode: expected one of standard, adaptive, legacy"):
        load_settings(None, {"IMAGE_REPO_S3__RETRY_MODE": "sometimes"})


def test_presigned_put_signs_the_encryption_headers_offline() -> None:
    plain = S3Store("bucket", "", offline())
    url, _ = plain.temp_url("k", "PUT", 60)
    assert "x-amz-server-side-encryption" not in parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0]
    assert plain.put_url_headers() == {}
    kms = S3Store("bucket", "", offline(kms_key_id="alias/images"))
    url, _ = kms.temp_url("k", "PUT", 60)
    signed = parse_qs(urlsplit(url).query)["X-Amz-SignedHeaders"][0].split(";")
    assert {SSE, SSE + "-aws-kms-key-id"} <= set(signed)
    assert kms.put_url_headers() == {SSE: "aws:kms", SSE + "-aws-kms-key-id": "alias/images"}
    get_url, _ = kms.temp_url("k", "GET", 60)  # reads need no encryption headers
    assert SSE not in parse_qs(urlsplit(get_url).query)["X-Amz-SignedHeaders"][0]


@pytest.mark.swift
def test_presigned_put_with_sse_kms_reaches_the_server(swift_server) -> None:
    with s3_store_on(swift_server, "kms", kms_key_id="alias/images") as store:
        S3Store(store.bucket, "", s3_settings_for(swift_server)).put("seed.jpg", b"x")  # the bucket, unencrypted
        url, _ = store.temp_url("up.jpg", "PUT", 300)
        r = requests.put(url, data=b"x", headers=store.put_url_headers(), timeout=10)
        # Signed and accepted as a request; the test Swift does not do KMS (AWS would store it encrypted).
        assert r.status_code == 501 and "NotImplemented" in r.text


def test_presigned_put_with_sse_s3_and_a_direct_import_into_an_encrypted_bucket(encrypted_swift_server,
                                                                              tmp_path) -> None:
    swift_server = encrypted_swift_server  # one test, so one encrypting Swift (encryption slows all listings)
    with s3_store_on(swift_server, "enc", encrypt=True) as store:
        store.put("seed.jpg", b"x")  # makes the bucket
        url, _ = store.temp_url("up.jpg", "PUT", 300)
        assert store.put_url_headers() == {SSE: "AES256"}
        bare = requests.put(url, data=b"direct bytes", timeout=10)
        assert bare.status_code == 403  # the header is signed: a PUT without it is refused
        r = requests.put(url, data=b"direct bytes", headers=store.put_url_headers(), timeout=10)
        assert r.status_code == 200, r.text
        assert store.get("up.jpg") == b"direct bytes"
        head = store.client.head_object(Bucket=store.bucket, Key="enc/up.jpg")
        assert head.get("ServerSideEncryption") == "AES256", head

    # A direct import: its PUT URL is signed with the encryption, its upload_headers say so.
    bucket = new_bucket_name()
    with s3_store_on(swift_server, bucket=bucket):  # removes the bucket afterwards
        settings = Settings()
        settings.data_dir, settings.url_key = str(tmp_path / "data"), "test-url-key"
        settings.store, settings.cache_store = f"s3://{bucket}/originals", f"s3://{bucket}/cache"
        settings.s3 = s3_settings_for(swift_server, encrypt=True)
        client = create_app(settings).test_client()
        photo = make_jpeg(200, 150)
        rec = client.post("/imports", json={"name": "enc/photo", "sha256": hashlib.sha256(photo).hexdigest(),
                                            "size": len(photo)}).get_json()
        assert rec["upload_headers"] == {SSE: "AES256"}
        r = requests.put(rec["upload_url"], data=photo, headers=rec["upload_headers"], timeout=10)
        assert r.status_code == 200, r.text
        body = client.put(f"/imports/{rec['id']}", json={"complete": True}).get_json()
        deadline = time.monotonic() + 30
        while body["state"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            body = client.get(f"/imports/{rec['id']}").get_json()
        assert body["state"] == "done", body
        assert client.get("/images/enc/photo?original=true").data == photo
        head = S3Store(bucket, "originals", s3_settings_for(swift_server)).client.head_object(
            Bucket=bucket, Key="originals/enc/photo.jpg")
        assert head.get("ServerSideEncryption") == "AES256"

"""Checksums on POST and PUT: a mismatch stores nothing; identical re-uploads change nothing."""
from __future__ import annotations

import base64
import hashlib
import io

import pytest
from flask.testing import FlaskClient

from image_repo.config.settings import Settings
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg, make_png


@pytest.fixture
def client(tmp_path) -> FlaskClient:
    s = Settings()
    s.data_dir = str(tmp_path / "data")
    s.url_key = "k"
    return create_app(s).test_client()


def post(client: FlaskClient, name: str, data: bytes, **headers: str):
    return client.post(f"/images/{name}", data={"file": (io.BytesIO(data), "x.jpg")},
                       content_type="multipart/form-data", headers=headers)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_header(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


def test_post_and_put_report_the_stored_sha256_and_meta_agrees(client):
    photo = make_jpeg(64, 48)
    r = post(client, "a", photo, **{"X-Checksum-Sha256": sha(photo)})
    assert r.status_code == 200 and r.headers["X-Checksum-Sha256"] == sha(photo)
    r = client.put("/images/b", data=photo, headers={"Content-Digest": digest_header(photo)})
    assert r.status_code == 201 and r.headers["X-Checksum-Sha256"] == sha(photo)
    assert client.get("/images/a?meta=true").get_json()["sha256"] == sha(photo)


@pytest.mark.parametrize("method", ["post", "put"])
@pytest.mark.parametrize("header", ["X-Checksum-Sha256", "Content-Digest"])
def test_mismatch_is_400_and_stores_nothing(client, method, header):
    photo, other = make_jpeg(64, 48), make_png(10, 10)
    value = sha(other) if header == "X-Checksum-Sha256" else digest_header(other)
    if method == "post":
        r = post(client, "m", photo, **{header: value})
    else:
        r = client.put("/images/m", data=photo, headers={header: value})
    assert r.status_code == 400 and "checksum" in r.get_json()["message"]
    assert client.get("/images/m?meta=true").status_code == 404
    assert client.get("/images").get_json() == []


@pytest.mark.parametrize("headers", [{"X-Checksum-Sha256": "abc"}, {"Content-Digest": "sha-256=:nope:"},
                                     {"Content-Digest": "garbage"}])
def test_malformed_checksum_headers_are_400(client, headers):
    r = client.put("/images/m", data=make_jpeg(8, 8), headers=headers)
    assert r.status_code == 400


def test_other_digest_algorithms_are_ignored(client):
    photo = make_jpeg(8, 8)
    r = client.put("/images/m", data=photo, headers={"Content-Digest": "sha-512=:AAAA:, " + digest_header(photo)})
    assert r.status_code == 201


def test_identical_reupload_is_a_success_that_changes_nothing(client):
    photo = make_jpeg(64, 48)
    assert post(client, "same", photo).status_code == 200
    client.get("/images/same?thumbnail=true")  # a derivative that a real replace would drop
    r = post(client, "same", photo)
    assert r.status_code == 200 and r.headers["X-Checksum-Sha256"] == sha(photo)
    r = client.put("/images/same", data=photo)
    assert r.status_code == 200
    assert client.get("/images/same?thumbnail=true").headers["X-Image-Repo-Cache"] == "hit"
    assert post(client, "same", make_jpeg(65, 48)).status_code == 409


def test_original_true_serves_the_stored_bytes(client):
    photo = make_jpeg(64, 48)
    post(client, "o", photo)
    r = client.get("/images/o?original=true")
    assert r.status_code == 200 and r.data == photo and r.headers["X-Checksum-Sha256"] == sha(photo)
    assert r.headers["Content-Type"] == "image/jpeg"
    assert client.get("/images/o?original=true", headers={"If-None-Match": r.headers["ETag"]}).status_code == 304

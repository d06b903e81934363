"""An application on fresh stores, and a client for it."""
from __future__ import annotations

import io
import uuid
from typing import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from image_repo.config.settings import Settings
from image_repo.web.app import create_app

Upload = Callable[..., "object"]


@pytest.fixture(params=["file", "swift", "s3"])
def settings(request, tmp_path) -> Settings:
    """Settings on fresh stores: the embedded file store, or new containers of the real Swift."""
    if request.param == "swift":
        from tests.fixtures.swift import delete_container, swift_settings_for

        server = request.getfixturevalue("swift_server")
        s = swift_settings_for(server)
        suffix = uuid.uuid4().hex[:10]
        s.store, s.cache_store = f"swift://originals-{suffix}", f"swift://cache-{suffix}"
        conn = server.connection()
        request.addfinalizer(lambda: [delete_container(conn, c) for c in (f"originals-{suffix}", f"cache-{suffix}")])
    elif request.param == "s3":
        from tests.s3.fixtures import new_bucket_name, remove_bucket, s3_settings_for

        server = request.getfixturevalue("swift_server")
        s = Settings()
        s.s3 = s3_settings_for(server)
        bucket = new_bucket_name()
        s.store, s.cache_store = f"s3://{bucket}/originals", f"s3://{bucket}/cache"
        request.addfinalizer(lambda: remove_bucket(server, bucket))
    else:
        s = Settings()
    s.data_dir = str(tmp_path / "data")
    s.url_key = "test-url-key"
    return s


@pytest.fixture
def app(settings: Settings):
    app = create_app(settings)
    yield app
    app.extensions["image_repo"].cache.close()  # derivatives written behind land before stores are removed


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def upload(client: FlaskClient):
    """POST bytes as the multipart field ``file``; returns the response."""

    def do(path: str, data: bytes, filename: str = "upload.bin", **kwargs):
        return client.post(
            f"/images/{path}",
            data={"file": (io.BytesIO(data), filename)},
            content_type="multipart/form-data",
            **kwargs,
        )

    return do


@pytest.fixture
def make_app(tmp_path) -> Callable[..., Flask]:
    """An app on the embedded file store of a fresh data directory, with these settings changed."""

    def make(**changes) -> Flask:
        s = Settings()
        s.data_dir = str(tmp_path / "data")
        for key, value in changes.items():
            setattr(s, key, value)
        return create_app(s)

    return make

"""An application on fresh file stores, a client, and checks every hostile answer must pass."""
from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from image_repo.config.settings import Settings
from image_repo.web.app import create_app


@pytest.fixture
def settings(tmp_path) -> Settings:
    s = Settings()
    s.data_dir = str(tmp_path / "data")
    s.url_key = "hostile-url-key"
    return s


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def upload(client: FlaskClient) -> Callable[..., Any]:
    """POST bytes as the multipart field ``file``."""

    def do(path: str, data: bytes, filename: str = "upload.bin", **kwargs: Any) -> Any:
        return client.post(
            f"/images/{path}", data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data", **kwargs
        )

    return do


def assert_clean_4xx(response: Any, *statuses: int) -> None:
    """A client error of one of ``statuses`` (any 4xx if none), as JSON with a message."""
    code = response.status_code
    assert 400 <= code < 500, (code, response.get_data()[:300])
    if statuses:
        assert code in statuses, (code, response.get_data()[:300])
    if response.request.method != "HEAD":
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"], response.get_data()


def stored_objects(settings: Settings) -> list[str]:
    """Every file under the originals directory (none may be half-written or left behind)."""
    from pathlib import Path

    root = Path(settings.data_dir) / "originals"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []

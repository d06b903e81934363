"""Rotating url_key on a running deployment: URLs handed out under the old key keep working
while it stays listed (the first key signs, every key verifies), for url=true and for imports."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from image_repo.config.loading import load_settings

from image_repo.config.settings import Settings
from image_repo.errors import ConfigError
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg


def client_for(tmp_path, url_key):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=str(tmp_path / "data"))
    settings.url_key = url_key
    return create_app(settings).test_client()


def signed_path(client, query: str = "xsize=40") -> str:  # type: ignore[no-untyped-def]
    url = urlsplit(client.get(f"/images/p?url=true&{query}").get_json()["url"])
    return f"{url.path}?{url.query}"


def test_a_url_signed_with_the_old_key_works_until_the_key_is_dropped(tmp_path):
    before = client_for(tmp_path, "old-key")
    assert before.put("/images/p", data=make_jpeg(200, 150)).status_code == 201
    handed_out = signed_path(before)
    assert before.get(handed_out).status_code == 200

    rotating = client_for(tmp_path, ["new-key", "old-key"])  # the same data: a restart with the new list
    assert rotating.get(handed_out).status_code == 200, "an old URL must work while its key is listed"
    fresh = signed_path(rotating, "xsize=41")
    assert rotating.get(fresh).status_code == 200
    assert before.get(fresh).status_code == 403, "new URLs are signed with the first key"

    after = client_for(tmp_path, ["new-key"])
    assert after.get(handed_out).status_code == 403
    assert after.get(fresh).status_code == 200


def test_an_import_upload_url_signed_with_the_old_key_still_takes_the_bytes(tmp_path):
    import hashlib

    photo = make_jpeg(64, 48)
    before = client_for(tmp_path, "old-key")
    rec = before.post("/imports", json={"name": "i", "sha256": hashlib.sha256(photo).hexdigest(),
                                        "size": len(photo)}).get_json()
    url = urlsplit(rec["upload_url"])
    rotating = client_for(tmp_path, ["new-key", "old-key"])
    assert rotating.put(f"{url.path}?{url.query}", data=photo).status_code == 201


def test_url_key_as_a_list_from_yaml_and_the_environment(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yml"
    cfg.write_text('url_key: [{"$env": NEW_KEY}, "old, with a comma"]\n')
    monkeypatch.setenv("NEW_KEY", "new")
    s = load_settings(str(cfg))
    assert s.url_keys() == ["new", "old, with a comma"] and s.signing_key() == "new"
    one = load_settings(None, {"IMAGE_REPO_URL_KEY": "a,b"})  # one key, commas and all
    assert one.url_keys() == ["a,b"]
    two = load_settings(None, {"IMAGE_REPO_URL_KEY": "[a, b]"})
    assert two.url_keys() == ["a", "b"]
    cfg.write_text("url_key: [1, 2]\n")
    assert load_settings(str(cfg)).url_keys() == ["1", "2"]
    cfg.write_text("url_key: []\n")
    with pytest.raises(ConfigError, match="url_key"):
        load_settings(str(cfg))

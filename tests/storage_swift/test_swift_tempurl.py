"""Swift TempURLs made by SwiftStore.temp_url, fetched straight from Swift with a plain HTTP client."""
from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from swiftclient.client import Connection

from image_repo.errors import ConfigError, StorageUnavailable
from image_repo.storage.swift import SwiftStore, set_temp_url_key
from tests.fixtures.swift import SwiftServer

pytestmark = pytest.mark.swift

KEYS = ["plain.jpg", "with space/and more.jpg", "ünïcödé/日本語 写真.png", "100% pure+(1)&x=y?.jpg",
        "site%2Fpic+original(None).jpg"]


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A plain HTTP client that ignores any HTTP(S)_PROXY of the environment."""
    with requests.Session() as s:
        s.trust_env = False
        yield s


@pytest.fixture
def keyed_store(swift_store: SwiftStore) -> SwiftStore:
    set_temp_url_key(swift_store, "test-url-key")
    return swift_store


@pytest.mark.parametrize("key", KEYS)
def test_get_url_serves_the_bytes(keyed_store, http, key):
    keyed_store.put(key, key.encode() * 3, content_type="image/png")
    url, expires = keyed_store.temp_url(key, seconds=60)
    r = http.get(url)
    assert r.status_code == 200, (url, r.text)
    assert r.content == key.encode() * 3 and r.headers["Content-Type"] == "image/png"
    assert 0 < expires - __import__("time").time() <= 60


@pytest.mark.parametrize("digest, sig", [("sha1", r"[0-9a-f]{40}"), ("sha256", r"[0-9a-f]{64}"),
                                         ("sha512", r"sha512:[A-Za-z0-9_-]{86}")])
def test_digests(keyed_store, http, digest, sig):
    keyed_store.put("d.jpg", b"d")
    keyed_store.temp_url_digest = digest
    url, _ = keyed_store.temp_url("d.jpg")
    assert re.fullmatch(sig, parse_qs(urlsplit(url).query)["temp_url_sig"][0])
    assert http.get(url).content == b"d"


def test_refusals(keyed_store, http):
    keyed_store.put("r.jpg", b"r")
    url, _ = keyed_store.temp_url("r.jpg")
    sig = parse_qs(urlsplit(url).query)["temp_url_sig"][0]
    tampered = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    assert http.get(tampered).status_code == 401
    assert http.get(url.replace("r.jpg", "s.jpg")).status_code == 401  # another object, same signature
    assert http.put(url, data=b"overwrite").status_code == 401  # wrong method
    assert http.delete(url).status_code == 401
    expired, _ = keyed_store.temp_url("r.jpg", seconds=-1)
    assert http.get(expired).status_code == 401
    assert http.get(url).content == b"r"


def test_put_url_uploads(keyed_store, http):
    url, _ = keyed_store.temp_url("up/ü.jpg", method="PUT", seconds=60)
    assert http.put(url, data=b"uploaded").status_code == 201
    assert keyed_store.get("up/ü.jpg") == b"uploaded"


def test_prefixed_store(swift_settings, swift_container, http):
    store = SwiftStore.from_url(f"swift://{swift_container}/pre fix", swift_settings)
    set_temp_url_key(store, "test-url-key", on="container")
    store.put("a b.jpg", b"ab")
    url, _ = store.temp_url("a b.jpg")
    assert "/pre%20fix/a%20b.jpg?" in url
    assert http.get(url).content == b"ab"


def test_key_on_container_only(swift_server: SwiftServer, swift_settings, swift_container, http):
    conn = Connection(authurl=swift_server.auth_url, user="test2:tester2", key="testing2", retries=0)
    set_temp_url_key(conn, "test-url-key", on="container", container=swift_container + "-2")
    settings = swift_settings.__class__()
    settings.swift.auth_url, settings.swift.user, settings.swift.key = swift_server.auth_url, "test2:tester2", "testing2"
    settings.url_key = "test-url-key"
    store = SwiftStore.from_url(f"swift://{swift_container}-2", settings)
    try:
        store.put("c.jpg", b"c")
        assert http.get(store.temp_url("c.jpg")[0]).content == b"c"
        settings.url_key = "other-key"
        assert http.get(SwiftStore.from_url(f"swift://{swift_container}-2", settings).temp_url("c.jpg")[0]
                        ).status_code == 401
    finally:
        store.delete("c.jpg")
        conn.delete_container(swift_container + "-2")


def test_non_admin_cannot_set_the_account_key(swift_server: SwiftServer):
    conn = Connection(authurl=swift_server.auth_url, user="test:tester3", key="testing3", retries=0)
    with pytest.raises(StorageUnavailable, match="403"):
        set_temp_url_key(conn, "k")


def test_no_url_key_is_a_config_error(swift_settings, swift_container):
    swift_settings.url_key = None
    with pytest.raises(ConfigError, match="url_key"):
        SwiftStore.from_url(f"swift://{swift_container}", swift_settings).temp_url("x.jpg")


def test_rotating_the_key_keeps_handed_out_urls_working(swift_server: SwiftServer, swift_settings, swift_container,
                                                         http, tmp_path):
    """url_key [new, old]: Swift holds both (Temp-URL-Key, Temp-URL-Key-2), new URLs are signed with
    the first; URLs made with the old key work until it is dropped from the list."""
    import subprocess
    import sys

    import yaml

    def store_with(keys: list[str]) -> SwiftStore:
        swift_settings.url_key = keys
        return SwiftStore.from_url(f"swift://{swift_container}", swift_settings)

    before = store_with(["old-key"])
    set_temp_url_key(before, swift_settings.url_keys(), on="container")
    before.put("rot.jpg", b"rotated")
    handed_out, _ = before.temp_url("rot.jpg", seconds=600)
    assert http.get(handed_out).content == b"rotated"

    # The rotation, by the command the README gives, from a YAML url_key list.
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({"store": f"swift://{swift_container}", "url_key": ["new-key", "old-key"],
                                      "swift": {"auth_url": swift_server.auth_url, "auth_version": "1",
                                                "user": swift_server.user, "key": swift_server.key}}))
    done = subprocess.run([sys.executable, "-m", "image_repo", "-y", str(config), "swift", "set-temp-url-key", "--on",
                           "container"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and "TempURL keys set on the container" in done.stdout, done.stderr
    head = swift_server.connection().head_container(swift_container)
    assert (head["x-container-meta-temp-url-key"], head["x-container-meta-temp-url-key-2"]) == ("new-key", "old-key")
    rotating = store_with(["new-key", "old-key"])
    fresh, _ = rotating.temp_url("rot.jpg", seconds=600)
    assert http.get(handed_out).content == b"rotated", "an old URL must work while its key is listed"
    assert http.get(fresh).content == b"rotated"
    assert parse_qs(urlsplit(fresh).query)["temp_url_sig"] != parse_qs(urlsplit(handed_out).query)["temp_url_sig"]

    set_temp_url_key(store_with(["new-key"]), swift_settings.url_keys(), on="container")
    assert "x-container-meta-temp-url-key-2" not in swift_server.connection().head_container(swift_container)
    assert http.get(handed_out).status_code == 401
    assert http.get(fresh).content == b"rotated"
    with pytest.raises(ConfigError, match="two TempURL keys"):
        set_temp_url_key(rotating, ["a", "b", "c"], on="container")

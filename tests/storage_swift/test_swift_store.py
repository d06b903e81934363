"""SwiftStore against the real Swift: what the contract suite cannot say about Swift."""
from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from image_repo.errors import InvalidRequest, NotFound, StorageUnavailable
from image_repo.names import legacy_original_key, parse_original_key
from image_repo.storage import swift as swift_module
from image_repo.storage.base import content_version
from image_repo.storage.swift import SwiftStore
from tests.fixtures.swift import delete_container, swift_settings_for

pytestmark = pytest.mark.swift


def keys(store: SwiftStore, prefix: str = "") -> list[str]:
    return [i.key for i in store.list(prefix)]


def test_prefix_in_url_is_prepended_and_stripped(swift_settings, swift_container, swift_conn):
    swift_conn.put_object(swift_container, "outside.jpg", b"o")
    store = SwiftStore.from_url(f"swift://{swift_container}/site1/", swift_settings)
    info = store.put("a/b.jpg", b"ab", metadata={"k": "v"})
    assert info.key == "a/b.jpg"
    _, raw = swift_conn.get_container(swift_container)
    assert sorted(o["name"] for o in raw) == ["outside.jpg", "site1/a/b.jpg"]
    assert keys(store) == ["a/b.jpg"] and keys(store, "a/") == ["a/b.jpg"] and keys(store, "o") == []
    assert store.get("a/b.jpg") == b"ab"
    assert store.stat("a/b.jpg").metadata == {"k": "v"}
    store.delete("a/b.jpg")
    assert keys(store) == []


def test_container_is_created_on_first_write(swift_settings, swift_conn):
    name = f"test-new-{uuid.uuid4().hex[:8]}"
    store = SwiftStore.from_url(f"swift://{name}", swift_settings)
    try:
        assert keys(store) == [] and store.stat("x.jpg") is None  # a missing container is an empty store
        store.put("x.jpg", b"x")
        assert swift_conn.head_container(name)["x-container-object-count"] == "1"
    finally:
        delete_container(swift_conn, name)


def test_objects_written_by_other_tools_and_2016_keys(swift_store, swift_conn, swift_container):
    legacy = legacy_original_key("ünï cöde/my photo", "jpg")  # percent-encoded base, +original(None)
    derivative = "site1%2Fpic+thumbnail(50x50).png"
    swift_conn.put_object(swift_container, legacy, b"jpeg bytes", content_type="image/jpeg")
    swift_conn.put_object(swift_container, derivative, b"png", content_type="image/png")
    assert keys(swift_store) == sorted([legacy, derivative])
    ref = parse_original_key(legacy)
    assert ref is not None and ref.legacy and ref.name == "ünï cöde/my photo"
    data, info = swift_store.get_with_info(legacy)
    assert data == b"jpeg bytes"
    assert info.sha256 is None and info.etag == hashlib.md5(b"jpeg bytes").hexdigest()
    assert info.content_type == "image/jpeg" and info.metadata == {}
    assert content_version(info) == "etag-" + info.etag


def test_listing_pages_lazily(swift_settings, swift_container):
    store = SwiftStore(swift_container, connection_options=SwiftStore.from_url(
        "swift://x", swift_settings)._options, page_size=7)
    names = [f"p/{i:03d}.jpg" for i in range(25)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: store.put(n, n.encode()), names))
    calls: list[Any] = []
    conn = store._conn()
    real = conn.get_container
    conn.get_container = lambda *a, **kw: calls.append(kw) or real(*a, **kw)
    it = store.list("p/")
    assert next(it).key == "p/000.jpg" and len(calls) == 1  # one page fetched, not the listing
    assert [next(it).key for _ in range(6)] == names[1:7] and len(calls) == 1
    assert [i.key for i in it] == names[7:]
    assert [c["marker"] for c in calls] == ["", "p/006.jpg", "p/013.jpg", "p/020.jpg"]


def test_listing_more_than_ten_thousand(swift_server, swift_settings, swift_conn):
    # Swift answers at most 10,000 names a request. 10,000 real PUTs take minutes on two
    # cores, so most rows are seeded into the container DB; a few real objects mix in.
    # Its own container, never deleted: deleting 10,000 objects would take minutes too, and
    # the session's state dir is wiped at the end anyway.
    swift_container = f"test-big-{uuid.uuid4().hex[:8]}"
    swift_conn.put_container(swift_container)
    swift_store = SwiftStore.from_url(f"swift://{swift_container}", swift_settings)
    seeded = [f"many/{i:05d}.jpg" for i in range(10_050) if i % 1000]
    swift_server.seed_listing(swift_container, seeded)
    real = [f"many/{i:05d}.jpg" for i in range(0, 10_050, 1000)]
    for name in real:
        swift_store.put(name, b"real")
    # Few requests, not a short time: 10,050 names in two pages and the empty one that ends them.
    conn = swift_store._conn()
    pages: list[Any] = []
    real_get_container = conn.get_container
    conn.get_container = lambda *a, **kw: pages.append(kw) or real_get_container(*a, **kw)
    listed = keys(swift_store, "many/")
    conn.get_container = real_get_container
    assert listed == [f"many/{i:05d}.jpg" for i in range(10_050)]
    assert len(pages) == 3
    assert keys(swift_store, "many/1004") == [f"many/{i:05d}.jpg" for i in range(10_040, 10_050)]
    assert swift_store.get("many/10000.jpg") == b"real"


def test_etag_mismatch_stores_nothing_and_keeps_the_old_version(swift_store, monkeypatch):
    swift_store.put("e.jpg", b"old version")
    monkeypatch.setattr(swift_module, "_md5_hex", lambda data: hashlib.md5(b"other").hexdigest())
    with pytest.raises(StorageUnavailable, match="422"):
        swift_store.put("e.jpg", b"new version")
    with pytest.raises(StorageUnavailable):
        swift_store.put("fresh.jpg", b"bytes")
    assert swift_store.get("e.jpg") == b"old version"
    assert swift_store.stat("fresh.jpg") is None


def test_stored_etag_not_ours_is_removed(swift_store, monkeypatch):
    conn = swift_store._conn()
    real = conn.put_object
    monkeypatch.setattr(conn, "put_object", lambda *a, **kw: (real(*a, **kw), "0" * 32)[1])
    with pytest.raises(StorageUnavailable, match="do not match"):
        swift_store.put("bad.jpg", b"bytes")
    assert swift_store.stat("bad.jpg") is None and keys(swift_store) == []


def test_a_put_that_a_newer_write_supersedes_leaves_the_newer_one(swift_store, swift_conn):
    # Two PUTs of one key cross: the later-stamped one lands first, and Swift answers the
    # other 202 (its object server: 409, an older timestamp). A future X-Timestamp stands
    # in for the later stamp; the test Swift honours it (start-swift.sh, gatekeeper).
    newer = str(time.time() + 3600)
    swift_conn.put_object(swift_store.container, "k.jpg", b"newer", headers={"X-Timestamp": newer})
    try:
        info = swift_store.put("k.jpg", b"older")
        assert info.size == len(b"older") and info.etag == hashlib.md5(b"older").hexdigest()
        assert swift_store.get("k.jpg") == b"newer", "the superseded put must not delete the newer object"
    finally:  # only a still later DELETE removes it, so the container can go
        swift_conn.delete_object(swift_store.container, "k.jpg", headers={"X-Timestamp": str(time.time() + 7200)})


def test_copy_is_server_side_and_keeps_metadata(swift_store):
    swift_store.put("src/ä b.jpg", b"img", content_type="image/jpeg", metadata={"m": "1"})
    swift_store.copy("src/ä b.jpg", "dst/ä b.jpg")
    data, info = swift_store.get_with_info("dst/ä b.jpg")
    assert data == b"img" and info.metadata == {"m": "1"} and info.sha256 == hashlib.sha256(b"img").hexdigest()
    with pytest.raises(NotFound):
        swift_store.copy("nope.jpg", "x.jpg")


def test_one_connection_per_thread_and_one_auth(swift_store):
    swift_store.put("t.jpg", b"t")
    tokens: set[str] = set()
    lock = threading.Lock()
    together = threading.Barrier(6)  # six threads surely alive at once (a pool may run all on one)

    def work() -> None:
        together.wait()
        for _ in range(10):
            assert swift_store.get("t.jpg") == b"t"
        with lock:
            tokens.add(swift_store._conn().token)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(swift_store._conns) == 7 and len(tokens) == 1  # this thread's put, and one per worker thread
    swift_store.close()
    assert swift_store._conns == []
    assert swift_store.get("t.jpg") == b"t"  # a closed store reconnects rather than crash


def test_too_long_key_is_invalid_request(swift_store):
    with pytest.raises(InvalidRequest):
        swift_store.put("x" * 1100 + ".jpg", b"x")


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_proxy_is_storage_unavailable_without_secrets(swift_server):
    port = _closed_port()
    settings = swift_settings_for(swift_server)
    settings.swift.auth_url = f"http://127.0.0.1:{port}/auth/v1.0"
    settings.swift.key = "secret-key-123"
    store = SwiftStore.from_url("swift://c", settings)
    for op in (lambda: store.get("a.jpg"), lambda: store.put("a.jpg", b"a"), lambda: list(store.list())):
        with pytest.raises(StorageUnavailable) as e:
            op()
        assert "secret-key-123" not in str(e.value) and e.value.status == 503
    pre = swift_settings_for(swift_server, auth_url=None, storage_url=f"http://127.0.0.1:{port}/v1/AUTH_test",
                             token="secret-token-456")
    with pytest.raises(StorageUnavailable) as e:
        SwiftStore.from_url("swift://c", pre).stat("a.jpg")
    assert "secret-token-456" not in str(e.value)


def test_wrong_key_is_storage_unavailable_and_never_logged(swift_server, caplog):
    key = "wrong-key-789-long-enough-to-show"
    store = SwiftStore.from_url("swift://c", swift_settings_for(swift_server, key=key))
    with caplog.at_level(logging.DEBUG), pytest.raises(StorageUnavailable, match="not authorised") as e:
        store.get("a.jpg")
    assert "wrong-key" not in str(e.value) and "wrong-key" not in repr(store)
    assert "REQ: curl" in caplog.text and "wrong-key" not in caplog.text  # swiftclient logs the request


def test_tokens_never_logged(swift_store, caplog):
    with caplog.at_level(logging.DEBUG), pytest.raises(NotFound):
        swift_store.get("missing.jpg")  # swiftclient logs a failed request with its headers
    token = swift_store._conn().token
    assert "X-Auth-Token" in caplog.text and token[:8] not in caplog.text


def test_expired_token_is_renewed(swift_server, swift_store):
    swift_store.put("r.jpg", b"r")
    # As if it had expired (an "AUTH_ftk" Fernet token: tempauth would look any other up in memcache).
    swift_store._conn().token = "AUTH_ftkgAAAAABnot-a-valid-token"
    assert swift_store.get("r.jpg") == b"r"


def test_a_forked_worker_gets_its_own_connection(swift_store):
    # Gunicorn forks workers after the app (and maybe a store) was made: sharing the parent's
    # socket would interleave two processes' requests on one connection.
    swift_store.put("f.jpg", b"before fork")
    parent_conn = swift_store._conn()
    pid = os.fork()
    if pid == 0:  # the child: exit status says whether it got a fresh, working connection
        ok = swift_store._conn() is not parent_conn and swift_store.get("f.jpg") == b"before fork"
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert swift_store._conn() is parent_conn and swift_store.get("f.jpg") == b"before fork"

"""Direct-to-store imports on the file store, through the app: the server's own signed upload route."""
from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from image_repo.config.settings import Settings
from image_repo.ingest.imports import record_key, staging_key
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg, make_png
from tests.fixtures.waiting import wait_for


@pytest.fixture
def app(tmp_path) -> Flask:
    s = Settings()
    s.data_dir = str(tmp_path / "data")
    s.url_key = "k"
    return create_app(s)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def start(client: FlaskClient, name: str, data: bytes, **extra) -> dict:
    r = client.post("/imports", json={"name": name, "sha256": sha(data), "size": len(data), **extra})
    assert r.status_code in (200, 201), r.get_json()
    return r.get_json()


def send(client: FlaskClient, rec: dict, data: bytes):
    url = urlsplit(rec["upload_url"])
    return client.put(f"{url.path}?{url.query}", data=data)


def finish(client: FlaskClient, rec: dict) -> dict:
    r = client.put(f"/imports/{rec['id']}", json={"complete": True})
    assert r.status_code in (200, 202)
    body = r.get_json()
    if body["state"] in ("done", "failed"):
        return body
    # Still processing after the server's own wait (a busy machine): follow it to its end.

    def ended() -> dict | None:
        now = client.get(f"/imports/{rec['id']}").get_json()
        return now if now["state"] in ("done", "failed") else None

    return wait_for(ended, "the import finished")


def test_offer_and_a_whole_import(app, client):
    assert client.get("/imports").get_json()["direct"] is True
    photo = make_jpeg(300, 200)
    rec = start(client, "plate/A01/f1", photo)
    assert rec["state"] == "created" and rec["upload_method"] == "PUT" and rec["expires"] > time.time()
    assert client.get(f"/imports/{rec['id']}").get_json()["state"] == "created"
    assert send(client, rec, photo).status_code == 201
    done = finish(client, rec)
    assert done["state"] == "done" and done["key"] == "plate/A01/f1.jpg"
    assert client.get("/images").get_json() == ["plate/A01/f1"]
    assert client.get("/images/plate/A01/f1?original=true").data == photo
    assert client.get("/images/plate/A01/f1?meta=true").get_json()["sha256"] == sha(photo)
    assert client.get("/images/plate/A01/f1?thumbnail=true").headers["X-Image-Repo-Cache"] == "hit"
    store = app.extensions["image_repo"].store
    assert store.stat(staging_key(rec["id"])) is None


@pytest.mark.parametrize("case", ["checksum", "size", "not an image", "nothing sent"])
def test_failed_verification_leaves_the_repository_as_it_was(app, client, case):
    photo, other = make_jpeg(300, 200), make_png(300, 200)
    if case == "checksum":
        rec = start(client, "x", photo)
        body = (other + photo)[: len(photo)]
    elif case == "size":
        rec, body = start(client, "x", photo), photo[:-10]
    elif case == "not an image":
        body = b"just some text, " * 100
        rec = start(client, "x", body)
    else:
        rec, body = start(client, "x", photo), None
    if body is not None:
        assert send(client, rec, body).status_code == 201
    done = finish(client, rec)
    assert done["state"] == "failed" and done["reason"]
    expected = {"checksum": "checksum", "size": "size", "not an image": "not an image", "nothing sent": "no bytes"}
    assert expected[case] in done["reason"]
    assert client.get("/images").get_json() == []
    assert app.extensions["image_repo"].store.stat(staging_key(rec["id"])) is None


def test_existing_images_same_bytes_done_at_once_other_bytes_409_unless_replace(client):
    photo = make_jpeg(64, 48)
    rec = start(client, "n", photo)
    send(client, rec, photo)
    assert finish(client, rec)["state"] == "done"
    again = client.post("/imports", json={"name": "n", "sha256": sha(photo), "size": len(photo)})
    assert again.status_code == 200 and again.get_json()["state"] == "done" and again.get_json()["existing"]
    other = make_png(64, 48)
    assert client.post("/imports", json={"name": "n", "sha256": sha(other), "size": len(other)}).status_code == 409
    rec = start(client, "n", other, replace=True)
    send(client, rec, other)
    assert finish(client, rec)["state"] == "done"
    assert client.get("/images/n?original=true").data == other
    assert client.get("/images").get_json() == ["n"]


def test_cancel_removes_the_staging_object_and_refuses_more_bytes(app, client):
    photo = make_jpeg(64, 48)
    rec = start(client, "c", photo)
    send(client, rec, photo)
    r = client.delete(f"/imports/{rec['id']}")
    assert r.status_code == 200 and r.get_json()["state"] == "failed" and r.get_json()["reason"] == "cancelled"
    assert app.extensions["image_repo"].store.stat(staging_key(rec["id"])) is None
    assert send(client, rec, photo).status_code == 409
    assert client.get("/images").get_json() == []


def test_unfinished_imports_expire_on_clean(app, client):
    photo = make_jpeg(64, 48)
    rec = start(client, "e", photo)
    send(client, rec, photo)
    imports = app.extensions["image_repo_imports"]
    assert imports.clean()["expired"] == 0
    assert imports.clean(now=time.time() + 2 * 86400)["expired"] == 1
    assert app.extensions["image_repo"].store.stat(staging_key(rec["id"])) is None
    assert client.get(f"/imports/{rec['id']}").get_json()["reason"].startswith("expired")


def test_an_import_a_dead_process_was_processing_is_finished_when_polled(app, client):
    photo = make_jpeg(64, 48)
    rec = start(client, "r", photo)
    send(client, rec, photo)
    store = app.extensions["image_repo"].store
    stuck = json.loads(store.get(record_key(rec["id"])))
    import socket

    stuck.update(state="processing", owner=f"{socket.gethostname()}:999999999")
    store.put(record_key(rec["id"]), json.dumps(stuck).encode())
    assert client.get(f"/imports/{rec['id']}").get_json()["state"] == "processing"
    wait_for(lambda: client.get(f"/imports/{rec['id']}").get_json()["state"] == "done", "the import finished")
    assert client.get("/images/r?original=true").data == photo


def test_a_second_complete_never_runs_an_import_a_live_worker_owns(app, client):
    """A killed client asks again to complete an import another live worker has claimed (and
    may still have queued): no second run beside the owner's, which found the staging object
    gone under it and failed an import that succeeded. The owner is our parent: alive, not us."""
    import os
    import socket

    photo = make_jpeg(64, 48)
    rec = start(client, "owned", photo)
    send(client, rec, photo)
    store = app.extensions["image_repo"].store
    owned = json.loads(store.get(record_key(rec["id"])))
    owned.update(state="uploaded", owner=f"{socket.gethostname()}:{os.getppid()}")
    store.put(record_key(rec["id"]), json.dumps(owned).encode())

    again = client.put(f"/imports/{rec['id']}", json={"complete": True}).get_json()
    assert again["state"] == "uploaded", "left to its owner, for the client to poll"
    assert app.extensions["image_repo_imports"]._running == {}, "no run of it here"
    assert store.stat(staging_key(rec["id"])) is not None
    assert client.get(f"/imports/{rec['id']}").get_json()["state"] == "uploaded"

    owned.update(owner=f"{socket.gethostname()}:999999999")  # the owner dies: the next poll takes it over
    store.put(record_key(rec["id"]), json.dumps(owned).encode())
    client.get(f"/imports/{rec['id']}")
    wait_for(lambda: client.get(f"/imports/{rec['id']}").get_json()["state"] == "done", "the import finished")
    assert client.get("/images/owned?original=true").data == photo


def test_signed_upload_route_checks_signature_and_size(client):
    photo = make_jpeg(64, 48)
    rec = start(client, "s", photo)
    url = urlsplit(rec["upload_url"])
    assert client.put(f"{url.path}?{url.query.replace('temp_url_sig=', 'temp_url_sig=0')}", data=photo).status_code == 403
    other_id = "0" * 32
    assert client.put(f"/_imports/{other_id}?{url.query}", data=photo).status_code == 403
    assert send(client, rec, photo + b"more").status_code == 413


@pytest.mark.parametrize("body", [{"name": "a"}, {"name": "a", "sha256": "zz", "size": 1},
                                  {"name": "../a", "sha256": "0" * 64, "size": 1},
                                  {"name": "a", "sha256": "0" * 64, "size": 0}])
def test_bad_import_requests_are_400(client, body):
    assert client.post("/imports", json=body).status_code == 400


def test_without_url_key_imports_are_not_offered(tmp_path):
    s = Settings()
    s.data_dir = str(tmp_path / "data")
    client = create_app(s).test_client()
    assert client.get("/imports").get_json()["direct"] is False
    r = client.post("/imports", json={"name": "a", "sha256": "0" * 64, "size": 1})
    assert 400 <= r.status_code < 600 and "url_key" in r.get_json()["message"]


def test_a_replace_import_is_served_at_once_and_drops_the_old_derivatives(app, client):
    from image_repo.names import derived_prefix
    from image_repo.service.images import bottom_level

    service = app.extensions["image_repo"]
    photo = make_jpeg(64, 48)
    rec = start(client, "r2", photo)
    send(client, rec, photo)
    assert finish(client, rec)["state"] == "done"
    old = client.get("/images/r2?xsize=20")
    assert old.status_code == 200
    old_version = service.find("r2").version
    cache = bottom_level(service.cache)
    assert any(old_version in i.key for i in cache.list(derived_prefix("r2")))
    other = make_png(48, 64)
    rec = start(client, "r2", other, replace=True)
    send(client, rec, other)
    assert finish(client, rec)["state"] == "done"
    new = client.get("/images/r2?xsize=20")  # within original_stat_ttl of the first GET
    assert new.headers["ETag"] != old.headers["ETag"]
    assert client.get("/images/r2?original=true").data == other
    assert not any(old_version in i.key for i in cache.list(derived_prefix("r2")))

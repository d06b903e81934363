"""The WSGI fast path: memory hits and 304s without Flask, the same answers, the same freshness rules."""
from __future__ import annotations

import pytest
from werkzeug.test import Client

from image_repo.config.settings import Settings
from image_repo.storage.memory import MemoryStore
from image_repo.web.app import create_app
from image_repo.web.fastpath import FastPath, simple_args
from tests.fixtures.counting import CountingApp
from tests.fixtures.images import make_jpeg, make_png


class StatCountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.stats = 0

    def stat(self, key):  # type: ignore[override]
        self.stats += 1
        return super().stat(key)


def make(tmp_path, **overrides):
    settings = Settings()
    settings.data_dir = str(tmp_path / "data")
    for key, value in overrides.items():
        setattr(settings, key, value)
    app = create_app(settings)
    fast = app.wsgi_app
    assert isinstance(fast, FastPath)
    flask = fast.app = CountingApp(fast.app)
    return app, app.test_client(), flask


def test_a_hit_is_answered_without_flask(tmp_path):
    app, client, flask = make(tmp_path)
    client.put("/images/p", data=make_jpeg(800, 600))
    first = client.get("/images/p?xsize=100")
    assert first.headers["X-Image-Repo-Cache"] == "miss"
    calls = flask.calls
    again = client.get("/images/p?xsize=100")
    assert flask.calls == calls
    assert again.status_code == 200 and again.headers["X-Image-Repo-Cache"] == "hit" and again.data == first.data
    counters = app.extensions["image_repo"].counters()
    assert counters["cache_hits"] == 1 and counters["fast_hits"] == 1 and counters["derivations"] == 1
    not_modified = client.get("/images/p?xsize=100", headers={"If-None-Match": first.headers["ETag"]})
    assert flask.calls == calls and not_modified.status_code == 304 and not_modified.data == b""


@pytest.mark.parametrize(
    "path, headers",
    [
        ("/images/p?xsize=100", {}),
        ("/images/p?xsize=100&ysize=80&kind=PNG", {}),
        ("/images/p.webp?thumbnail=true", {}),
        ("/images/p?thumbnail=1&xsize=40", {}),
        ("/images/p", {}),
        ("/images/p?xsize=100", {"If-None-Match": "*"}),
        ("/images/p?xsize=100", {"If-None-Match": '"other", W/"{etag}"'}),
        ("/images/p?xsize=100", {"If-None-Match": '"other"'}),
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_the_fast_path_answers_as_flask_does(tmp_path, path, headers, method):
    app, client, flask = make(tmp_path)
    client.put("/images/p", data=make_png(300, 200))
    etag = client.get(path).headers["ETag"].strip('"')
    headers = {k: v.format(etag=etag) for k, v in headers.items()}
    calls = flask.calls
    fast = client.open(path, method=method, headers=headers)
    assert flask.calls == calls, "the fast path did not answer"
    slow = Client(flask.app).open(path, method=method, headers=headers)  # the Flask app alone
    assert (fast.status, fast.get_data()) == (slow.status, slow.get_data())
    assert sorted(fast.headers.items()) == sorted(slow.headers.items())


@pytest.mark.parametrize(
    "query",
    ["xsize=100&meta=true", "xsize=100&url=true", "regex=p", "xsize=100&xsize=100", "xsize=100&v=2",
     "xsize=abc", "xsize=", "thumbnail", "kind=nope"],
)
def test_anything_else_goes_to_flask(tmp_path, query):
    _, client, flask = make(tmp_path)
    client.put("/images/p", data=make_jpeg(400, 300))
    client.get("/images/p?xsize=100")
    calls = flask.calls
    client.get("/images/p?" + query)
    assert flask.calls == calls + 1


def test_misses_writes_and_other_routes_go_to_flask(tmp_path):
    _, client, flask = make(tmp_path)
    calls = flask.calls
    client.put("/images/p", data=make_jpeg(400, 300))
    client.get("/images/p?xsize=100")  # a miss
    client.get("/images/nothing-here?xsize=100")  # 404
    client.get("/images/dir/")
    client.get("/healthz")
    assert flask.calls == calls + 5


def test_read_tokens_send_every_read_to_flask(tmp_path):
    _, client, flask = make(tmp_path, read_tokens=["secret"])
    auth = {"Authorization": "Bearer secret"}
    client.put("/images/p", data=make_jpeg(400, 300))
    client.get("/images/p?xsize=100", headers=auth)
    calls = flask.calls
    assert client.get("/images/p?xsize=100").status_code == 401
    assert client.get("/images/p?xsize=100", headers=auth).status_code == 200
    assert flask.calls == calls + 2


def test_a_replaced_original_is_never_answered_from_memory_by_another_worker(tmp_path):
    """Two apps on one data directory stand for two workers: B replaces, A must not serve the old one."""
    settings = Settings()
    settings.data_dir = str(tmp_path / "data")
    worker_a, worker_b = create_app(settings).test_client(), create_app(settings).test_client()
    worker_a.put("/images/p", data=make_jpeg(400, 300))
    old = worker_a.get("/images/p?xsize=100")
    assert worker_a.get("/images/p?xsize=100").headers["X-Image-Repo-Cache"] == "hit"
    assert worker_b.put("/images/p", data=make_jpeg(300, 400)).status_code == 200
    new = worker_a.get("/images/p?xsize=100")
    assert new.headers["ETag"] != old.headers["ETag"] and new.headers["X-Image-Repo-Cache"] == "miss"
    assert worker_a.get("/images/p?xsize=100", headers={"If-None-Match": old.headers["ETag"]}).status_code == 200


def test_the_original_is_checked_on_every_hit_unless_a_ttl_allows_trusting_it(tmp_path):
    for ttl, stats_per_hit in ((0.0, 1), (3600.0, 0)):
        settings = Settings()
        settings.data_dir = str(tmp_path / f"data-{ttl}")
        settings.original_stat_ttl = ttl
        store = StatCountingStore()
        client = create_app(settings, store=store, cache_store=MemoryStore()).test_client()
        client.put("/images/p", data=make_jpeg(400, 300))
        client.get("/images/p?xsize=100")
        before = store.stats
        for _ in range(5):
            assert client.get("/images/p?xsize=100").headers["X-Image-Repo-Cache"] == "hit"
        assert store.stats - before == 5 * stats_per_hit


def test_simple_args():
    assert simple_args("") == {}
    assert simple_args("xsize=1&ysize=2&kind=png&thumbnail=t") == {"xsize": "1", "ysize": "2", "kind": "png", "thumbnail": "t"}
    assert simple_args("xsize=1&xsize=1") is None
    assert simple_args("xsize=1&original=true") is None


CHROME_ACCEPT = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"


@pytest.mark.parametrize(
    "path, headers",
    [
        ("/images/p?xsize=100", {"Accept": CHROME_ACCEPT}),
        ("/images/p?xsize=100", {"Accept": "image/webp,*/*"}),
        ("/images/p?xsize=100", {"Accept": "image/jpeg"}),
        ("/images/p?xsize=100", {"Accept": ";;q=x,\x7f"}),
        ("/images/p?xsize=100&kind=png", {"Accept": CHROME_ACCEPT}),
        ("/images/p.gif?xsize=100", {"Accept": CHROME_ACCEPT}),
        ("/images/p?xsize=100", {"Accept": CHROME_ACCEPT, "Origin": "https://viewer.example.org"}),
        ("/images/p?xsize=100", {"Origin": "https://elsewhere.example.org"}),
        ("/images/p?xsize=100", {"Accept": CHROME_ACCEPT, "If-None-Match": '"{etag}"'}),
    ],
)
@pytest.mark.parametrize("origins", [["*"], ["https://viewer.example.org"]], ids=["any", "listed"])
def test_negotiated_and_cors_answers_are_the_same_on_both_paths(tmp_path, path, headers, origins):
    _, client, flask = make(tmp_path, format_negotiation=True, cors_origins=origins)
    client.put("/images/p", data=make_png(300, 200))
    first = client.get(path, headers=headers)
    assert first.status_code == 200
    etag = first.headers["ETag"].strip('"')
    headers = {k: v.format(etag=etag) for k, v in headers.items()}
    calls = flask.calls
    fast = client.get(path, headers=headers)
    assert flask.calls == calls, "the fast path did not answer"
    slow = Client(flask.app).get(path, headers=headers)
    assert (fast.status, fast.get_data()) == (slow.status, slow.get_data())
    assert sorted(fast.headers.items()) == sorted(slow.headers.items())


def test_a_negotiated_hit_is_of_the_kind_the_accept_header_chose(tmp_path):
    _, client, flask = make(tmp_path, format_negotiation=True)
    client.put("/images/p", data=make_png(300, 200))
    client.get("/images/p?xsize=50", headers={"Accept": CHROME_ACCEPT})
    client.get("/images/p?xsize=50", headers={"Accept": "image/jpeg"})
    calls = flask.calls
    avif = client.get("/images/p?xsize=50", headers={"Accept": CHROME_ACCEPT})
    jpeg = client.get("/images/p?xsize=50", headers={"Accept": "image/jpeg"})
    assert flask.calls == calls
    assert (avif.headers["Content-Type"], jpeg.headers["Content-Type"]) == ("image/avif", "image/jpeg")


def test_a_range_goes_to_flask(tmp_path):
    _, client, flask = make(tmp_path)
    client.put("/images/p", data=make_png(300, 200))
    whole = client.get("/images/p?xsize=100")
    calls = flask.calls
    part = client.get("/images/p?xsize=100", headers={"Range": "bytes=0-9"})
    assert flask.calls == calls + 1 and part.status_code == 206 and part.data == whole.data[:10]

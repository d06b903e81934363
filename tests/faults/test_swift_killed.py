"""Swift killed (SIGKILL, every server at once) in the middle of a write, then started again.

The moment is made exact by the fault proxy: it forwards the write up to half its body, or up
to the COPY of an import, and holds the rest; Swift is killed while the write is held, and the
rest then goes to a dead Swift. Nothing stored before is lost, the old original survives a
failed replace, nothing partial is ever listed, and the same request made again succeeds.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.fixtures.faultproxy import DOWN, UP, FaultProxy
from tests.fixtures.server import Server, running_server
from tests.fixtures.swift import PrivateSwift
from tests.fixtures.tally import Tally

from .conftest import assert_503_retry_after, no_tracebacks, noisy_jpeg, sha, swift_bytes, swift_objects, swift_via

ORIGINALS, CACHE = "originals", "cache"
LARGE = noisy_jpeg(1600, 1200, seed=3)  # ~1.6 MB
V1, V2 = noisy_jpeg(500, 400, seed=4), noisy_jpeg(520, 400, seed=5)


@pytest.fixture(scope="module")
def world(private_swift: PrivateSwift, tmp_path_factory) -> Iterator[tuple[Server, FaultProxy]]:
    """A two-worker server on this module's own Swift, through the fault proxy; TempURL key set."""
    swift = private_swift.server
    proxy = FaultProxy(("127.0.0.1", private_swift.proxy_port))
    conn = swift.connection()
    for name in (ORIGINALS, CACHE):
        conn.put_container(name)
    conn.post_account({"X-Account-Meta-Temp-URL-Key": "k"})
    conn.close()
    root: Path = tmp_path_factory.mktemp("swift-killed")
    config = swift_via(proxy, swift, ORIGINALS, CACHE, root / "data", swift={"timeout": 10.0})
    try:
        with running_server(config, root / "server", workers=2) as server:
            yield server, proxy
    finally:
        proxy.close()


@pytest.fixture
def stored(world, tally: Tally, private_swift: PrivateSwift, u: str) -> Iterator[dict[str, bytes]]:
    """A few originals written before the kill; after the test every one must be there, intact."""
    server, proxy = world
    proxy.clear()
    before = proxy.faults
    keep = {f"{u}/keep/{i}": noisy_jpeg(120 + i, 90, seed=10 + i) for i in range(3)}
    for name, data in keep.items():
        assert tally.put(f"{server.url}/images/{name}", data=data).status_code in (200, 201)
    yield keep
    proxy.clear()
    tally.faults += proxy.faults - before
    for name, data in keep.items():
        assert tally.check(swift_bytes(private_swift.server, ORIGINALS, f"{name}.jpg") == data), f"{name} lost"
    no_tracebacks(server)


def kill_mid_write(private_swift: PrivateSwift, proxy: FaultProxy, tally: Tally, match: bytes,
                   request: Callable[[], requests.Response], *, direction: str = UP, after: int = 0) -> requests.Response:
    """Make ``request`` in a thread; when the proxy holds the traffic that ``match`` names, kill
    Swift, then let the held bytes go on: a held request to the dead Swift; a held answer
    (``direction`` DOWN) is lost instead, its connection reset. Swift is started again; the
    request's answer is returned."""
    rule = proxy.fault("hold", match=match, direction=direction, after=after)
    answer: list[Any] = []
    thread = threading.Thread(target=lambda: answer.append(request()))
    thread.start()
    rule.wait_fired()
    private_swift.kill()
    tally.faults += 1
    if direction == DOWN:
        proxy.reset_all()
    rule.release()
    thread.join()
    private_swift.start()
    return answer[0]


def test_swift_killed_during_a_large_post(world, stored, tally, private_swift, u):
    server, proxy = world
    swift = private_swift.server
    match = f"PUT /v1/{swift.account}/{ORIGINALS}/{u}/big/large.jpg".encode()
    answer = kill_mid_write(private_swift, proxy, tally, match, after=len(LARGE) // 2,
                            request=lambda: tally.post(f"{server.url}/images/{u}/big/", files={"file": ("large.jpg", LARGE)}))
    assert_503_retry_after(answer)
    assert f"{u}/big/large.jpg" not in swift_objects(swift, ORIGINALS, f"{u}/big/"), "a partial object is listed"
    assert tally.get(f"{server.url}/images?regex={u}/big/.*").json() == []
    again = tally.post(f"{server.url}/images/{u}/big/", files={"file": ("large.jpg", LARGE)})
    assert again.status_code == 200 and again.json() == f"{u}/big/large"
    assert tally.check(swift_bytes(swift, ORIGINALS, f"{u}/big/large.jpg") == LARGE)


def test_swift_killed_during_a_put_replace_keeps_the_old_original(world, stored, tally, private_swift, u):
    server, proxy = world
    swift = private_swift.server
    base = f"{server.url}/images"
    assert tally.put(f"{base}/{u}/r", data=V1).status_code == 201
    old = tally.get(f"{base}/{u}/r?xsize=100")
    assert old.status_code == 200
    match = f"PUT /v1/{swift.account}/{ORIGINALS}/{u}/r.jpg".encode()
    answer = kill_mid_write(private_swift, proxy, tally, match, after=len(V2) // 2,
                            request=lambda: tally.put(f"{base}/{u}/r", data=V2))
    assert_503_retry_after(answer)
    assert tally.check(swift_bytes(swift, ORIGINALS, f"{u}/r.jpg") == V1), "the old original must stay whole"
    assert tally.get(f"{base}/{u}/r?original=true").content == V1
    assert list(swift_objects(swift, ORIGINALS, f"{u}/r.")) == [f"{u}/r.jpg"]
    again = tally.put(f"{base}/{u}/r", data=V2)
    assert again.status_code == 200 and again.headers["X-Checksum-Sha256"] == sha(V2)
    assert tally.check(tally.get(f"{base}/{u}/r?original=true").content == V2)
    assert tally.get(f"{base}/{u}/r?xsize=100").headers["ETag"] != old.headers["ETag"]


@pytest.mark.parametrize("lost", ["request", "answer"])
def test_swift_killed_during_an_imports_server_side_copy(world, stored, tally, private_swift, lost, u):
    """Killed as the COPY reaches Swift (``request``: never done) or as its answer leaves (``answer``:
    done, but the server never hears it). Either way the import finishes on the next try, once."""
    server, proxy = world
    swift = private_swift.server
    name = f"{u}/imp/{lost}"
    rec = tally.post(f"{server.url}/imports", json={"name": name, "sha256": sha(V1), "size": len(V1)}).json()
    # With its content type and checksum on the staging object, the import is placed by a COPY in Swift.
    put = requests.put(rec["upload_url"], data=V1, headers={"Content-Type": "image/jpeg", **rec["upload_headers"]},
                       timeout=60)
    assert put.status_code == 201, put.text
    match = f"COPY /v1/{swift.account}/{ORIGINALS}/.imports/{rec['id']}.data".encode()
    answer = kill_mid_write(private_swift, proxy, tally, match, direction=UP if lost == "request" else DOWN,
                            request=lambda: tally.put(f"{server.url}/imports/{rec['id']}", json={"complete": True}))
    assert answer.status_code in (202, 503), answer.text  # still processing, or Swift gone when it looked
    listed = swift_objects(swift, ORIGINALS, f"{name}.")
    assert set(listed) <= {f"{name}.jpg"}, listed
    if listed:  # the copy was done before Swift died: whole, never partial
        assert swift_bytes(swift, ORIGINALS, f"{name}.jpg") == V1

    done = tally.put(f"{server.url}/imports/{rec['id']}", json={"complete": True}).json()
    assert done["state"] == "done", done
    assert tally.check(tally.get(f"{server.url}/images/{name}?original=true").content == V1)
    assert list(swift_objects(swift, ORIGINALS, f"{name}.")) == [f"{name}.jpg"]
    assert f".imports/{rec['id']}.data" not in swift_objects(swift, ORIGINALS, ".imports/")
    head = swift.connection().head_object(ORIGINALS, f"{name}.jpg")
    assert head["x-object-meta-sha256"] == hashlib.sha256(V1).hexdigest()

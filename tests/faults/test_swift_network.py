"""A real server on the real Swift with a fault-injecting proxy between them: stalls, resets, refusals.

Shown on real Gunicorn and real Swift: a timeout is a 503 with Retry-After; a stall never
takes every thread (cache hits and /healthz go on); a body cut mid-way is never served as
whole; an upload cut by a reset leaves nothing; and everything recovers without a restart.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fixtures.faultproxy import DOWN, UP, FaultProxy
from tests.fixtures.images import assert_scene, open_bytes
from tests.fixtures.server import Server, running_server
from tests.fixtures.swift import SwiftServer
from tests.fixtures.tally import Tally
from tests.fixtures.waiting import wait_for
from tests.s3.fixtures import new_bucket_name, remove_bucket

from .conftest import (
    assert_503_retry_after,
    new_containers,
    no_tracebacks,
    noisy_jpeg,
    swift_bytes,
    swift_objects,
    swift_via,
    worker_pids,
)

BIG = noisy_jpeg(700, 500, seed=1)  # ~600 KB: long enough to cut in the middle
OTHER = noisy_jpeg(600, 400, seed=2)


@pytest.fixture(scope="module")
def proxy(swift_server: SwiftServer) -> Iterator[FaultProxy]:
    p = FaultProxy(("127.0.0.1", urlsplit(swift_server.auth_url).port or 80))
    yield p
    p.close()


@pytest.fixture(scope="module")
def world(swift_server, proxy, tmp_path_factory) -> Iterator[tuple[Server, str]]:
    """One worker of four threads on Swift through the proxy, no retries; Swift's timeout 4 s (a stall's
    503 comes after it; a healthy Swift, however busy the machine, never leaves a socket silent so long)."""
    originals, cache = new_containers(swift_server)
    root: Path = tmp_path_factory.mktemp("swift-network")
    with running_server(swift_via(proxy, swift_server, originals, cache, root / "data", swift={"timeout": 4.0}),
                        root / "server", workers=1) as server:
        yield server, originals


@pytest.fixture(autouse=True)
def no_faults_left(proxy: FaultProxy, tally: Tally) -> Iterator[None]:
    proxy.clear()
    before = proxy.faults
    yield
    proxy.clear()
    tally.faults += proxy.faults - before


def test_a_stalled_swift_is_503_with_retry_after_and_recovers_without_a_restart(world, proxy, tally, u):
    server, _ = world
    base = f"{server.url}/images"
    assert tally.put(f"{base}/{u}/stall/p", data=BIG).status_code == 201
    workers = worker_pids(server)

    proxy.latency = 0.05  # slow, within the timeout: slower answers, not errors
    assert tally.get(f"{base}/{u}/stall/p?xsize=64").status_code == 200
    proxy.clear()

    proxy.stall()
    asks = [("GET", f"{base}/{u}/stall/new?xsize=64"), ("PUT", f"{base}/{u}/stall/q"), ("GET", f"{server.url}/readyz")]
    with ThreadPoolExecutor(3) as pool:  # at once: three slots of the gate, one timeout's wait
        answers = list(pool.map(lambda ask: tally.request(*ask, data=OTHER if ask[0] == "PUT" else None), asks))
    for answer in answers:
        assert_503_retry_after(answer)
    assert tally.get(f"{server.url}/healthz").status_code == 200
    proxy.clear()

    # At once, by the same workers: no restart, no waiting for anything to heal.
    assert tally.get(f"{server.url}/readyz").status_code == 200
    assert tally.put(f"{base}/{u}/stall/q", data=OTHER).status_code == 201
    assert tally.get(f"{base}?regex={u}/stall/.*").json() == [f"{u}/stall/p", f"{u}/stall/q"]
    assert tally.get(f"{base}/{u}/stall/p?xsize=65").status_code == 200
    assert worker_pids(server) == workers
    no_tracebacks(server)


def test_a_body_cut_mid_way_is_never_served_as_whole(world, proxy, tally, swift_server, u):
    server, originals = world
    base = f"{server.url}/images"
    assert tally.put(f"{base}/{u}/cut/big", data=BIG).status_code == 201
    object_get = f"GET /v1/{swift_server.account}/{originals}/{u}/cut/big.jpg".encode()
    for action in ("reset", "close"):  # a RST, and a clean FIN that reads like the end of the body
        rule = proxy.fault(action, match=object_get, direction=DOWN, after=len(BIG) // 2)
        assert_503_retry_after(tally.get(f"{base}/{u}/cut/big?original=true"))
        rule.wait_fired()
        rule = proxy.fault(action, match=object_get, direction=DOWN, after=len(BIG) // 2)
        assert_503_retry_after(tally.get(f"{base}/{u}/cut/big?xsize=120"))
        rule.wait_fired()
    # Nothing was made from half an original: the next answer is derived anew, and right.
    whole = tally.get(f"{base}/{u}/cut/big?xsize=120")
    assert whole.status_code == 200 and whole.headers["X-Image-Repo-Cache"] == "miss"
    derived = open_bytes(whole.content)
    assert derived.size == (120, 85)
    assert_scene(derived)
    assert tally.check(tally.get(f"{base}/{u}/cut/big?original=true").content == BIG)
    no_tracebacks(server)


def test_an_upload_cut_by_a_reset_leaves_nothing_partial_or_listed(world, proxy, tally, swift_server, u):
    server, originals = world
    base = f"{server.url}/images"
    put_of = f"PUT /v1/{swift_server.account}/{originals}/{u}/up/".encode()

    rule = proxy.fault("reset", match=put_of + b"new.jpg", direction=UP, after=len(BIG) // 3)
    assert_503_retry_after(tally.post(f"{base}/{u}/up/new.jpg", files={"file": ("new.jpg", BIG)}))
    rule.wait_fired()
    assert f"{u}/up/new.jpg" not in swift_objects(swift_server, originals, f"{u}/up/")
    assert tally.get(f"{base}?regex={u}/up/.*").json() == []
    assert tally.post(f"{base}/{u}/up/new.jpg", files={"file": ("new.jpg", BIG)}).status_code == 200  # the retry
    assert tally.check(swift_bytes(swift_server, originals, f"{u}/up/new.jpg") == BIG)

    # A replace cut the same way: the old original stays, whole.
    rule = proxy.fault("reset", match=put_of + b"new.jpg", direction=UP, after=len(OTHER) // 3)
    assert_503_retry_after(tally.put(f"{base}/{u}/up/new", data=OTHER))
    rule.wait_fired()
    assert tally.check(tally.get(f"{base}/{u}/up/new?original=true").content == BIG)
    assert tally.put(f"{base}/{u}/up/new", data=OTHER).status_code == 200
    assert tally.check(tally.get(f"{base}/{u}/up/new?original=true").content == OTHER)
    assert list(swift_objects(swift_server, originals, f"{u}/up/")) == [f"{u}/up/new.jpg"]
    no_tracebacks(server)


def test_refused_connections_are_503_and_cached_images_still_answer(world, proxy, tally, u):
    server, _ = world
    base = f"{server.url}/images"
    for name in ("p", "q"):
        assert tally.put(f"{base}/{u}/refuse/{name}", data=BIG).status_code == 201
    warm = tally.get(f"{base}/{u}/refuse/p?xsize=80")
    assert warm.status_code == 200
    workers = worker_pids(server)

    proxy.refuse()
    proxy.reset_all()  # the worker's kept-alive connections too: every new one is refused
    assert_503_retry_after(tally.get(f"{base}/{u}/refuse/q?xsize=81"))  # needs Swift: never looked at
    assert_503_retry_after(tally.get(f"{server.url}/readyz"))
    hit = tally.get(f"{base}/{u}/refuse/p?xsize=80")
    assert hit.status_code == 200 and hit.content == warm.content
    # p's intermediate is kept (in memory, on disk): another size of it needs no Swift either.
    assert tally.get(f"{base}/{u}/refuse/p?xsize=81").status_code == 200
    proxy.clear()

    assert tally.get(f"{server.url}/readyz").status_code == 200
    assert tally.get(f"{base}/{u}/refuse/q?xsize=81").status_code == 200
    assert worker_pids(server) == workers
    no_tracebacks(server)


def test_a_stall_never_takes_every_thread(swift_server, proxy, tally, tmp_path):
    """Eight requests that need Swift while it stalls: at most threads - 1 of them wait on it
    (the store gate), the others are 503 at once, and /healthz and cache hits keep answering.
    Swift's timeout here is far longer than the test, so nothing is answered by a timeout."""
    originals, cache = new_containers(swift_server)
    config = swift_via(proxy, swift_server, originals, cache, tmp_path / "data", original_stat_ttl=0,
                       swift={"timeout": 600.0})
    with running_server(config, tmp_path / "server", workers=1) as server:
        base = f"{server.url}/images"
        assert tally.put(f"{base}/hot", data=BIG).status_code == 201
        warm = tally.get(f"{base}/hot?xsize=50")
        assert warm.status_code == 200

        def metrics() -> dict:
            return tally.get(f"{server.url}/metrics", headers={"Accept": "application/json"}).json()  # type: ignore[no-any-return]

        # The derivative's copy in the cache store is written behind the answer: let it land first.
        wait_for(lambda: metrics()["cache"]["pending_writes"] == 0, "writes behind the answer done")
        proxy.stall()
        done: list[int] = []
        lock = threading.Lock()

        def cold(i: int) -> int:
            status = tally.get(f"{base}/cold/{i}?xsize=50").status_code
            with lock:
                done.append(status)
            return status

        with ThreadPoolExecutor(8) as pool:
            try:
                futures = [pool.submit(cold, i) for i in range(8)]
                # Each request either holds a slot of the gate (and waits on Swift) or was refused one.
                wait_for(lambda: len(done) + metrics()["store_gate"]["in_use"] == 8,
                         "every cold request held or answered")
                gate = metrics()["store_gate"]
                held = gate["in_use"]
                # (The fast path asks once, then Flask again: a refused request may count twice.)
                assert gate["limit"] == 3 and 1 <= held <= 3 and gate["refused"] >= 8 - held, gate
                assert sorted(done) == [503] * (8 - held)
                for _ in range(3):
                    assert tally.get(f"{server.url}/healthz").status_code == 200
                    hit = tally.get(f"{base}/hot?xsize=50")  # past its TTL: Swift is asked, and does not answer
                    assert hit.status_code == 200 and hit.content == warm.content
                assert len(done) == 8 - held, "the held requests must still be waiting on the stalled Swift"
            finally:
                proxy.clear()
            statuses = sorted(f.result() for f in futures)
        assert statuses == sorted([404] * held + [503] * (8 - held))  # no such images, once Swift answers
        assert tally.get(f"{base}/hot?xsize=50").status_code == 200
        no_tracebacks(server)


def test_s3_through_the_proxy_stalls_cuts_and_recovers(swift_server, proxy, tally, tmp_path):
    """The same faults on the S3 API (Swift's s3api): a stall is a 503, a body cut mid-way is never
    served, an upload cut by a reset is not stored, and all comes back without a restart."""
    bucket = new_bucket_name()
    s3 = {"endpoint_url": f"http://{proxy.address}", "region": swift_server.s3_region, "path_style": True,
          "access_key_id": swift_server.s3_access_key, "secret_access_key": swift_server.s3_secret_key,
          "retries": 0, "connect_timeout": 4.0, "read_timeout": 4.0}
    config = {"data_dir": str(tmp_path / "data"), "store": f"s3://{bucket}/orig", "cache_store": f"s3://{bucket}/cache",
              "url_key": "k", "s3": s3, "log_level": "warning"}
    try:
        with running_server(config, tmp_path / "server", workers=1) as server:
            base = f"{server.url}/images"
            assert tally.put(f"{base}/big", data=BIG).status_code == 201
            workers = worker_pids(server)

            proxy.stall()
            assert_503_retry_after(tally.get(f"{base}/never?xsize=64"))
            proxy.clear()

            rule = proxy.fault("reset", match=f"GET /{bucket}/orig/big.jpg".encode(), direction=DOWN, after=len(BIG) // 2)
            assert_503_retry_after(tally.get(f"{base}/big?original=true"))
            rule.wait_fired()
            rule = proxy.fault("reset", match=f"PUT /{bucket}/orig/up.jpg".encode(), direction=UP, after=len(OTHER) // 3)
            assert_503_retry_after(tally.post(f"{base}/up.jpg", files={"file": ("up.jpg", OTHER)}))
            rule.wait_fired()
            assert tally.get(f"{base}").json() == ["big"]

            assert tally.post(f"{base}/up.jpg", files={"file": ("up.jpg", OTHER)}).status_code == 200
            assert tally.check(tally.get(f"{base}/up?original=true").content == OTHER)
            assert tally.check(tally.get(f"{base}/big?original=true").content == BIG)
            assert tally.get(f"{base}/big?xsize=64").status_code == 200
            assert sorted(tally.get(base).json()) == ["big", "up"]
            assert worker_pids(server) == workers
            no_tracebacks(server)
    finally:
        remove_bucket(swift_server, bucket)

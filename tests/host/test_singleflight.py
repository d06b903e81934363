"""One derivation for many identical concurrent requests: per process and across worker processes."""
from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import requests

from image_repo.config.settings import Settings
from image_repo.host import flight as flight_module
from image_repo.host.flight import STRIPES, HostFlight
from image_repo.imaging.spec import parse_query
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg
from tests.fixtures.server import running_server
from tests.fixtures.waiting import HANG


def _hold_then_signal(directory: str, key: str, locked, release) -> None:
    with HostFlight(directory).hold(key):
        locked.set()
        release.wait(HANG)


def test_a_second_process_waits_for_the_holder_and_is_told_it_waited(tmp_path, monkeypatch):
    ctx = multiprocessing.get_context("spawn")
    locked, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_then_signal, args=(str(tmp_path), "k", locked, release))
    holder.start()
    try:
        assert locked.wait(HANG)
        # Seen, not guessed: the waiter's first try at the lock fails (the holder has it), and only
        # then is the holder let go. (A timed join let a slow waiter try only after the release.)
        refused = threading.Event()
        real_flock = fcntl.flock

        def flock(fd: int, op: int) -> None:
            try:
                real_flock(fd, op)
            except BlockingIOError:
                refused.set()
                raise

        monkeypatch.setattr(flight_module.fcntl, "flock", flock)
        got: list[bool] = []
        waiter = threading.Thread(target=lambda: got.append(HostFlight(str(tmp_path)).hold("k").__enter__()))
        waiter.start()
        assert refused.wait(HANG), "the lock was never found held"
        assert waiter.is_alive() and got == [], "the lock was taken while another process held it"
        release.set()
        waiter.join(HANG)
        assert got == [True]
    finally:
        release.set()
        holder.join(HANG)


def test_lock_files_do_not_pile_up(tmp_path):
    flight = HostFlight(str(tmp_path))
    for i in range(3 * STRIPES):
        with flight.hold(f"key-{i}") as waited:
            assert waited is False
    again = flight._path("key-0")
    with flight.hold("key-0"):
        pass
    assert len(os.listdir(tmp_path)) <= STRIPES
    assert os.path.exists(again)  # kept for the next derivation: no file made per key


def test_keys_sharing_a_stripe_still_derive_each(tmp_path):
    flight = HostFlight(str(tmp_path))
    first = "key-0"
    other = next(k for k in (f"key-{i}" for i in range(1, 100_000)) if flight._path(k) == flight._path(first))
    with flight.hold(first) as waited:
        assert waited is False
    with flight.hold(other) as waited:  # free again: the same file, locked anew
        assert waited is False


def test_an_unusable_directory_runs_the_block_unlocked(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    flight = HostFlight(str(blocker / "sub"))
    with flight.hold("k") as waited:
        assert waited is False
    assert flight.enabled is False


def test_16_identical_new_requests_to_2_workers_derive_once(tmp_path):
    config = {"data_dir": str(tmp_path / "data"), "threads": 8}
    with running_server(config, tmp_path / "server", workers=2) as server:
        assert requests.put(server.url + "/images/p", data=make_jpeg(2400, 1800), timeout=30).status_code == 201

        barrier = threading.Barrier(16)

        def one(_: int) -> tuple[int, str]:
            barrier.wait()
            r = requests.get(server.url + "/images/p?xsize=300", headers={"Connection": "close"}, timeout=HANG)
            return r.status_code, r.headers.get("X-Image-Repo-Cache", "")

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(one, range(16)))
        # Each answer says whether a derivation was made for it ("miss"): counted from the answers,
        # whichever worker gave them (asking /metrics of both workers relied on reaching both).
        assert [status for status, _ in answers] == [200] * 16
        assert sorted(cache for _, cache in answers) == ["hit"] * 15 + ["miss"]


def _two_workers(tmp_path):
    """Two apps over the same data directory: two Gunicorn workers of one host, in one process
    (flock locks of separate open files conflict within a process as across processes)."""
    settings = Settings(data_dir=str(tmp_path / "data"))
    first, second = create_app(settings), create_app(settings)
    assert first.test_client().put("/images/p", data=make_jpeg(1200, 900)).status_code == 201
    return first, second


def _derivations(app) -> int:
    return app.extensions["image_repo"].counters()["derivations"]


def test_a_worker_that_locks_after_the_maker_released_finds_its_result(tmp_path):
    """The interleaving that once failed CI: worker A misses; worker B makes the image and releases
    its lock; only then does A ask for the lock, gets it without waiting, and must not derive again."""
    a, b = _two_workers(tmp_path)
    service = a.extensions["image_repo"]
    real_hold = service._host_flight.hold
    seen: list[bool] = []

    @contextmanager
    def hold_after_the_other_worker_made_it(key: str):
        assert b.test_client().get("/images/p?xsize=300").headers["X-Image-Repo-Cache"] == "miss"
        with real_hold(key) as waited:
            seen.append(waited)
            yield waited

    service._host_flight.hold = hold_after_the_other_worker_made_it
    response = a.test_client().get("/images/p?xsize=300")
    assert response.status_code == 200
    assert seen == [False], "the interleaving under test: A never waited for the lock"
    assert response.headers["X-Image-Repo-Cache"] == "hit"
    assert (_derivations(a), _derivations(b)) == (0, 1)


def test_a_thread_that_leads_after_the_first_leader_finished_finds_its_result(tmp_path):
    """The same within one worker: thread A misses; thread B leads, makes it and leaves; A then
    leads a new flight of its own and must find B's result in memory."""
    app, _ = _two_workers(tmp_path)
    service = app.extensions["image_repo"]
    spec = parse_query({"xsize": "300"}, default_kind="jpg").spec
    original = service.get_original("p")
    real_run = service._flight.run
    calls: list[str] = []

    def run_after_another_thread_finished(key, work):
        if not calls:
            calls.append(key)
            other = threading.Thread(target=service.render, args=(original, spec))
            other.start()
            other.join(30)
        return real_run(key, work)

    service._flight.run = run_after_another_thread_finished
    rendered = service.render(original, spec)
    assert rendered.cached is True
    assert _derivations(app) == 1

"""The host's write counter: a write through one worker is seen by the others at once."""
from __future__ import annotations

import multiprocessing

from image_repo.config.settings import Settings
from image_repo.host.writes import HostWrites
from image_repo.storage.memory import MemoryStore
from image_repo.web.app import create_app
from tests.fixtures.images import make_jpeg


def _bump(directory: str) -> None:
    HostWrites(directory).bump()


def test_a_bump_in_another_process_changes_the_mark_this_one_reads(tmp_path):
    mine = HostWrites(str(tmp_path))
    assert mine.shared
    before = mine.value()
    proc = multiprocessing.get_context("fork").Process(target=_bump, args=(str(tmp_path),))
    proc.start()
    proc.join(10)
    assert proc.exitcode == 0
    after = mine.value()
    assert after != before
    assert mine.value() == after  # reading does not change it


def test_an_unusable_directory_still_counts_this_process_own_writes(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a directory")
    writes = HostWrites(str(blocker / "sub"))
    assert not writes.shared and "write counter" in caplog.text
    before = writes.value()
    writes.bump()
    assert writes.value() != before


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.stats = 0

    def stat(self, key):  # type: ignore[override]
        self.stats += 1
        return super().stat(key)

    def list(self, prefix=""):  # type: ignore[override]
        self.stats += 1
        return super().list(prefix)


def _two_workers(tmp_path):
    """Two apps on one data directory and store: two workers of one host, with a long TTL."""
    settings = Settings()
    settings.data_dir = str(tmp_path / "data")
    settings.original_stat_ttl = 3600.0
    store, cache = CountingStore(), MemoryStore()
    worker_a = create_app(settings, store=store, cache_store=cache)
    worker_b = create_app(settings, store=store, cache_store=cache)
    return store, worker_a, worker_b


def test_workers_trust_what_they_know_until_a_write_on_the_host_and_a_404_tells_nobody(tmp_path):
    store, worker_a, worker_b = _two_workers(tmp_path)
    a, b = worker_a.test_client(), worker_b.test_client()
    assert a.put("/images/p", data=make_jpeg(400, 300)).status_code == 201
    first = a.get("/images/p?xsize=100")
    stats = store.stats
    for _ in range(3):
        assert a.get("/images/p?xsize=100").headers["ETag"] == first.headers["ETag"]
    assert store.stats == stats  # within the TTL: no store round trip
    writes = worker_a.extensions["image_repo"].originals._writes
    mark = writes.value()
    assert a.get("/images/nothing-here?xsize=100").status_code == 404
    assert writes.value() == mark  # a miss is nobody else's business
    assert b.put("/images/p", data=make_jpeg(300, 400)).status_code == 200
    assert writes.value() != mark
    new = a.get("/images/p?xsize=100")
    assert new.headers["ETag"] != first.headers["ETag"]
    assert new.headers["X-Image-Repo-Cache"] == "miss"


def test_that_a_name_has_no_original_is_trusted_as_long_and_a_write_on_the_host_ends_it(tmp_path):
    """``p.jpg`` names the original ``p``: the exact name ``p.jpg`` is looked for first, and a
    store that misses lists (a directory of 100,000 names: ~160 ms), so a miss is remembered too."""
    store, worker_a, worker_b = _two_workers(tmp_path)
    a, b = worker_a.test_client(), worker_b.test_client()
    assert a.put("/images/p", data=make_jpeg(400, 300)).status_code == 201
    first = a.get("/images/p.jpg?xsize=100")
    assert first.status_code == 200
    assert a.get("/images/gone?xsize=100").status_code == 404
    stats = store.stats
    for _ in range(3):
        assert a.get("/images/p.jpg?xsize=100").headers["ETag"] == first.headers["ETag"]
        assert a.get("/images/gone?xsize=100").status_code == 404
    assert store.stats == stats  # neither the absent p.jpg nor the absent gone is asked again
    # Writes through another worker of the host are seen at once: p replaced (a PUT of p.jpg
    # names p, as a GET does), and an image now named gone.
    assert b.put("/images/p.jpg", data=make_jpeg(300, 400)).status_code == 200
    assert b.put("/images/gone", data=make_jpeg(200, 100)).status_code == 201
    exact = a.get("/images/p.jpg?xsize=100")
    assert exact.status_code == 200 and exact.headers["ETag"] != first.headers["ETag"]
    assert a.get("/images/p.jpg?meta=true").get_json()["width"] == 300
    assert a.get("/images/gone?xsize=100").status_code == 200
    # With no TTL nothing is trusted: every request asks the store again.
    settings = Settings()
    settings.data_dir = str(tmp_path / "data0")
    settings.original_stat_ttl = 0
    store = CountingStore()
    c = create_app(settings, store=store, cache_store=MemoryStore()).test_client()
    assert c.get("/images/gone?xsize=100").status_code == 404
    stats = store.stats
    assert c.get("/images/gone?xsize=100").status_code == 404
    assert store.stats > stats

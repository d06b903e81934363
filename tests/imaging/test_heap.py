"""A worker gives freed heap back once it holds more than it keeps for the next decodes."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from image_repo.config.settings import Settings
from image_repo.imaging import heap
from image_repo.storage.memory import MemoryStore
from image_repo.web.app import create_app
from tests.fixtures.images import make_png

glibc = pytest.mark.skipif(heap._glibc() is None, reason="needs glibc's mallinfo2 and malloc_trim")


@pytest.fixture(autouse=True)
def settled_now(monkeypatch):
    """The periodic look at the heap just happened: within a test, only what the test does trims."""
    monkeypatch.setattr(heap, "_last_settle", [heap.time.monotonic()])


@pytest.fixture
def client_and_service(tmp_path):
    settings = Settings()
    settings.data_dir = str(tmp_path)
    app = create_app(settings, store=MemoryStore(), cache_store=MemoryStore())
    return app.test_client(), app.extensions["image_repo"]


@glibc
def test_a_heap_with_little_free_is_left_alone():
    free = heap.free_heap_bytes()
    assert free is not None and free < heap.KEEP_FREE_BYTES
    assert heap.release_after_decode(10**8) is False
    assert heap.release_after_decode(heap.LARGE_DECODE_PIXELS - 1, keep_free=0) is False  # a small decode: no look


@glibc
def test_any_decode_settles_the_heap_at_most_every_so_often(monkeypatch):
    """Small decodes free memory too, in every thread's arena: at most every SETTLE_SECONDS, a
    decode of any size is followed by a trim when more than SETTLE_FREE_BYTES sit free."""
    trims = []
    info, trim = heap._glibc()
    monkeypatch.setattr(heap, "_glibc", lambda: (info, lambda pad: trims.append(pad) or trim(pad)))
    monkeypatch.setattr(heap, "SETTLE_FREE_BYTES", 0)  # whatever this process holds free now
    start = heap._last_settle[0]
    assert heap.settle(now=start + 1) is False and trims == []  # too soon after the last look
    assert heap.settle(now=start + heap.SETTLE_SECONDS) is True and trims == [0]
    assert heap.settle(now=start + heap.SETTLE_SECONDS + 1) is False and trims == [0]  # the clock starts over
    monkeypatch.setattr(heap, "SETTLE_FREE_BYTES", 2**62)
    assert heap.settle(now=start + 3 * heap.SETTLE_SECONDS) is False and trims == [0]  # looked: little free
    monkeypatch.setattr(heap, "_last_settle", [start - heap.SETTLE_SECONDS])
    monkeypatch.setattr(heap, "SETTLE_FREE_BYTES", 0)
    assert heap.release_after_decode(1000) is True and trims == [0, 0]  # a small decode settles too


@glibc
def test_derivations_from_originals_trim_only_past_what_the_heap_keeps(client_and_service, monkeypatch):
    client, svc = client_and_service
    client.put("/images/big", data=make_png(2500, 1700))  # a PNG is decoded whole: 4.25 MP, 17 MB
    assert client.get("/images/big?xsize=256").status_code == 200
    assert svc.counters()["heap_trims"] == 0  # far less than KEEP_FREE_BYTES is free
    monkeypatch.setattr(heap, "KEEP_FREE_BYTES", 0)
    assert client.get("/images/big?xsize=1024").status_code == 200  # not inside the 625x425 intermediate
    assert svc.counters()["heap_trims"] == 1
    assert client.get("/images/big?xsize=128").status_code == 200  # from the intermediate: no decode of the original
    assert svc.counters()["from_intermediate"] == 1 and svc.counters()["heap_trims"] == 1


_RSS_AFTER_DECODES = textwrap.dedent("""
    import io, os, sys
    from concurrent.futures import ThreadPoolExecutor
    from PIL import Image
    from image_repo.imaging import DerivationSpec, derive, heap
    from image_repo.imaging.intermediate import Wish

    size = (2500, 1700)
    noise = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buf = io.BytesIO()
    noise.save(buf, "PNG", compress_level=0)
    source = buf.getvalue()
    del noise, buf

    def request(_):
        derived = derive(source, DerivationSpec("jpg", 256, 256), keep=Wish(),
                         max_pixels=10**8, max_output_pixels=10**8)
        if sys.argv[1] == "release":
            heap.release_after_decode(derived.decoded_pixels, keep_free=0)

    with ThreadPoolExecutor(2) as pool:  # as in a gthread worker
        list(pool.map(request, range(6)))
    status = open("/proc/self/status").read()
    print(int(status.split("VmRSS:")[1].split()[0]) // 1024)
""")


@glibc
def test_releasing_after_large_decodes_keeps_the_worker_smaller():
    def rss_mb(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _RSS_AFTER_DECODES, mode],
                             capture_output=True, text=True, check=True, timeout=120)
        return int(out.stdout.split()[-1])

    kept, released = rss_mb("keep"), rss_mb("release")
    assert released < kept - 20, f"RSS {released} MB with release vs {kept} MB without"

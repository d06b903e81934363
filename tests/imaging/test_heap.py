"""After a large decode the worker gives the freed heap back; after a small one it does not try."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from image_repo.app import create_app
from image_repo.imaging import heap
from image_repo.settings import Settings
from image_repo.storage.memory import MemoryStore
from tests.fixtures.images import make_jpeg, make_png

glibc = pytest.mark.skipif(heap._malloc_trim() is None, reason="needs glibc's malloc_trim")


@pytest.fixture
def client_and_service(tmp_path):
    settings = Settings()
    settings.data_dir = str(tmp_path)
    app = create_app(settings, store=MemoryStore(), cache_store=MemoryStore())
    return app.test_client(), app.extensions["image_repo"]


def test_small_decodes_leave_the_heap_alone():
    assert heap.release_after_decode(heap.TRIM_FROM_PIXELS - 1) is False


@glibc
def test_a_large_original_is_trimmed_after_and_a_small_one_is_not(client_and_service):
    client, svc = client_and_service
    client.put("/images/small", data=make_jpeg(2400, 1800))  # decoded at 1/8 for 256 px: 300x225
    assert client.get("/images/small?xsize=256").status_code == 200
    assert svc.counters()["heap_trims"] == 0
    client.put("/images/big", data=make_png(2500, 1700))  # a PNG is decoded whole: 4.25 MP
    assert client.get("/images/big?xsize=256").status_code == 200
    assert svc.counters()["heap_trims"] == 1
    assert client.get("/images/big?xsize=128").status_code == 200  # from the intermediate: small
    assert svc.counters()["heap_trims"] == 1


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
            heap.release_after_decode(derived.decoded_pixels)

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

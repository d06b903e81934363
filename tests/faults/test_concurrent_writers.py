"""Two servers on one Swift, writing the same names at once while both serve them.

Each name ends as exactly one of the versions written to it, in one stored form; every
derivative served, and every one left in the cache store, shows the version its key (and
ETag) names. The load is a fixed number of operations, not a duration. Two writes of one
name in two formats (two keys) that cross are made to cross exactly, by the fault proxy.
"""
from __future__ import annotations

import hashlib
import io
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

from image_repo.imaging.spec import parse_query
from tests.fixtures.faultproxy import UP, FaultProxy
from tests.fixtures.images import colour_close, open_bytes
from tests.fixtures.server import running_server
from tests.fixtures.swift import SwiftServer
from tests.fixtures.tally import Tally

from .conftest import new_containers, no_tracebacks, sha, swift_bytes, swift_objects, swift_via

NAMES = [f"race/{i}" for i in range(3)]
COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 220), (230, 200, 30), (200, 40, 200), (30, 200, 210)]
SPEC_KEY = parse_query({"xsize": "100"}, default_kind="jpg").spec.key()
WRITERS, READERS, OPERATIONS = 4, 4, 12


def version(k: int, kind: str = "JPEG") -> bytes:
    """Version ``k``: one flat colour and its own height, so its 100-wide derivative says which it is."""
    buf = io.BytesIO()
    Image.new("RGB", (400, 200 + 40 * k), COLOURS[k]).save(buf, kind, quality=95)
    return buf.getvalue()


VERSIONS = [version(k) for k in range(len(COLOURS))]
BY_SHA = {sha(v): k for k, v in enumerate(VERSIONS)}
BY_ETAG = {hashlib.sha256(f"{s}\n{SPEC_KEY}".encode()).hexdigest()[:32]: k for s, k in BY_SHA.items()}


def shows(data: bytes, k: int) -> bool:
    """Whether a derivative shows version ``k`` (its size and colour)."""
    im = open_bytes(data).convert("RGB")
    return im.size == (100, (200 + 40 * k) // 4) and colour_close(im.getpixel((50, im.height // 2)), COLOURS[k], 24)


def test_two_servers_writing_the_same_names_end_consistent(swift_server: SwiftServer, tally: Tally, tmp_path: Path):
    originals, cache = new_containers(swift_server)
    swift = {"auth_url": swift_server.auth_url, "user": swift_server.user, "key": swift_server.key,
             "auth_version": "1", "retries": 0, "timeout": 30.0}

    def config(which: str) -> dict:
        return {"data_dir": str(tmp_path / which), "store": f"swift://{originals}", "cache_store": f"swift://{cache}",
                "swift": swift, "original_stat_ttl": 0.5, "log_level": "warning"}

    with running_server(config("a"), tmp_path / "sa") as a, running_server(config("b"), tmp_path / "sb") as b:
        servers = [a.url, b.url]
        for name in NAMES:
            assert tally.put(f"{a.url}/images/{name}", data=VERSIONS[0]).status_code == 201
        statuses: Counter[str] = Counter()
        wrong: list[str] = []
        lock = threading.Lock()

        def writer(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(OPERATIONS):
                r = tally.put(f"{rng.choice(servers)}/images/{rng.choice(NAMES)}", data=VERSIONS[rng.randrange(6)])
                with lock:
                    statuses[f"PUT {r.status_code}"] += 1

        def reader(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(OPERATIONS):
                r = tally.get(f"{rng.choice(servers)}/images/{rng.choice(NAMES)}?xsize=100")
                with lock:
                    statuses[f"GET {r.status_code}"] += 1
                    if r.status_code == 200:
                        k = BY_ETAG.get(r.headers["ETag"].strip('"'))
                        if k is None or not shows(r.content, k):
                            wrong.append(f"{r.url}: ETag names version {k}, the image does not show it")

        with ThreadPoolExecutor(WRITERS + READERS) as pool:
            futures = [pool.submit(writer, 100 + i) for i in range(WRITERS)]
            futures += [pool.submit(reader, 200 + i) for i in range(READERS)]
            for f in futures:
                f.result()
        assert not wrong, wrong[:5]
        # Writes all land (200/201); reads are images, or a 503 "changed while it was read" to retry.
        assert set(statuses) <= {"PUT 200", "GET 200", "GET 503"}, statuses
        assert statuses["GET 200"] > 0, statuses

        for name in NAMES:
            forms = [k for k in swift_objects(swift_server, originals, name + ".") if k.rsplit(".", 1)[0] == name]
            assert len(forms) == 1, f"{name} is stored as {forms}"
            stored = swift_bytes(swift_server, originals, forms[0])
            assert tally.check(stored is not None and sha(stored) in BY_SHA), f"{name}: not a version written"
            for url in servers:  # both serve that one version now (original=true asks the store)
                assert tally.get(f"{url}/images/{name}?original=true").content == stored
        # Every derivative in the cache store shows the version its key names.
        for key, row in swift_objects(swift_server, cache).items():
            if key.endswith(".jpg") and ".d/" in key:
                k = BY_SHA[key.split(".d/")[1].split(".")[0]]
                assert tally.check(shows(swift_bytes(swift_server, cache, key) or b"", k)), key
        print(f"\nconcurrent writers: {dict(statuses)}")
        no_tracebacks(a)
        no_tracebacks(b)


def test_two_writes_of_one_name_in_two_formats_that_cross_leave_one(swift_server, tally, tmp_path):
    """A writes a JPEG of n and B a PNG of it; both list n's forms first (only the old PNG), then
    A writes and finishes while B's write is held at the proxy; B's write lands last. Each
    deleted only what it had listed, so the JPEG stayed beside the newer PNG: two originals
    for one name. Each writer now looks again after its write and keeps the newest form."""
    originals, cache = new_containers(swift_server)
    proxy = FaultProxy(("127.0.0.1", urlsplit(swift_server.auth_url).port or 80))
    try:
        a_config = swift_via(proxy, swift_server, originals, cache, tmp_path / "a", swift={"timeout": 30.0})
        b_config = swift_via(proxy, swift_server, originals, cache, tmp_path / "b", swift={"timeout": 30.0})
        with running_server(a_config, tmp_path / "sa", workers=1) as a, \
                running_server(b_config, tmp_path / "sb", workers=1) as b:
            old, newer_jpeg, newest_png = version(0, "PNG"), version(1), version(2, "PNG")
            assert tally.put(f"{a.url}/images/n", data=old).status_code == 201
            rule = proxy.fault("hold", match=f"PUT /v1/{swift_server.account}/{originals}/n.png".encode(), direction=UP)
            with ThreadPoolExecutor(1) as pool:
                late = pool.submit(tally.put, f"{b.url}/images/n", data=newest_png)
                rule.wait_fired()  # B has listed n's forms and is writing its PNG: held
                assert tally.put(f"{a.url}/images/n", data=newer_jpeg).status_code == 200
                assert set(swift_objects(swift_server, originals, "n.")) == {"n.jpg"}
                rule.release()
                assert late.result().status_code == 200
            tally.faults += proxy.faults
            assert list(swift_objects(swift_server, originals, "n.")) == ["n.png"]
            assert tally.check(swift_bytes(swift_server, originals, "n.png") == newest_png)
            for url in (a.url, b.url):
                assert tally.get(f"{url}/images/n?original=true").content == newest_png
    finally:
        proxy.close()

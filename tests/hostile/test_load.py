"""Load on a real server (loopback, ~30 s in all): mixed valid and hostile requests and concurrent uploads.

A fixed number of requests per client, not a duration: how many a busy machine manages in a
given time says nothing about the server, and a threshold on it fails good changes.

Zero 5xx or hangs, no object lost or half-written, each worker's RSS under RSS_BOUND, every
cache level under its cap.
"""
from __future__ import annotations

import io
import os
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.fixtures.images import make_jpeg, make_png
from tests.fixtures.server import running_server
from tests.fixtures.waiting import HANG

from .test_files import REFUSED, many_frame_gif

REQUESTS_PER_CLIENT = 20
CLIENTS = 16
RSS_BOUND = 400 * 2**20
"""Per worker. The worst case is ``threads`` derivations of the largest original at once:
4 x (3000 x 2000 x 4 bytes) is under 100 MiB over a ~60 MiB interpreter with Pillow loaded."""
MEMORY_CAP = 4 * 2**20
DISK_CAP = 8 * 2**20

pytestmark = pytest.mark.slow


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def workers(arbiter: int) -> list[int]:
    pids: list[int] = []
    for task in Path(f"/proc/{arbiter}/task").iterdir():
        pids += [int(p) for p in (task / "children").read_text().split()]
    return pids


def test_mixed_load_has_no_5xx_bounded_memory_and_loses_nothing(tmp_path):
    config = {
        "data_dir": str(tmp_path / "data"),
        "url_key": "k",
        "max_upload_bytes": 4 * 2**20,
        "memory_cache": {"max_bytes": MEMORY_CAP},
        "disk_cache": {"max_bytes": DISK_CAP},
        "log_level": "warning",
    }
    big = make_jpeg(3000, 2000)
    originals = {f"base/{i}": make_jpeg(300 + 37 * i, 200 + 11 * i) for i in range(6)}
    originals["base/png"] = make_png(800, 600)
    originals["base/frames"] = many_frame_gif(2000, 1000, 1000)
    originals["base/big"] = big
    hostile = list(REFUSED.values())
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    uploaded: dict[str, bytes] = {}
    lock = threading.Lock()
    peak: dict[int, int] = {}

    with running_server(config, tmp_path / "server", workers=2) as server:
        base = server.url + "/images"
        for name, data in originals.items():
            assert requests.put(f"{base}/{name}", data=data, timeout=HANG).status_code == 201

        def one(session: requests.Session, rng: random.Random, n: int) -> None:
            pick = rng.random()
            name = rng.choice(list(originals))
            try:
                if pick < 0.45:
                    q = rng.choice(["xsize=100", "thumbnail=true", "xsize=640&kind=webp", "kind=png&ysize=300",
                                    "kind=gif&xsize=50", f"xsize={rng.randint(1, 2000)}", "meta=true", "url=true"])
                    r = session.get(f"{base}/{name}?{q}", timeout=HANG)
                elif pick < 0.6:
                    data, _ = rng.choice(hostile)
                    r = session.put(f"{base}/hostile/{n}", data=data, timeout=HANG)
                elif pick < 0.75:
                    key = f"up/{threading.get_ident()}-{n}"
                    data = make_jpeg(rng.randint(50, 400), rng.randint(50, 400))
                    files = {"file": (f"{n}.jpg", io.BytesIO(data))}
                    r = session.post(f"{base}/{key}", files=files, timeout=HANG)
                    if r.status_code == 200:
                        with lock:
                            uploaded[key] = data
                elif pick < 0.85:
                    q = rng.choice(["xsize=0", "xsize=99999", "kind=svg", "regex=(a*)*b", "xsize=%ff", "thumbnail=%00",
                                    "xsize=9999&ysize=9999", "regex=" + "a" * 2000])
                    path = rng.choice([name, "..", "a%00b", "%2e%2e/x", "x" * 700, "base/"])
                    r = session.get(f"{base}/{path}?{q}", timeout=HANG)
                elif pick < 0.95:
                    r = session.get(f"{base}/base/?regex=base/[0-9]&xsize=64", timeout=HANG)
                else:
                    r = session.get(f"{base}/base/big?xsize={rng.randint(100, 3000)}", timeout=HANG)
            except requests.RequestException as exc:
                with lock:
                    failures.append(f"{type(exc).__name__}: {exc}")
                return
            with lock:
                statuses[r.status_code] += 1
                if r.status_code >= 500:
                    failures.append(f"{r.status_code} {r.request.method} {r.url[:120]} {r.text[:200]}")

        def client(index: int) -> None:
            session, rng = requests.Session(), random.Random(4 + index)  # each client its own sequence
            for n in range(REQUESTS_PER_CLIENT):
                one(session, rng, index * 100_000 + n)

        done = threading.Event()

        def sample() -> None:
            while True:  # at least once, until the clients are done
                for pid in workers(server.process.pid):
                    try:
                        peak[pid] = max(peak.get(pid, 0), rss(pid))
                    except OSError:
                        pass
                if done.wait(0.2):
                    return

        with ThreadPoolExecutor(CLIENTS + 1) as pool:
            sampler = pool.submit(sample)
            try:
                for f in [pool.submit(client, i) for i in range(CLIENTS)]:
                    f.result()
            finally:
                done.set()
            sampler.result()

        total = sum(statuses.values())
        print(f"\nload: {total} requests, statuses {dict(sorted(statuses.items()))}, "
              f"uploads {len(uploaded)}, peak worker RSS {max(peak.values()) / 2**20:.0f} MiB")
        assert not failures, failures[:10]
        assert total == CLIENTS * REQUESTS_PER_CLIENT
        assert peak and max(peak.values()) < RSS_BOUND, peak

        # Nothing lost or half-written: every acknowledged upload is listed and byte for byte intact.
        listed = set(requests.get(f"{base}?regex=up/.*", timeout=HANG).json())
        assert set(uploaded) <= listed
        for key, data in list(uploaded.items())[:50]:
            got = requests.get(f"{base}/{key}?original=true", timeout=HANG)
            assert got.status_code == 200 and got.content == data, key
        assert not any(name.startswith("hostile/") for name in requests.get(base, timeout=HANG).json())

        # Every cache level under its cap, in every worker that answers.
        for _ in range(6):
            levels = requests.get(server.url + "/metrics", headers={"Accept": "application/json"}, timeout=HANG).json()["cache"]["levels"]
            for level in levels:
                if level["type"] in ("MemoryCache", "DiskCache"):
                    assert level["bytes"] <= level["max_bytes"], level
        disk = Path(config["data_dir"]) / "disk_cache"
        on_disk = sum(p.stat().st_size for p in disk.rglob("*") if p.is_file() and not p.name.startswith("."))
        assert on_disk <= DISK_CAP + 2**20, on_disk  # the cap, plus entries being written at this moment
        log = server.log.read_text(errors="replace")
        assert "Traceback" not in log, server.log_tail()
    assert os.path.exists(tmp_path / "data")

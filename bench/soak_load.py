"""The soak's load: weighted actions run by client threads until the time is up. Pluggable.

An action is a function ``(load, client) -> (route, status)`` with a weight in the mix.
``--plugin module:function`` calls ``function(load)`` before the run, which may add actions
with ``load.add(name, weight, fn)`` (a module on sys.path, e.g. next to this file). The IIIF
``tiles`` action is added by itself when the server answers ``/iiif/3/<id>/info.json``.
"""
from __future__ import annotations

import hashlib
import importlib
import math
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import images
import requests

TIMEOUT = 120.0
DEFAULT_MIX = {"cold": 15, "warm": 40, "upload": 6, "zip": 3, "import": 2, "delete": 3, "meta": 6, "tiles": 25}
BASE_COUNT, ZIP_COUNT, HOT_COUNT = 40, 8, 12
KEEP_UPLOADS = 400
"""Uploaded originals kept for deletes and for the check at the end (older ones are forgotten)."""


def parse_mix(text: str) -> dict[str, int]:
    """'cold=20,warm=40' -> weights (the default mix when empty)."""
    if not text:
        return dict(DEFAULT_MIX)
    mix = {}
    for item in text.split(","):
        name, _, weight = item.partition("=")
        mix[name.strip()] = int(weight)
    return mix


@dataclass
class Record:
    route: str
    status: int  # 0: no answer (a connection error or timeout)
    ms: float


@dataclass
class Run:
    records: list[Record] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    client_cpu_s: float = 0.0


@dataclass
class Client:
    """One load thread: its session and random sequence."""

    session: requests.Session
    rng: random.Random


Action = Callable[["Load", Client], tuple[str, int]]


class Load:
    """The actions against one server, the originals they made, and the run."""

    def __init__(self, base: str, root: Path, *, mix: dict[str, int], plugins: list[str]) -> None:
        self.base = base
        self.root = root
        self.mix = mix
        self.actions: dict[str, tuple[int, Action]] = {}
        self.photo = images.encode(images.photo(1920, 1080), "JPEG")  # a 2 MP photo, ~1 s to make
        self.uploaded: deque[tuple[str, str]] = deque(maxlen=KEEP_UPLOADS)  # (name, sha256) acknowledged
        self.deleted: set[str] = set()
        self.lock = threading.Lock()
        self.iiif_info: dict[str, Any] = {}
        for name, fn in BUILTIN.items():
            self.add(name, mix.get(name, 0), fn)
        for spec in plugins:
            module, _, function = spec.partition(":")
            getattr(importlib.import_module(module), function)(self)

    def add(self, name: str, weight: int, fn: Action) -> None:
        """Add (or replace) an action; weight 0 leaves it out."""
        self.actions[name] = (self.mix.get(name, weight), fn)

    def describe(self) -> str:
        return ", ".join(f"{n}={w}" for n, (w, _) in self.actions.items() if w)

    def url(self, path: str) -> str:
        return f"{self.base}/images/{quote(path)}"

    def distinct(self, tag: str) -> bytes:
        return images.variant(self.photo, tag)

    # -- before the run ------------------------------------------------------------------
    def seed(self) -> None:
        """The originals the actions read, and whether the server offers IIIF tiles."""
        s = requests.Session()
        for i in range(BASE_COUNT):
            self._put(s, f"soak/base/{i}", self.distinct(f"base {i}"))
        for i in range(ZIP_COUNT):
            self._put(s, f"soak/zip/{i}", images.variant(images.tiny_jpeg(), f"zip {i}"))
        r = s.get(f"{self.base}/iiif/3/{quote('soak/base/0', safe='')}/info.json", timeout=TIMEOUT)
        if r.status_code == 200 and "tiles" in r.json():
            self.iiif_info = r.json()
        else:
            self.actions.pop("tiles", None)  # main has no IIIF routes (yet)

    def _put(self, s: requests.Session, name: str, data: bytes) -> None:
        r = s.put(self.url(name), data=data, timeout=TIMEOUT)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"seeding {name}: {r.status_code} {r.text[:200]}")

    # -- the run -------------------------------------------------------------------------
    def run(self, clients: int, seconds: float, progress: Callable[[str], None]) -> Run:
        run = Run()
        names = [n for n, (w, _) in self.actions.items() if w > 0]
        weights = [self.actions[n][0] for n in names]
        end = time.monotonic() + seconds
        cpu_before = time.process_time()

        def client(index: int) -> None:
            c = Client(requests.Session(), random.Random(1000 + index))
            while time.monotonic() < end:
                name = c.rng.choices(names, weights)[0]
                started = time.perf_counter()
                try:
                    route, status = self.actions[name][1](self, c)
                except requests.RequestException as e:
                    route, status = name, 0
                    with self.lock:
                        run.failures.append(f"{name}: {type(e).__name__}: {e}"[:300])
                ms = (time.perf_counter() - started) * 1000
                with self.lock:
                    run.records.append(Record(route, status, ms))
                    if status >= 500:
                        run.failures.append(f"{name}: {status}")

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
        for t in threads:
            t.start()
        next_line = time.monotonic() + 60
        while any(t.is_alive() for t in threads):
            time.sleep(1)
            if time.monotonic() >= next_line:
                next_line += 60
                with self.lock:
                    done, bad = len(run.records), sum(r.status >= 500 or r.status == 0 for r in run.records)
                progress(f"  {done} requests, {bad} 5xx or failed, {max(0, end - time.monotonic()) / 60:.1f} min left")
        run.client_cpu_s = time.process_time() - cpu_before
        return run

    def check_originals(self) -> tuple[int, list[str]]:
        """Every acknowledged upload or import not deleted since: still there, with its SHA-256."""
        s = requests.Session()
        with self.lock:
            kept = [(n, sha) for n, sha in self.uploaded if n not in self.deleted]
        lost = []
        for name, sha in kept:
            r = s.get(self.url(name) + "?meta=true", timeout=TIMEOUT)
            if r.status_code != 200 or r.json().get("sha256") != sha:
                lost.append(f"{name} ({r.status_code})")
        return len(kept), lost


# -- the actions ---------------------------------------------------------------------------
def upload(load: Load, c: Client) -> tuple[str, int]:
    name = f"soak/up/{uuid.uuid4().hex[:12]}"
    data = load.distinct(name)
    r = c.session.post(load.url(name + ".jpg"), files={"file": ("p.jpg", data)}, timeout=TIMEOUT)
    if r.status_code == 200:
        with load.lock:
            load.uploaded.append((name, hashlib.sha256(data).hexdigest()))
    return "upload", r.status_code


def cold(load: Load, c: Client) -> tuple[str, int]:
    """A derivative nobody asked for yet, mostly (a random size of a random original)."""
    name = f"soak/base/{c.rng.randrange(BASE_COUNT)}"
    return "cold", c.session.get(f"{load.url(name)}?xsize={c.rng.randint(64, 1600)}", timeout=TIMEOUT).status_code


def warm(load: Load, c: Client) -> tuple[str, int]:
    """One of a few hot derivatives: memory-cache hits once made."""
    i = c.rng.randrange(HOT_COUNT)
    query = "thumbnail=true" if i % 2 else "xsize=320&kind=webp"
    return "warm", c.session.get(f"{load.url(f'soak/base/{i // 2}')}?{query}", timeout=TIMEOUT).status_code


def zip_all(load: Load, c: Client) -> tuple[str, int]:
    r = c.session.get(f"{load.base}/images/soak/zip/?xsize=64", timeout=TIMEOUT)
    return "zip", r.status_code


def imports(load: Load, c: Client) -> tuple[str, int]:
    """A direct import: announce, PUT the bytes to the signed URL, complete (and follow it to its end)."""
    name = f"soak/imp/{uuid.uuid4().hex[:12]}"
    data = load.distinct(name)
    sha = hashlib.sha256(data).hexdigest()
    rec = c.session.post(f"{load.base}/imports", json={"name": name, "sha256": sha, "size": len(data)}, timeout=TIMEOUT)
    if rec.status_code != 201:
        return "import", rec.status_code
    body = rec.json()
    put = c.session.put(body["upload_url"], data=data, headers=body.get("upload_headers") or {}, timeout=TIMEOUT)
    if put.status_code >= 300:
        return "import", put.status_code
    done = c.session.put(f"{load.base}/imports/{body['id']}", json={"complete": True}, timeout=TIMEOUT)
    state = done.json().get("state") if done.status_code < 500 else None
    while state == "processing":
        time.sleep(0.2)
        status = c.session.get(f"{load.base}/imports/{body['id']}", timeout=TIMEOUT)
        state = status.json().get("state") if status.status_code == 200 else None
    if state == "done":
        with load.lock:
            load.uploaded.append((name, sha))
    return "import", done.status_code if state != "failed" else 422


def delete(load: Load, c: Client) -> tuple[str, int]:
    with load.lock:
        if not load.uploaded:
            return "delete", 204
        name, _ = load.uploaded.popleft()
        load.deleted.add(name)
    return "delete", c.session.delete(load.url(name), timeout=TIMEOUT).status_code


def meta(load: Load, c: Client) -> tuple[str, int]:
    name = f"soak/base/{c.rng.randrange(BASE_COUNT)}"
    return "meta", c.session.get(f"{load.url(name)}?meta=true", timeout=TIMEOUT).status_code


def tiles(load: Load, c: Client) -> tuple[str, int]:
    """An IIIF 3 tile of a random original at a random scale, as a viewer asks for them."""
    info = load.iiif_info
    tile = info["tiles"][0]
    w, h = info["width"], info["height"]
    tw, th = tile["width"], tile.get("height", tile["width"])
    scale = c.rng.choice(tile["scaleFactors"])
    col = c.rng.randrange(math.ceil(w / (tw * scale)))
    row = c.rng.randrange(math.ceil(h / (th * scale)))
    x, y = col * tw * scale, row * th * scale
    rw, rh = min(tw * scale, w - x), min(th * scale, h - y)
    identifier = quote(f"soak/base/{c.rng.randrange(BASE_COUNT)}", safe="")
    url = f"{load.base}/iiif/3/{identifier}/{x},{y},{rw},{rh}/{math.ceil(rw / scale)},/0/default.jpg"
    return "tiles", c.session.get(url, timeout=TIMEOUT).status_code


BUILTIN: dict[str, Action] = {"cold": cold, "warm": warm, "upload": upload, "zip": zip_all, "import": imports,
                              "delete": delete, "meta": meta, "tiles": tiles}

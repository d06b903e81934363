"""Pyramids: which originals get one, their state, the TiledSource of a ready one, and builds.

A pyramid is a derivative: ``<name>/.d/<version>.pyramid.v1.tif`` and its index
``....pyramid.v1.index`` in the cache store, written straight to its authoritative level
(the index last: its presence means ready). Replacing or deleting the original drops them with
every other derivative, and a new version has new keys, so old tiles are never served.

Builds run in background threads of each server process, at most ``pyramid_builders`` at once
per host (file locks in the host directory), each in a child process at low priority
(process.py); ``image_repo pyramids build`` runs them from the command line. State lives in
the cache store (state.py), so any server reports a build and resumes an interrupted one.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from typing import Any

from cachetools import LRUCache, TTLCache
from filelock import FileLock, Timeout

from .. import names
from ..config.settings import Settings
from ..errors import NotFound, StorageUnavailable
from ..host.owners import owner, owner_gone
from ..metrics.figures import pyramid_state
from ..storage.base import ObjectInfo, ObjectStore, content_version
from ..storage.filestreams import OpenedFile
from ..cache.disk import DiskCache
from ..host.flight import HostFlight
from .chunks import Chunks
from .index import FORMAT_VERSION, PyramidIndex
from .reader import PyramidReader
from .state import LEASE_SECONDS, Lease, Records, build_id, live_lease

log = logging.getLogger("image_repo.pyramids")

POLL_SECONDS = 30.0
"""How often an idle builder looks for queued or interrupted builds."""
INDEX_CACHE_BYTES = 64 * 2**20
"""Tile indexes a worker keeps in memory."""
OPENED_FILES = 64
"""Pyramid files a worker holds open (one descriptor each): the images being viewed now."""
SWEEP_SECONDS = 5.0
"""How often, at most, a worker serving tiles checks whether the files it holds open were deleted."""
FIRST_LOOK_SECONDS = 5.0
MAX_ATTEMPTS = 3
"""Builds interrupted (killed, store down) this many times end as failed."""


def _index_bytes(index: PyramidIndex) -> int:
    return 1024 + sum(lv.offsets.nbytes + lv.counts.nbytes for lv in index.levels)


def pyramid_key(name: str, version: str) -> str:
    return f"{names.derived_prefix(name)}{version}.pyramid.v{FORMAT_VERSION}.tif"


def index_key(name: str, version: str) -> str:
    return f"{names.derived_prefix(name)}{version}.pyramid.v{FORMAT_VERSION}.index"


class Pyramids:
    """The pyramids of one repository: its originals store and its (stacked) cache."""

    def __init__(self, settings: Settings, store: ObjectStore, cache: ObjectStore, host_dir: str) -> None:
        self.settings = settings
        self.store = store
        self.cache = cache
        levels = getattr(cache, "levels", None)
        self.bottom: ObjectStore = levels[-1] if levels else cache
        self.records = Records(self.bottom)
        self.host_dir = host_dir
        self.build_dir = settings.pyramid_build_path()
        # Bounded by bytes: a 20-gigapixel image's index is ~1.2 MB, a 5000 px one's a few hundred bytes.
        disk = any(isinstance(level, DiskCache) for level in getattr(cache, "levels", []))
        self.chunks = Chunks(cache, settings.pyramid_read_chunk_bytes,
                             HostFlight(os.path.join(host_dir, ".flight")) if disk else None)
        """Remote pyramids are read in chunks kept on this host (chunks.py)."""
        self._indexes: LRUCache[str, PyramidIndex] = LRUCache(maxsize=INDEX_CACHE_BYTES, getsizeof=_index_bytes)
        self._absent: TTLCache[str, bool] = TTLCache(maxsize=4096, ttl=5.0)
        self._opened: LRUCache[str, OpenedFile] = LRUCache(maxsize=OPENED_FILES)
        self._next_sweep = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.last_peak_rss = 0
        """Peak resident memory of the last build child of this process, in bytes (for tests and the bench)."""
        self.builds_run = 0
        """Build processes this process has started (two servers asked for one image start one between them)."""

    # -- which ---------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.settings.pyramid_min_side > 0

    def wanted(self, width: int, height: int, multichannel: bool = False) -> bool:
        """Whether an original this big gets a pyramid (a multichannel one always does: its
        channels are served from their planes only)."""
        return self.enabled and (multichannel or max(width, height) > self.settings.pyramid_min_side)

    # -- reading -------------------------------------------------------------------------
    def index(self, name: str, version: str, *, fresh: bool = False) -> PyramidIndex | None:
        """The index of a ready pyramid (read once per worker), or None. A miss is remembered for a
        few seconds (derivations of small images ask too) unless ``fresh``."""
        key = index_key(name, version)
        with self._lock:
            hit = self._indexes.get(key)
            if hit is not None or (key in self._absent and not fresh):
                return hit
        try:
            blob = self.cache.get(key)
            index = PyramidIndex.decode(blob)
        except NotFound:
            with self._lock:
                self._absent[key] = True
            return None
        except ValueError as e:
            log.warning("pyramid index %s is not readable (%s): treated as absent", key, e)
            return None
        with self._lock:
            self._indexes[key] = index
        return index

    def _open(self, store: Any, key: str) -> OpenedFile | ObjectStore:
        """The pyramid's file, held open by this worker (a tile is then one pread), or the store when it cannot be opened."""
        now = time.monotonic()
        if now >= self._next_sweep:
            self._sweep(now)
        with self._lock:
            opened = self._opened.get(key)
        if opened is None:
            try:
                opened = store.open_object(key)
            except (NotFound, StorageUnavailable):
                return store  # reads say what is wrong, as they would have
            with self._lock:
                self._opened[key] = opened
        return opened

    def _sweep(self, now: float) -> None:
        """Let go of the files deleted since they were opened (a replaced original's pyramid, one
        deleted with the derivatives): their disk space comes back once no reader holds them."""
        self._next_sweep = now + SWEEP_SECONDS
        with self._lock:
            held = list(self._opened.items())
        gone = [key for key, opened in held if opened.removed()]
        if gone:
            with self._lock:
                for key in gone:
                    self._opened.pop(key, None)

    def let_go(self, name: str) -> None:
        """``name``'s original was replaced or deleted: close the files of its pyramids this worker holds."""
        prefix = names.derived_prefix(name)
        with self._lock:
            for key in [k for k in self._opened if k.startswith(prefix)]:
                self._opened.pop(key, None)

    def published(self, key: str) -> None:
        """An index was just written: this process stops remembering it as absent."""
        with self._lock:
            self._absent.pop(key, None)

    def source(self, original: Any, *, fresh: bool = False) -> PyramidReader | None:
        """The TiledSource of ``original``'s ready pyramid, or None while there is none (``fresh``:
        asking the store even if it had none a moment ago)."""
        if not self.enabled:
            return None
        index = self.index(original.name, original.version, fresh=fresh)
        if index is None:
            return None
        store = self.store if index.in_original else self.bottom
        if hasattr(store, "open_object"):  # a local store
            return PyramidReader(index, self._open(store, index.key))
        if not self.chunks.enabled_for(store):
            return PyramidReader(index, store)
        return PyramidReader(index, self.chunks.reader(store, original.name, original.version, index.key, index.size))

    def status(self, original: Any) -> dict[str, Any]:
        """``state``: absent, queued, building, ready or failed (with ``reason``); levels and tile size when ready."""
        index = self.index(original.name, original.version, fresh=True)
        if index is not None:
            info = index.info
            return {"state": "ready", "levels": len(info.levels), "tile_size": [info.tile_width, info.tile_height],
                    "width": info.width, "height": info.height, "stored": info.stored,
                    "photometric": info.photometric, "in_original": index.in_original}
        rec = self.records.load(build_id(original.name, original.version))
        if rec is None:
            return {"state": "absent"}
        state = rec.get("state", "queued")
        if state == "building" and live_lease(self.bottom, rec["id"]) is None:
            state = "queued"  # its builder is gone: the next one resumes it
        out: dict[str, Any] = {"state": state}
        if rec.get("reason"):
            out["reason"] = rec["reason"]
        return out

    @staticmethod
    def status_of(rec: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"state": rec.get("state", "queued")}
        if rec.get("reason"):
            out["reason"] = rec["reason"]
        return out

    # -- asking for one ------------------------------------------------------------------
    def request(self, name: str, key: str, info: ObjectInfo) -> None:
        """Queue a build of this original (if not ready or queued already) and wake a builder."""
        if not self.enabled:
            return
        version = content_version(info)
        build = build_id(name, version)
        try:
            if self.index(name, version) is None and self.records.load(build) is None:
                self.records.save({"id": build, "name": name, "key": key, "version": version, "state": "queued",
                                   "reason": None, "attempts": 0})
                pyramid_state("queued")
        except StorageUnavailable as e:
            log.warning("pyramid of %s not queued: %s", name, e.message)
            return
        self._wake.set()

    # -- building ------------------------------------------------------------------------
    def build(self, rec: dict[str, Any]) -> dict[str, Any]:
        """Build the pyramid ``rec`` asks for, if this process can take its lease; the status after."""
        from .builder import run  # the build machinery is only loaded where builds run

        return run(self, rec)

    def pending(self) -> list[dict[str, Any]]:
        """Records of builds waiting: queued, or building with no live builder."""
        out = []
        for rec in self.records.all():
            state = rec.get("state")
            if state == "queued" or (state == "building" and live_lease(self.bottom, rec["id"]) is None):
                out.append(rec)
        return out

    def start(self) -> None:
        """Background builders for this process (none when pyramid_builders is 0)."""
        if not self.enabled or self.settings.pyramid_builders <= 0 or self._threads:
            return
        t = threading.Thread(target=self._loop, name="pyramid-builder", daemon=True)
        self._threads.append(t)
        t.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()

    def _loop(self) -> None:
        wait = FIRST_LOOK_SECONDS  # the first look (for builds a stopped server left) stays out of startup
        failing = False
        while not self._stop.is_set():
            self._wake.wait(wait)
            wait = POLL_SECONDS
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                for rec in self.pending():
                    if self._stop.is_set():
                        return
                    slot = self._slot()
                    if slot is None:
                        break  # the host's builders are busy: look again later
                    try:
                        self.build(rec)
                    finally:
                        slot.release()
            except StorageUnavailable as e:
                # Once per outage, not every POLL_SECONDS while the store is away.
                (log.debug if failing else log.warning)("pyramid builder: %s", e.message)
                failing = True
                continue
            except Exception:
                log.exception("pyramid builder failed")
            failing = False

    def _slot(self) -> FileLock | None:
        """One of the host's ``pyramid_builders`` build slots, or None when all are taken."""
        os.makedirs(os.path.join(self.host_dir, ".pyramid-slots"), exist_ok=True)
        for n in range(self.settings.pyramid_builders):
            lock = FileLock(os.path.join(self.host_dir, ".pyramid-slots", f"{n}.lock"), timeout=0, thread_local=False)
            try:
                lock.acquire()
            except Timeout:
                continue
            return lock
        return None

    def clean_build_dirs(self) -> None:
        """Remove build directories left by processes of this host that are gone (a kill -9)."""
        try:
            entries = os.listdir(self.build_dir)
        except FileNotFoundError:
            return
        host = owner().rpartition(":")[0]
        for entry in entries:
            who = entry.rsplit("-", 1)[0]  # <host>:<pid>-<token>
            if who.startswith(host + ":") and owner_gone(who):
                shutil.rmtree(os.path.join(self.build_dir, entry), ignore_errors=True)


__all__ = ["LEASE_SECONDS", "MAX_ATTEMPTS", "Lease", "Pyramids", "index_key", "pyramid_key"]

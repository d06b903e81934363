"""One build, start to finish: lease, stage locally, build in a child, publish atomically, record.

Killed at any moment, it leaves: a local build directory (removed by the next build on this
host, as its owner is gone), perhaps Swift segments of an unfinished large object (removed
before the next attempt uploads), a record in ``building`` whose lease expires (the next
builder resumes it). The index is written last, after the pyramid is whole in the store:
nothing partial is ever read.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ImageRepoError, NotFound, StorageUnavailable
from ..host.owners import owner
from ..metrics.figures import pyramid_building, pyramid_state
from ..storage.base import content_version
from ..storage.large import RangeFile, put_file
from ..storage.swift_large import segment_prefix
from .build import EXIT_BAD_IMAGE, PERCENTILES, STATS_PIXELS
from .index import NotUsable, PyramidIndex, index_tiff, with_stats
from .process import run_build
from .reader import PyramidReader
from .state import LEASE_SECONDS, Lease

if TYPE_CHECKING:
    from .service import Pyramids

log = logging.getLogger("image_repo.pyramids")
STAGE_CHUNK = 8 * 2**20


def run(p: Pyramids, rec: dict[str, Any]) -> dict[str, Any]:
    """Build ``rec``'s pyramid if its original is still that version and nobody else is building it."""
    from .service import MAX_ATTEMPTS, index_key, pyramid_key

    name, version, key = rec["name"], rec["version"], rec["key"]
    info = p.store.stat(key)
    if info is None or content_version(info) != version:
        p.records.drop(rec["id"])  # replaced or deleted meanwhile: nothing to build
        return {"state": "absent"}
    if p.index(name, version, fresh=True) is not None:
        p.records.drop(rec["id"])
        return {"state": "ready"}
    lease = Lease.take(p.bottom, rec["id"])
    if lease is None:
        return {"state": "building"}
    started = time.monotonic()
    try:
        rec = p.records.load(rec["id"]) or rec
        rec.update(state="building", owner=owner(), attempts=int(rec.get("attempts", 0)) + 1, reason=None)
        p.records.save(rec)
        pyramid_state("building")
        tiff_key, ix_key = pyramid_key(name, version), index_key(name, version)
        _drop_leftovers(p, tiff_key)
        index = _as_it_is(p, key, info.size, version) if key.lower().endswith((".tif", ".tiff")) else None
        if index is None:
            index = _build(p, rec, key, tiff_key, lease)
        if index is None:
            return p.status_of(rec)
        if not lease.held():
            log.warning("pyramid of %s: lease lost before publishing; another builder has it", name)
            return {"state": "building"}
        p.bottom.put(ix_key, index.encode(), "application/octet-stream", {"source-version": version[:128]})
        p.published(ix_key)
        p.records.drop(rec["id"])
        pyramid_state("ready")
        log.info("pyramid of %s ready: %d levels in %.1f s", name, len(index.levels), time.monotonic() - started)
        return {"state": "ready", "levels": len(index.levels)}
    except StorageUnavailable as e:
        _interrupted(p, rec, f"store unavailable: {e.message}", MAX_ATTEMPTS)
        raise
    except Exception as e:  # a full build disk, a bug: retried like an interruption, then failed
        log.exception("pyramid of %s: build failed", name)
        _interrupted(p, rec, f"internal error: {type(e).__name__}: {e}", MAX_ATTEMPTS)
        return p.status_of(rec)
    finally:
        try:
            lease.release()
        except StorageUnavailable:
            pass  # it expires


def _build(p: Pyramids, rec: dict[str, Any], key: str, tiff_key: str, lease: Lease) -> PyramidIndex | None:
    """Stage the original locally, build in a child process, upload the pyramid; the index, or None on failure."""
    from .service import MAX_ATTEMPTS

    os.makedirs(p.build_dir, exist_ok=True)
    p.clean_build_dirs()
    work = os.path.join(p.build_dir, f"{owner()}-{secrets.token_hex(6)}")
    os.makedirs(os.path.join(work, "tmp"))
    fd = None
    try:
        open_fd = getattr(p.store, "open_fd", None)
        if callable(open_fd):  # a file store: libvips reads the original where it is, opened the safe way
            fd = open_fd(key)
            src = f"/proc/self/fd/{fd}"
        else:  # copied to local disk by ranged reads (libvips needs to seek in TIFFs), never held in memory
            src = os.path.join(work, "original")
            size = int(rec.get("size") or 0) or (p.store.stat(key) or _missing(key)).size
            with open(src, "wb") as f:
                f.writelines(p.store.get_range(key, start, STAGE_CHUNK) for start in range(0, size, STAGE_CHUNK))
        args = [src, work, "--key", tiff_key, "--quality", str(p.settings.pyramid_jpeg_quality),
                "--max-pixels", str(p.settings.max_pyramid_pixels), "--source-version", rec["version"]]
        p.builds_run += 1
        with pyramid_building():
            outcome = run_build(args, tmpdir=os.path.join(work, "tmp"), pass_fds=(fd,) if fd is not None else (),
                                keep_going=lease.renew, check_every=LEASE_SECONDS / 6)
        p.last_peak_rss = outcome.peak_rss
        if outcome.status == EXIT_BAD_IMAGE:
            rec.update(state="failed", reason=str(outcome.result.get("reason", "cannot be built")))
            p.records.save(rec)
            pyramid_state("failed")
            log.info("pyramid of %s failed: %s", rec["name"], rec["reason"])
            return None
        if outcome.status != 0:
            why = f"killed by signal {-outcome.status}" if outcome.status < 0 else outcome.result.get("reason")
            _interrupted(p, rec, f"build interrupted: {why}", MAX_ATTEMPTS)
            return None
        with open(outcome.result["index"], "rb") as f:
            index = PyramidIndex.decode(f.read())
        if not lease.held():
            return index  # the caller sees the lease is lost and publishes nothing
        put_file(p.bottom, tiff_key, outcome.result["tiff"], "image/tiff", {"source-version": rec["version"][:128]})
        return index
    finally:
        if fd is not None:
            os.close(fd)
        shutil.rmtree(work, ignore_errors=True)


def _missing(key: str) -> Any:
    raise NotFound(f"no object {key!r}")


def _as_it_is(p: Pyramids, key: str, size: int, version: str) -> PyramidIndex | None:
    """The index of an original that is already a tiled pyramid (its tiles are served from it), or None."""
    try:
        with RangeFile(p.store, key, size) as f:
            index = index_tiff(f, key, size, in_original=True, source_version=version)
    except NotUsable as e:
        log.debug("%s is not a pyramid as it stands (%s): building one", key, e)
        return None
    except ImageRepoError as e:
        log.info("%s: cannot be used as a pyramid as it stands (%s): building one", key, e.message)
        return None
    reader = PyramidReader(index, p.store)
    pick = next((i for i, lv in enumerate(index.info.levels) if lv.width * lv.height <= STATS_PIXELS),
                len(index.info.levels) - 1)
    lv = index.info.levels[pick]
    try:
        arr = reader.region(pick, 0, 0, lv.width, lv.height)
    except ImageRepoError as e:
        log.info("%s: its smallest levels cannot be read (%s): building a pyramid", key, e.message)
        return None
    stats = []
    for b in range(arr.shape[2]):
        pct = np.percentile(arr[..., b], PERCENTILES)
        stats.append({"min": float(arr[..., b].min()), "max": float(arr[..., b].max()),
                      **{f"p{q:g}": float(v) for q, v in zip(PERCENTILES, pct)}})
    window = None
    if np.dtype(index.dtype).itemsize == 2 and index.info.photometric != "channels":
        lo, hi = min(s["p0.1"] for s in stats), max(s["p99.9"] for s in stats)
        window = (lo, hi if hi > lo else lo + 1)
    return with_stats(index, stats, window)


def _drop_leftovers(p: Pyramids, tiff_key: str) -> None:
    """Segments an interrupted upload of this pyramid left in the store (Swift's large objects)."""
    for info in list(p.bottom.list(segment_prefix(tiff_key))):
        try:
            p.bottom.delete(info.key)
        except NotFound:
            pass


def _interrupted(p: Pyramids, rec: dict[str, Any], why: str, max_attempts: int) -> None:
    """Back to queued for the next builder, or failed after ``max_attempts``."""
    failed = int(rec.get("attempts", 0)) >= max_attempts
    rec.update(state="failed" if failed else "queued", reason=why + (f" ({max_attempts} times)" if failed else ""))
    try:
        p.records.save(rec)
        pyramid_state(rec["state"])
    except StorageUnavailable:
        pass  # the record still says building: its lease expires and the next builder resumes it
    log.warning("pyramid of %s: %s", rec["name"], why)

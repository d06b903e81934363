"""The originals store the benchmark serves: sets of distinct originals, written once and kept.

Originals are written straight into the file store with ``FileStore.put`` (data file plus
its sidecar, as an upload leaves them), not through the HTTP API: whatever a server might
do at upload time is then neither counted nor skipped, and the store looks like one any
other tool filled. The 100,000-name listing set is plain files with no sidecars at all.
Caches are wiped before each run, never the originals, so later runs start in seconds.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from images import tiny_jpeg, variant


@dataclass(frozen=True)
class ImageSet:
    """``count`` distinct originals ``<prefix>/<stem>NNNN.<ext>`` made from one base image."""

    prefix: str
    base: str  # key of images.BASES
    count: int

    @property
    def ext(self) -> str:
        return self.base.rsplit(".", 1)[1]

    def name(self, i: int) -> str:
        """The image name (what goes in the URL): no extension."""
        return f"{self.prefix}/i{i:05d}"

    def key(self, i: int) -> str:
        return f"{self.name(i)}.{self.ext}"


def fill(root: Path, sets: list[ImageSet], bases: dict[str, Path], log: Callable[[str], None] = print) -> None:
    """Write every original of ``sets`` that is not in the store under ``root`` yet."""
    from image_repo.storage.filesystem import FileStore

    # fsync off: these files are the benchmark's fixture, remade if a crash loses them.
    store = FileStore(str(root), fsync=False)
    content_type = {"jpg": "image/jpeg", "png": "image/png"}
    for s in sets:
        missing = [i for i in range(s.count) if not (root / s.key(i)).exists()]
        if not missing:
            continue
        log(f"  writing {len(missing)} originals {s.prefix}/ from {s.base}")
        base = bases[s.base].read_bytes()
        t = time.monotonic()
        for i in missing:
            data = variant(base, f"{s.prefix}/{i}")
            store.put(s.key(i), data, content_type[s.ext], {"sha256": hashlib.sha256(data).hexdigest()})
        log(f"    {len(missing)} in {time.monotonic() - t:.1f} s")


def warm(root: Path, sets: list[ImageSet], log: Callable[[str], None] = print) -> None:
    """Read every original of ``sets`` once, so each server finds them in the page cache.

    The cold rounds ask image_repo first and thumbor for the same files just after: without
    this, whichever reads a file first pays for the disk (~1-2 ms of CPU for 3 MB here) and
    the other reads it from memory. "Cold" means a derivative nobody asked for, not a file
    the kernel has not cached; the decode floor reads from memory too.
    """
    t, total = time.monotonic(), 0
    for s in sets:
        for i in range(s.count):
            with open(root / s.key(i), "rb", buffering=0) as fh:
                while chunk := fh.read(1 << 22):
                    total += len(chunk)
    log(f"  read {total / 2**30:.1f} GiB of originals into the page cache in {time.monotonic() - t:.1f} s")


def fill_listing(root: Path, prefix: str, count: int, log: Callable[[str], None] = print) -> None:
    """``count`` tiny originals ``<prefix>/nNNNNNN.jpg`` as plain files, the way another tool would write them."""
    done = root.parent / f"{prefix.replace('/', '_')}-{count}.done"
    if done.exists():
        return
    log(f"  writing {count} tiny files under {prefix}/")
    t = time.monotonic()
    directory = root / prefix
    directory.mkdir(parents=True, exist_ok=True)
    data = tiny_jpeg()
    for i in range(count):
        path = directory / f"n{i:06d}.jpg"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    done.write_text(str(count))
    log(f"    {count} in {time.monotonic() - t:.1f} s")

"""``image_repo cache prune``: remove derived objects whose original is gone or was replaced.

Everything under ``<name>/.d/`` in the cache store is derived from ``name``'s original:
derivatives, intermediates, pyramids. Each key starts with the version (SHA-256) of the
original it was made from, so an object of any other version is never served again; it is
only garbage. A replace or delete through this server removes the old ones at once, but one
through another server (or another tool, or a failure half-way) leaves them behind.

Order, so that a derivative of the current version is never removed while uploads race:
a batch of keys is **listed first**; only then is each name's original looked up, **fresh**
from the store (no cached stat), right before that batch's deletions. An object of the
version found then is kept. An upload that lands after the lookup makes derivatives of a
newer version, which were not in the listing (it came earlier), so they are not touched;
one that landed before the lookup is the version found, so its derivatives are kept. What
remains is an original replaced and then put back with the old bytes between our lookup and
our delete (the old version is current again): a removed derivative of it is made again on
demand, as any evicted one is.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .. import names
from ..errors import ImageRepoError, NotFound
from ..service.images import ImageService, bottom_level
from ..storage.base import ObjectInfo

log = logging.getLogger("image_repo.prune")

MARK = f"/{names.DERIVED_SEGMENT}/"


@dataclass
class Summary:
    """What a prune saw and did (or, with ``dry_run``, would do)."""

    dry_run: bool = False
    scanned: int = 0
    """Derived objects listed."""
    images: int = 0
    """Distinct names they belong to."""
    kept: int = 0
    gone: int = 0
    """Removed: their original no longer exists."""
    replaced: int = 0
    """Removed: made from a version the original no longer has."""
    removed_bytes: int = 0
    errors: int = 0
    batches: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return self.gone + self.replaced

    def line(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (f"{self.scanned} derived objects of {self.images} images in {self.batches} batches: {verb} "
                f"{self.removed} ({self.removed_bytes} bytes; {self.gone} of originals gone, {self.replaced} of "
                f"replaced ones), kept {self.kept}, {self.errors} errors")


def derived_name(key: str) -> str | None:
    """The image name a derived key belongs to (``a/b`` of ``a/b/.d/<version>...``), or None."""
    name, mark, _ = key.partition(MARK)
    return name if mark and name else None


def of_version(key: str, name: str, version: str) -> bool:
    """Whether ``key`` (under ``name``'s derived prefix) was made from ``version`` of the original."""
    rest = key[len(names.derived_prefix(name)):]
    return rest.startswith(version) and rest[len(version):len(version) + 1] in (".", "/")


def batches(listing: Iterable[ObjectInfo], size: int) -> Iterator[list[tuple[str, ObjectInfo]]]:
    """(name, object) of every derived object of the listing, ``size`` at a time."""
    batch: list[tuple[str, ObjectInfo]] = []
    for info in listing:
        name = derived_name(info.key)
        if name is None:
            continue
        batch.append((name, info))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def prune(service: ImageService, *, dry_run: bool = False, batch_size: int = 1000, prefix: str = "",
          progress: Callable[[Summary], None] | None = None) -> Summary:
    """Remove (or with ``dry_run`` count) the derived objects under ``prefix`` of no current original."""
    summary = Summary(dry_run=dry_run)
    store = bottom_level(service.cache)
    last = ""
    for batch in batches(store.list(prefix), max(1, batch_size)):
        summary.batches += 1
        current: dict[str, str | None] = {}
        for name, info in batch:  # the whole batch is listed: now look the originals up
            summary.scanned += 1
            if name != last:  # listings are in key order: each name's objects are contiguous
                summary.images += 1
                last = name
            if name not in current:
                current[name] = _version(service, name, summary)
            version = current[name]
            if version == "?":
                continue  # the lookup failed: keep everything of this name
            if version is not None and of_version(info.key, name, version):
                summary.kept += 1
                continue
            if not dry_run and not _delete(service, info.key, summary):
                continue
            summary.removed_bytes += info.size
            if version is None:
                summary.gone += 1
            else:
                summary.replaced += 1
        if progress is not None:
            progress(summary)
    return summary


def _version(service: ImageService, name: str, summary: Summary) -> str | None:
    """The current version of ``name``'s original, asked of the store now; None if gone, "?" if unknown."""
    try:
        original = service.find(service.validate_name(name), fresh=True)
    except ImageRepoError as e:
        summary.errors += 1
        summary.failures.append(f"{name}: {e.message}")
        log.warning("prune: cannot look up %s: %s; its derived objects are kept", name, e.message)
        return "?"
    return original.version if original is not None else None


def _delete(service: ImageService, key: str, summary: Summary) -> bool:
    try:
        service.cache.delete(key)  # every level: this host's disk and memory copies too
    except NotFound:
        return True  # removed meanwhile (another prune, a delete): gone is gone
    except ImageRepoError as e:
        summary.errors += 1
        summary.failures.append(f"{key}: {e.message}")
        return False
    return True

"""Writing originals: an upload stored byte for byte, a delete, and what either makes every
worker forget (the old original's derivatives, its saved renderings)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import names
from ..errors import Conflict, InvalidRequest, NotFound, StorageUnavailable, UnsupportedImage
from ..storage.base import ObjectStore, sha256_hex
from . import huge

if TYPE_CHECKING:
    from .images import ImageService

log = logging.getLogger("image_repo.service")


@dataclass(frozen=True)
class Uploaded:
    name: str
    key: str
    sha256: str
    created: bool


def upload(svc: ImageService, target: str, data: bytes, filename: str | None = None, *,
           replace: bool = False, expected_sha256: str | None = None) -> Uploaded:
    """Store ``data`` byte for byte as the original of the name ``target`` implies.

    ``target`` may end in ``/`` (then the upload's own filename is appended) and may
    carry an extension (naming the kind; the content decides the stored extension).
    ``expected_sha256`` (hex), when given, must match ``data`` or nothing is stored.
    The same bytes again under the same name succeed and change nothing (a retry is safe).
    """
    if target == "" or target.endswith("/"):
        base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
        if not base:
            raise InvalidRequest("name: the path ends in '/' but the upload has no filename")
        target = target + base
    stem, path_kind = names.split_extension(target)
    name = svc.validate_name(stem if path_kind is not None else target)
    if not data:
        raise UnsupportedImage("file: the upload is empty")
    digest = sha256_hex(data)
    if expected_sha256 is not None and expected_sha256.lower() != digest:
        raise InvalidRequest(f"checksum: the upload's SHA-256 is {digest}, not {expected_sha256}; nothing stored")
    info = huge.probe_upload(svc, data)
    kind = info.kind
    key = names.original_key(name, kind)
    existing = svc.originals.all_keys(name)
    if len(existing) == 1 and existing[0].key == key:
        same = svc.store.stat(key)
        if same is not None and same.sha256 == digest:
            return Uploaded(name, key, digest, created=False)  # identical: nothing to write or invalidate
    if existing and not replace:
        raise Conflict(f"Image '{name}' already exists; use PUT to replace it")
    stored = svc.store.put(key, data, kind.content_type, {"sha256": digest})
    for other in existing:
        if other.legacy:  # the 2016 layout is never written now: an older form
            try:
                svc.store.delete(other.key)
            except NotFound:
                pass
    # Other formats listed before the write are not simply deleted: one may have been
    # rewritten meanwhile by a newer write. The newest form stays, ours or not.
    svc.originals.keep_newest(name)
    replaced(svc, name, had_original=bool(existing))
    svc.count("uploads")
    if svc.pyramids.wanted(info.width, info.height, kind.name == "tif" and huge.multichannel_bytes(data)):
        svc.pyramids.request(name, key, stored)
    return Uploaded(name, key, stored.sha256 or digest, created=not existing)


def delete(svc: ImageService, name: str) -> None:
    """Remove the original (every stored form of it) and its derivatives."""
    refs = svc.originals.all_keys(name)
    if not refs:
        raise NotFound(f"Image '{name}' not found")
    for ref in refs:
        try:
            svc.store.delete(ref.key)
        except NotFound:
            pass
    replaced(svc, name, had_original=True)
    svc.count("deletes")


def replaced(svc: ImageService, name: str, *, had_original: bool) -> None:
    """After ``name``'s original was written or removed: every worker of the host forgets
    what it knew of it, and the derivatives and saved renderings of the old one go (when there was one)."""
    svc.originals.changed(name)
    if had_original:
        svc.pyramids.let_go(name)  # before its files go; the host's other workers notice within seconds
        drop_derivatives(svc.cache, name)
        svc.renderings.drop(name)


def drop_derivatives(cache: ObjectStore, name: str) -> None:
    """Best effort: derived keys carry the original's version, so leftovers are never served."""
    from .images import bottom_level

    flush = getattr(cache, "flush", None)
    if callable(flush):
        flush(10.0)  # a derivative still being written behind must not land after we list
    try:
        for info in list(bottom_level(cache).list(names.derived_prefix(name))):
            try:
                cache.delete(info.key)
            except NotFound:
                pass
    except StorageUnavailable:
        log.warning("could not remove the derived images of %s; they will never be served", name)

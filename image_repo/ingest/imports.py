"""ImportService: direct-to-store uploads tracked by records in the store itself (no Flask here).

The client announces ``name``, ``sha256`` and ``size``; gets a URL that takes a PUT of the
bytes to a staging key (a Swift TempURL, an S3 presigned PUT, or the server's own signed
route for file://); then says it is complete. The server verifies size, checksum and that
the bytes are an image within the limits, copies them into place (server-side where the
store can), prepares the default thumbnail (and with it the intermediate), and removes the
staging object. A failed verification leaves the repository as it was.

Records are small JSON objects at ``.imports/<id>.json`` and staging objects at
``.imports/<id>.data``: a leading-dot segment is never an image name, so neither is ever
listed. Any server may answer for any import: one that finds a record stuck in
``uploaded`` or ``processing`` by a process that is gone (or silent for STALL seconds)
finishes it, when polled or when ``clean()`` runs.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .. import names
from ..errors import Conflict, ImageRepoError, InvalidRequest, NotConfigured, NotFound, PayloadTooLarge
from ..host.owners import owner, owner_gone
from ..host.storegate import exempt_thread
from ..imaging.spec import parse_query
from ..metrics.figures import import_state
from ..pyramids.header import check_huge, header_of_file
from ..service import huge
from ..service.images import ImageService
from ..storage.base import SupportsTempUrl, sha256_hex
from ..storage.swift import SwiftStore
from .checks import iter_object, probe_file, put_chunks, spool

log = logging.getLogger("image_repo.imports")

PREFIX = ".imports/"
STALL = 600.0
"""Seconds after which another host may take over an import whose owner says nothing."""
_ID = re.compile(r"[0-9a-f]{32}")
_SHA = re.compile(r"[0-9a-f]{64}")
Record = dict[str, Any]


def record_key(import_id: str) -> str:
    return f"{PREFIX}{import_id}.json"


def staging_key(import_id: str) -> str:
    return f"{PREFIX}{import_id}.data"


class ImportService:
    """Imports into ``service``'s originals store."""

    def __init__(self, service: ImageService) -> None:
        self.service = service
        self.store = service.store
        self.settings = service.settings
        self._pool: ThreadPoolExecutor | None = None
        self._running: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    # -- what is offered -----------------------------------------------------------------
    def direct_upload(self) -> str | None:
        """How bytes reach the store: 'temp_url' (Swift/S3), 'signed' (this server), or None (not offered)."""
        if not self.settings.url_keys():
            return None  # signs our own URLs, and is the Swift TempURL key
        if isinstance(self.store, SupportsTempUrl):
            return "temp_url"
        return "signed"

    def offer(self) -> dict[str, Any]:
        return {"direct": self.direct_upload() is not None, "max_import_bytes": self.settings.max_import_bytes,
                "lifetime": self.settings.import_lifetime}

    # -- records -------------------------------------------------------------------------
    def load(self, import_id: str) -> Record:
        if not _ID.fullmatch(import_id):
            raise NotFound(f"no import {import_id!r}")
        try:
            return dict(json.loads(self.store.get(record_key(import_id))))
        except NotFound:
            raise NotFound(f"no import {import_id!r}") from None

    def save(self, rec: Record) -> None:
        """Write the record; every save is a change of state (counted in /metrics once it is written)."""
        rec["updated"] = time.time()
        self.store.put(record_key(rec["id"]), json.dumps(rec).encode(), "application/json")
        import_state(rec["state"])

    def _drop_staging(self, import_id: str) -> None:
        try:
            self.store.delete(staging_key(import_id))
        except NotFound:
            pass

    # -- the client's steps --------------------------------------------------------------
    def create(self, name: str, sha256: str, size: int, *, replace: bool,
               sign_own: Callable[[str, int], str]) -> Record:
        """A new import (state created) with its upload URL; or state done at once if the bytes are there."""
        how = self.direct_upload()
        if how is None:
            raise NotConfigured("direct imports need url_key to be set in the server's configuration")
        name = self.service.validate_name(name)
        sha256 = sha256.lower()
        if not _SHA.fullmatch(sha256):
            raise InvalidRequest("sha256: expected 64 hex digits")
        if size <= 0:
            raise InvalidRequest("size: expected a positive number of bytes")
        if size > self.settings.max_import_bytes:
            raise PayloadTooLarge(f"size: larger than max_import_bytes ({self.settings.max_import_bytes})")
        existing = self.service.find(name)
        if existing is not None and existing.info.sha256 == sha256:
            return {"id": None, "name": name, "sha256": sha256, "size": size, "state": "done", "existing": True}
        if existing is not None and not replace:
            raise Conflict(f"Image '{name}' already exists; import with replace to replace it")
        now = time.time()
        rec: Record = {"id": secrets.token_hex(16), "name": name, "sha256": sha256, "size": size, "replace": replace,
                       "state": "created", "reason": None, "created": now,
                       "expires": int(now + self.settings.import_lifetime)}
        self.save(rec)
        if how == "temp_url":
            assert isinstance(self.store, SupportsTempUrl)
            url, _ = self.store.temp_url(staging_key(rec["id"]), "PUT", self.settings.import_lifetime)
            # Swift keeps these on the staging object and its server-side copy: the checksum the
            # original is stored with (verified before the copy). S3 refuses unsigned x-amz-meta,
            # and needs the encryption headers its URL was signed with (when encryption is set).
            if isinstance(self.store, SwiftStore):
                headers = {"X-Object-Meta-Sha256": sha256}
            else:
                put_headers = getattr(self.store, "put_url_headers", None)
                headers = put_headers() if callable(put_headers) else {}
        else:
            url, headers = sign_own(rec["id"], rec["expires"]), {}
        return {**rec, "upload_url": url, "upload_method": "PUT", "upload_headers": headers}

    def receive(self, import_id: str, chunks: Iterable[bytes]) -> Record:
        """The bytes of an import through this server's signed route, streamed into the staging object."""
        rec = self.load(import_id)
        if rec["state"] != "created":
            raise Conflict(f"import {import_id} is {rec['state']}: it takes no more bytes")
        limit = int(rec["size"])

        def bounded() -> Iterable[bytes]:
            seen = 0
            for chunk in chunks:
                seen += len(chunk)
                if seen > limit:
                    raise PayloadTooLarge(f"more than the {limit} bytes announced")
                yield chunk

        put_chunks(self.store, staging_key(import_id), bounded(), "application/octet-stream", {})
        return rec

    def get(self, import_id: str) -> Record:
        """The record, after finishing what a gone process left or expiring what was never completed."""
        rec = self.load(import_id)
        if rec["state"] == "created" and rec["expires"] < time.time():
            rec = self._fail(rec, "expired: the upload was never completed")
        elif self._stuck(rec):
            self._start(rec["id"])
        return rec

    def complete(self, import_id: str, wait: float = 20.0) -> Record:
        """The client sent the bytes: verify and place them (in the background), waiting up to ``wait`` s."""
        rec = self.get(import_id)  # starts it here if its owner is gone (or it is ours and stopped)
        claimed = rec["state"] == "created"
        if claimed:
            rec.update(state="uploaded", owner=owner())  # owned: no other worker takes it over while it lives
            self.save(rec)
        if rec["state"] in ("done", "failed"):
            return rec
        # Another live worker's (a client that was killed and asks again): never a second run
        # beside it, which found the staging object gone under it and failed an import that
        # succeeded. The client polls for the owner's outcome.
        if claimed:
            future = self._start(import_id)
        else:
            with self._lock:
                future = self._running.get(import_id)
        if future is not None:
            try:
                future.result(timeout=wait)
            except Exception:  # noqa: BLE001, S110 - the outcome is in the record; this only waits
                pass
        return self.load(import_id)

    def cancel(self, import_id: str) -> Record:
        """Give up an import: its staging object goes. One being processed cannot be cancelled (409)."""
        rec = self.load(import_id)
        if rec["state"] == "processing" and not self._stuck(rec):
            raise Conflict(f"import {import_id} is being processed")
        if rec["state"] == "done":
            return rec
        return self._fail(rec, "cancelled", keep_reason=rec["state"] == "failed")

    # -- processing ----------------------------------------------------------------------
    def _stuck(self, rec: Record) -> bool:
        if rec["state"] not in ("uploaded", "processing"):
            return False
        with self._lock:
            if rec["id"] in self._running:
                return False
        holder = rec.get("owner")
        # Ours but not running here: our own attempt ended without an outcome (the store went
        # away before the record could say so); nobody else will take it up before STALL.
        mine = holder == owner()
        return not holder or mine or owner_gone(holder) or time.time() - rec.get("updated", 0) > STALL

    def _start(self, import_id: str) -> Future[None] | None:
        with self._lock:
            future = self._running.get(import_id)
            if future is not None:
                return future
            if self._pool is None:
                # Two at a time, bounded here: not counted against the request threads' store gate.
                self._pool = ThreadPoolExecutor(2, thread_name_prefix="import", initializer=exempt_thread)
            future = self._pool.submit(self.process, import_id)
            self._running[import_id] = future
        # Outside the lock: the callback of a future already done runs here at once, and takes the lock.
        future.add_done_callback(lambda _f: self._forget_running(import_id))
        return future

    def _forget_running(self, import_id: str) -> None:
        with self._lock:
            self._running.pop(import_id, None)

    def _fail(self, rec: Record, reason: str, keep_reason: bool = False) -> Record:
        self._drop_staging(rec["id"])
        rec["state"] = "failed"
        if not keep_reason or not rec.get("reason"):
            rec["reason"] = reason
        self.save(rec)
        return rec

    def process(self, import_id: str) -> None:
        """Verify the staged bytes and move them into place; the outcome goes into the record."""
        rec = self.load(import_id)
        if rec["state"] in ("done", "failed", "created"):
            return
        rec.update(state="processing", owner=owner())
        self.save(rec)
        try:
            key = self._verify_and_place(rec)
        except ImageRepoError as e:
            if self.load(import_id)["state"] == "done":
                return  # another process finished it meanwhile (and took the staging object away)
            log.info("import %s (%s) failed: %s", import_id, rec["name"], e.message)
            self._fail(rec, e.message)
            return
        except Exception as e:
            log.exception("import %s (%s) failed", import_id, rec["name"])
            self._fail(rec, f"internal error: {type(e).__name__}")
            return
        # Done before the staging object goes: a record saved "done" never needs it again (clean()
        # removes a leftover), while a staging object gone under a record still "processing"
        # made a retry fail an import whose original was in place.
        rec.update(state="done", key=key, reason=None)
        self.save(rec)
        self._drop_staging(import_id)
        self._prepare(rec)

    def _verify_and_place(self, rec: Record) -> str:
        staging, sha, size = staging_key(rec["id"]), rec["sha256"], int(rec["size"])
        info = self.store.stat(staging)
        if info is None:
            raise InvalidRequest("no bytes arrived at the upload URL")
        if info.size != size:
            raise InvalidRequest(f"size: {info.size} bytes arrived, {size} were announced")
        data: bytes | None = None
        if size <= self.settings.max_upload_bytes:
            data = b"".join(iter_object(self.store, staging))
            got = sha256_hex(data)
            kind = huge.probe_upload(self.service, data).kind if got == sha else None
        else:
            f, got, _ = spool(self.store, staging)
            with f:
                kind = self._probe_file(f) if got == sha else None
        if got != sha or kind is None:
            raise InvalidRequest(f"checksum: the bytes uploaded have SHA-256 {got}, not {sha}")
        key = names.original_key(rec["name"], kind)
        existing = self.service.find(rec["name"], fresh=True)
        if existing is not None and existing.info.sha256 == sha and existing.ref.key == key:
            return key  # already there (a retried import): nothing to change
        if existing is not None and not rec.get("replace"):
            raise Conflict(f"Image '{rec['name']}' already exists with other bytes")
        self._place(staging, key, kind.content_type, sha, data)
        self.service.originals.keep_newest(rec["name"])  # an original of another kind it replaces goes
        self.service.replaced(rec["name"], had_original=existing is not None)
        return key

    def _probe_file(self, f: Any) -> Any:
        """The kind of a spooled original: by header; beyond max_pixels, accepted up to max_pyramid_pixels."""
        try:
            return probe_file(f, max_pixels=self.settings.max_pixels)
        except PayloadTooLarge:
            if not self.service.pyramids.enabled:
                raise
        h = header_of_file(f"/proc/self/fd/{f.fileno()}")
        check_huge(h, self.settings.max_pyramid_pixels, os.fstat(f.fileno()).st_size)
        return h.kind

    def _place(self, staging: str, key: str, content_type: str, sha: str, data: bytes | None) -> None:
        copy = getattr(self.store, "copy", None)
        if callable(copy):
            src = self.store.stat(staging)
            # The client sent the verified checksum and (if it guessed the kind right) the content type along.
            if src is not None and src.sha256 == sha and (src.content_type == content_type or data is None):
                copy(staging, key)  # server-side: the bytes never pass through this server
                placed = self.store.stat(key)
                if placed is not None and placed.sha256 == sha and placed.size == src.size:
                    return
        if data is not None:
            self.store.put(key, data, content_type, {"sha256": sha})
        else:
            put_chunks(self.store, key, iter_object(self.store, staging), content_type, {"sha256": sha})

    def _prepare(self, rec: Record) -> None:
        """A pyramid build for a large original; else the default thumbnail (and the intermediate
        it leaves), so the first view is a cache hit."""
        try:
            original = self.service.get_original(rec["name"])
            pyramids = self.service.pyramids
            if pyramids.enabled:
                h = huge.header(self.service, original)
                if pyramids.wanted(h.width, h.height, h.multichannel):
                    pyramids.request(original.name, original.ref.key, original.info)
                    return
            if int(rec["size"]) > self.settings.max_upload_bytes:
                return  # an original this large is not decoded here ahead of a request
            box = self.settings.thumbnail_default_size
            spec = parse_query({"thumbnail": "true"}, default_kind=self.settings.default_kind, path_kind=None,
                               thumbnail_box=(int(box[0]), int(box[1]))).spec
            self.service.render(original, spec)
        except ImageRepoError as e:
            log.warning("import %s: thumbnail of %s not prepared: %s", rec["id"], rec["name"], e.message)

    # -- housekeeping ----------------------------------------------------------------------
    def clean(self, now: float | None = None, *, wait: bool = False) -> dict[str, int]:
        """Expire unfinished imports, finish stuck ones, drop old records and orphaned staging objects."""
        now = time.time() if now is None else now
        counts = {"expired": 0, "resumed": 0, "removed": 0}
        keys = [info for info in self.store.list(PREFIX)]
        recorded = {i.key[len(PREFIX):-len(".json")] for i in keys if i.key.endswith(".json")}
        futures = []
        for info in keys:
            import_id, _, ext = info.key[len(PREFIX):].partition(".")
            if ext == "data" and import_id not in recorded and (info.modified or now) < now - self.settings.import_lifetime:
                self._drop_staging(import_id)
                counts["removed"] += 1
            if ext != "json":
                continue
            try:
                rec = self.load(import_id)
            except (NotFound, ValueError):
                continue
            if rec["state"] == "created" and rec["expires"] < now:
                self._fail(rec, "expired: the upload was never completed")
                counts["expired"] += 1
            elif self._stuck(rec):
                futures.append(self._start(import_id))
                counts["resumed"] += 1
            elif rec["state"] in ("done", "failed") and rec.get("updated", now) < now - self.settings.import_lifetime:
                self._drop_staging(import_id)
                self.store.delete(record_key(import_id))
                counts["removed"] += 1
        if wait:
            for future in futures:
                if future is not None:
                    future.exception()
        return counts

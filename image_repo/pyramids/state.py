"""Build records and leases, in the cache store like the import records, so any server reports
and resumes a build.

``.pyramids/<id>.json`` is the record of one build (``id`` from the image's name and the
original's version): name, original key and version, state (queued, building, failed),
reason, attempts. A ready pyramid has no record: its index is the proof.

``.pyramids/<id>.lease-<gen>`` is the lease of whoever builds it, taken by create-if-absent
(file O_EXCL; Swift and S3 ``If-None-Match: *``), renewed while the build runs, and taken
over only by creating the next generation once it has expired (or its owner, on this host,
is gone). Swift checks ``If-None-Match`` before the body lands, so two racing creates can
both succeed there: each reads its lease back, and a holder checks it is still the holder
(no later generation, its own token) before publishing, so one build at most publishes.
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from typing import Any

from ..errors import NotFound, StorageUnavailable
from ..host.owners import owner, owner_gone
from ..storage.base import ObjectStore
from ..storage.large import create_if_absent

log = logging.getLogger("image_repo.pyramids")

PREFIX = ".pyramids/"
LEASE_SECONDS = 120.0
"""A lease not renewed for this long is free; holders renew it every LEASE_SECONDS / 6."""
Record = dict[str, Any]


def build_id(name: str, version: str) -> str:
    return hashlib.sha256(f"{name}\n{version}".encode()).hexdigest()[:40]


class Records:
    """The build records in one store (the cache store's authoritative level)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def key(self, build: str) -> str:
        return f"{PREFIX}{build}.json"

    def load(self, build: str) -> Record | None:
        try:
            rec = json.loads(self.store.get(self.key(build)))
        except NotFound:
            return None
        except ValueError:
            return None  # a torn or foreign record: as good as none
        return rec if isinstance(rec, dict) else None

    def save(self, rec: Record) -> None:
        rec["updated"] = time.time()
        self.store.put(self.key(rec["id"]), json.dumps(rec).encode(), "application/json")

    def drop(self, build: str) -> None:
        """The record and every lease of ``build``."""
        for info in list(self.store.list(f"{PREFIX}{build}.")):
            try:
                self.store.delete(info.key)
            except NotFound:
                pass

    def all(self) -> list[Record]:
        """Every record (one listing, then a GET each)."""
        out = []
        for info in list(self.store.list(PREFIX)):
            if info.key.endswith(".json"):
                rec = self.load(info.key[len(PREFIX):-len(".json")])
                if rec is not None:
                    out.append(rec)
        return out


class Lease:
    """The right to build one image, held by this process."""

    def __init__(self, store: ObjectStore, build: str, gen: int, token: str) -> None:
        self.store, self.build, self.gen, self.token = store, build, gen, token

    @property
    def key(self) -> str:
        return lease_key(self.build, self.gen)

    @classmethod
    def take(cls, store: ObjectStore, build: str) -> Lease | None:
        """The lease of ``build`` if it is free (never taken, expired, or its owner gone); else None."""
        gens = _generations(store, build)
        gen = 0
        if gens:
            gen = gens[-1]
            current = _read(store, lease_key(build, gen))
            if current is not None and not _expired(current):
                return None
            gen += 1
        token = secrets.token_hex(16)
        body = json.dumps({"owner": owner(), "token": token, "expires": time.time() + LEASE_SECONDS}).encode()
        if not create_if_absent(store, lease_key(build, gen), body, "application/json"):
            return None
        lease = cls(store, build, gen, token)
        if not lease.held():
            return None
        for old in gens:  # earlier generations only name expired holders
            try:
                store.delete(lease_key(build, old))
            except (NotFound, StorageUnavailable):
                pass
        return lease

    def held(self) -> bool:
        """Still ours: our token in our generation, and no later generation taken over from us."""
        current = _read(self.store, self.key)
        if current is None or current.get("token") != self.token:
            return False
        return _generations(self.store, self.build)[-1:] == [self.gen]

    def renew(self) -> bool:
        """Push the expiry on; False (and nothing written) when the lease is no longer ours."""
        if not self.held():
            return False
        body = {"owner": owner(), "token": self.token, "expires": time.time() + LEASE_SECONDS}
        self.store.put(self.key, json.dumps(body).encode(), "application/json")
        return True

    def release(self) -> None:
        if self.held():
            try:
                self.store.delete(self.key)
            except NotFound:
                pass


def live_lease(store: ObjectStore, build: str) -> Record | None:
    """The current lease of ``build`` if someone holds it now, else None."""
    gens = _generations(store, build)
    if not gens:
        return None
    current = _read(store, lease_key(build, gens[-1]))
    return None if current is None or _expired(current) else current


def lease_key(build: str, gen: int) -> str:
    return f"{PREFIX}{build}.lease-{gen:08d}"


def _generations(store: ObjectStore, build: str) -> list[int]:
    prefix = f"{PREFIX}{build}.lease-"
    return sorted(int(i.key[len(prefix):]) for i in store.list(prefix) if i.key[len(prefix):].isdigit())


def _read(store: ObjectStore, key: str) -> Record | None:
    try:
        doc = json.loads(store.get(key))
    except (NotFound, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _expired(lease: Record) -> bool:
    return float(lease.get("expires", 0)) < time.time() or owner_gone(str(lease.get("owner", "")))

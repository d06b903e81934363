"""The whole contract of a storage backend: the ObjectStore protocol, ObjectInfo, and the rules for keys and metadata."""
from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Protocol, Sequence, runtime_checkable

from ..errors import InvalidRequest

_META_KEY = re.compile(r"^[a-z0-9-]+$")


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object without reading it."""

    key: str
    size: int
    content_type: str | None = None
    sha256: str | None = None
    """Hex SHA-256 of the bytes when the store has it (we always write it; other tools may not)."""
    etag: str | None = None
    """The backend's own content hash (Swift/S3 MD5) when it has one."""
    modified: float | None = None
    """Last modification, seconds since the epoch."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Custom metadata: lower-case ASCII keys (``[a-z0-9-]``), ASCII values."""


@runtime_checkable
class ObjectStore(Protocol):
    """A flat key -> bytes store. Keys are UTF-8 strings that may hold ``/``.

    Backends translate their own errors at their edge: a missing key is ``NotFound``,
    an unreachable or failing backend is ``StorageUnavailable``.
    """

    url: str

    def get(self, key: str) -> bytes:
        """The object's bytes; ``NotFound`` if absent."""
        ...

    def get_with_info(self, key: str) -> tuple[bytes, ObjectInfo]:
        """Bytes and info in one call (one round trip where the backend allows)."""
        ...

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from offset ``start``; fewer only where the object ends (none past its end).

        ``NotFound`` if absent; ``InvalidRequest`` for a negative start or length. One read of
        only those bytes (pread on a file, a ``Range`` GET on Swift and S3): a tile of a
        multi-GB pyramid costs its own bytes, never the object's.
        """
        ...

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Store ``data`` whole or not at all; records its SHA-256. Returns the new info."""
        ...

    def stat(self, key: str) -> ObjectInfo | None:
        """Info for ``key``, or None if absent."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; ``NotFound`` if absent."""
        ...

    def list(self, prefix: str = "", marker: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` and sorts after ``marker``, in key order.

        A backend starts at the marker without reading what comes before it where it can
        (Swift's ``marker``, S3's ``StartAfter``, skipped directories on disk): a page of a
        long listing costs a page, not the listing.
        """
        ...

    def close(self) -> None:
        """Release connections and files; the store may not be used after."""
        ...


@runtime_checkable
class SupportsTempUrl(Protocol):
    """Optional capability: a URL that grants ``method`` on ``key`` for ``seconds``."""

    def temp_url(self, key: str, method: str = "GET", seconds: int = 3600) -> tuple[str, int]:
        """The URL and its expiry (epoch seconds)."""
        ...


@runtime_checkable
class SupportsRanges(Protocol):
    """Optional capability: several ranges of one object in one request (Swift's multipart/byteranges)."""

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """The bytes of each ``(start, length)`` in ``ranges``, in order, as ``get_range`` would give them."""
        ...


@runtime_checkable
class SupportsPutFile(Protocol):
    """Optional capability: store a local file larger than memory, whole or not at all."""

    def put_file(self, key: str, path: str, content_type: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        """Store the file at ``path`` (which the store may move into place: the caller's copy is
        gone after); never held in memory; readers see the old object or the whole new one."""
        ...


@runtime_checkable
class SupportsCreate(Protocol):
    """Optional capability: create an object only if the key is free (a lease, a lock)."""

    create_is_atomic: bool
    """False where racing creates may both succeed (Swift checks ``If-None-Match`` before the body
    lands): a lease taken by create() must then read itself back (pyramids/lease.py)."""

    def create(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """Store ``data`` under ``key`` if no object is there; False if one was."""
        ...


def get_ranges(store: ObjectStore, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """Several ranges of one object: one request where the store can, else one ``get_range`` each."""
    if len(ranges) > 1 and isinstance(store, SupportsRanges):
        return store.get_ranges(key, ranges)
    return [store.get_range(key, start, length) for start, length in ranges]


def check_range(start: int, length: int) -> None:
    """Refuse a range no store can read: a negative start or length."""
    if start < 0 or length < 0:
        raise InvalidRequest(f"byte range start={start} length={length}: both must be 0 or more")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_version(info: ObjectInfo) -> str:
    """A string that changes whenever the object's bytes do: its SHA-256, else the backend's hash."""
    if info.sha256:
        return info.sha256
    if info.etag:
        return "etag-" + info.etag.strip('"')
    return f"size-{info.size}-m{int((info.modified or 0) * 1000)}"


def guess_content_type(key: str) -> str:
    """The MIME type a key's extension implies, else application/octet-stream.

    Only for objects written without a content type: stores know bytes, not image formats
    (the service passes the type of every original and derivative it writes).
    """
    return mimetypes.guess_type(key, strict=False)[0] or "application/octet-stream"


def check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """A copy of ``metadata`` if it keeps the contract (``[a-z0-9-]`` keys, ASCII values), else InvalidRequest."""
    out: dict[str, str] = {}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not _META_KEY.match(k):
            raise InvalidRequest(f"metadata key {k!r}: only lower-case ASCII letters, digits and '-'")
        if not isinstance(v, str) or not v.isascii() or any(c in v for c in "\r\n\0"):
            raise InvalidRequest(f"metadata {k}: value must be one line of ASCII")
        out[k] = v
    return out


def check_key(key: str) -> None:
    """Refuse keys no backend can hold: empty, or with NUL."""
    if not key or "\0" in key:
        raise InvalidRequest(f"invalid object key {key!r}")

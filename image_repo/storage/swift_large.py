"""What SwiftStore needs for pyramids: ranged reads, several ranges in one GET, files larger
than memory (streamed PUT; a Static Large Object past one object's limit) and create-if-absent.

Functions of a SwiftStore (``store``), kept apart so swift.py stays the plain contract.

Segments of a large object are ``<dir>/.seg/<base>/<token>/<n>`` in the same container: a
leading-dot segment is never an image name, and they sit under the object's own directory,
so dropping an image's derivatives (one listing of its derived prefix) takes them too. The
manifest appears at once when its PUT completes: readers see the old object or the whole new one.
"""
from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from swiftclient.client import ClientException, Connection

from ..errors import NotFound, StorageUnavailable
from .base import ObjectInfo, check_key, check_metadata, check_range, guess_content_type

if TYPE_CHECKING:
    from .swift import SwiftStore

MAX_OBJECT_BYTES = 5 * 2**30
"""Swift's default ``max_file_size``: a larger file is stored as a Static Large Object."""
MAX_RANGES_PER_GET = 50
"""Swift serves at most this many ranges of one GET as asked (more and it may answer the whole object)."""


def segment_prefix(key: str) -> str:
    """Where the segments of ``key`` (as a Static Large Object) live."""
    head, slash, base = key.rpartition("/")
    return f"{head}{slash}.seg/{base}/"


def get_range(store: SwiftStore, key: str, start: int, length: int) -> bytes:
    """One ``Range`` GET; past the end is empty (Swift's 416), a zero length only checks that ``key`` exists."""
    check_range(start, length)
    if length == 0:
        if store.stat(key) is None:
            raise NotFound(f"no object {key!r}")
        return b""
    full = store.prefix + key

    def get(c: Connection) -> bytes:
        try:
            _, body = c.get_object(store.container, full, headers={"Range": f"bytes={start}-{start + length - 1}"})
        except ClientException as e:
            if e.http_status == 416:
                return b""
            raise
        return bytes(body)[:length]

    return store._call(f"GET {key!r} bytes {start}+{length}", get)


def get_ranges(store: SwiftStore, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """Several ranges in one GET each ``MAX_RANGES_PER_GET`` (Swift answers multipart/byteranges)."""
    for start, length in ranges:
        check_range(start, length)
    wanted = sorted({(s, n) for s, n in ranges if n > 0})
    found: dict[tuple[int, int], bytes] = {}
    for i in range(0, len(wanted), MAX_RANGES_PER_GET):
        batch = wanted[i:i + MAX_RANGES_PER_GET]
        found.update(_one_get(store, key, batch))
    if not wanted and ranges and store.stat(key) is None:
        raise NotFound(f"no object {key!r}")
    return [found.get((s, n), b"") if n > 0 else b"" for s, n in ranges]


def _one_get(store: SwiftStore, key: str, batch: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    spec = ",".join(f"{s}-{s + n - 1}" for s, n in batch)
    full = store.prefix + key
    answer: dict[str, Any] = {}

    def get(c: Connection) -> tuple[dict[str, str], bytes] | None:
        try:
            headers, body = c.get_object(store.container, full, headers={"Range": f"bytes={spec}"},
                                         response_dict=answer)
        except ClientException as e:
            if e.http_status == 416:
                return None  # every range past the end
            raise
        return headers, bytes(body)

    got = store._call(f"GET {key!r} {len(batch)} ranges", get)
    if got is None:
        return {}
    headers, body = got
    ctype = headers.get("content-type", "")
    if answer.get("status") == 200:  # ranges ignored: the whole object came (only a small one can)
        return {(s, n): body[s:s + n] for s, n in batch}
    if not ctype.startswith("multipart/byteranges"):
        first = _content_range_start(headers.get("content-range", ""))
        return {(s, n): body[s - first:s - first + n] for s, n in batch if s >= first}
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
    parts: list[tuple[int, bytes]] = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        parts.append((_content_range_start(str(part.get("Content-Range", ""))), bytes(payload or b"")))
    out: dict[tuple[int, int], bytes] = {}
    for s, n in batch:
        for first, data in parts:  # Swift may merge neighbouring ranges into one part
            if first <= s < first + len(data):
                out[(s, n)] = data[s - first:s - first + n]
                break
    return out


def _content_range_start(value: str) -> int:
    """The first byte of ``bytes a-b/total``."""
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        raise StorageUnavailable(f"swift: unexpected Content-Range {value!r}") from None


def _digests(path: str) -> tuple[str, str, int]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            md5.update(chunk)
            sha.update(chunk)
            size += len(chunk)
    return md5.hexdigest(), sha.hexdigest(), size


class _Window:
    """``length`` bytes of an open file from ``start``, read by swiftclient as a body."""

    def __init__(self, f: Any, start: int, length: int) -> None:
        self.f, self.left = f, length
        f.seek(start)

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.f.read(size) if size else b""
        self.left -= len(data)
        return bytes(data)


def put_file(store: SwiftStore, key: str, path: str, content_type: str | None = None,
             metadata: Mapping[str, str] | None = None) -> ObjectInfo:
    """A streamed PUT checked by MD5; a Static Large Object of ``store.max_object_bytes`` segments past that."""
    check_key(key)
    meta = check_metadata(metadata)
    ctype = content_type or guess_content_type(key)
    md5, sha, size = _digests(path)
    headers = {**{f"X-Object-Meta-{k}": v for k, v in meta.items() if k != "sha256"}, "X-Object-Meta-Sha256": sha}
    full = store.prefix + key
    limit = store.max_object_bytes
    with open(path, "rb") as f:
        if size <= limit:
            etag = store._call(f"PUT {key!r}", lambda c: c.put_object(
                store.container, full, contents=_Window(f, 0, size), content_length=size, etag=md5,
                content_type=ctype, headers=headers))
            if str(etag).strip('"') != md5:
                raise StorageUnavailable(f"swift PUT {key!r}: stored bytes do not match the file")
        else:
            _put_large(store, key, f, size, ctype, headers)
    _drop_segments(store, key, keep=None if size > limit else "")
    return ObjectInfo(key=key, size=size, content_type=ctype, sha256=sha, etag=md5, modified=time.time(),
                      metadata=meta)


def _put_large(store: SwiftStore, key: str, f: Any, size: int, ctype: str, headers: dict[str, str]) -> None:
    token = secrets.token_hex(8)
    prefix = f"{segment_prefix(key)}{token}/"
    manifest, limit = [], store.max_object_bytes
    try:
        for n, start in enumerate(range(0, size, limit)):
            length = min(limit, size - start)
            md5 = hashlib.md5(usedforsecurity=False)
            f.seek(start)
            left = length
            while left:
                chunk = f.read(min(left, 1 << 20))
                md5.update(chunk)
                left -= len(chunk)
            seg = f"{prefix}{n:08d}"

            def put_segment(c: Connection, seg: str = seg, start: int = start, length: int = length,
                            etag: str = md5.hexdigest()) -> Any:
                return c.put_object(store.container, store.prefix + seg, contents=_Window(f, start, length),
                                    content_length=length, etag=etag)

            store._call(f"PUT segment {seg!r}", put_segment)
            manifest.append({"path": f"/{store.container}/{store.prefix}{seg}", "etag": md5.hexdigest(),
                             "size_bytes": length})
        body = json.dumps(manifest).encode()
        store._call(f"PUT manifest {key!r}", lambda c: c.put_object(
            store.container, store.prefix + key, contents=body, content_type=ctype, headers=headers,
            query_string="multipart-manifest=put"))
    except BaseException:
        _drop_segments(store, key, only=token)
        raise
    _drop_segments(store, key, keep=token)


def _drop_segments(store: SwiftStore, key: str, keep: str | None = None, only: str | None = None) -> None:
    """Remove segments of ``key`` left by earlier versions (all but ``keep``'s), or only ``only``'s."""
    if keep is None and only is None:
        return
    prefix = segment_prefix(key)
    try:
        for info in list(store.list(prefix)):
            token = info.key[len(prefix):].split("/", 1)[0]
            if (only is not None and token == only) or (only is None and token != keep):
                try:
                    store.delete(info.key)
                except NotFound:
                    pass
    except StorageUnavailable:
        pass  # left for the next write or the derivatives' drop: never served, only stored


def create(store: SwiftStore, key: str, data: bytes, content_type: str | None = None) -> bool:
    """A PUT with ``If-None-Match: *``: Swift answers 412 when the object exists."""
    check_key(key)
    full = store.prefix + key

    def put(c: Connection) -> bool:
        try:
            c.put_object(store.container, full, contents=data, content_type=content_type or guess_content_type(key),
                         headers={"If-None-Match": "*"})
        except ClientException as e:
            if e.http_status == 412:
                return False
            raise
        return True

    try:
        return store._call(f"PUT {key!r} if absent", put)
    except NotFound:  # no container yet
        store._call(f"PUT {store.container!r}", lambda c: c.put_container(store.container))
        return store._call(f"PUT {key!r} if absent", put)


__all__ = ["MAX_OBJECT_BYTES", "create", "get_range", "get_ranges", "put_file", "segment_prefix"]

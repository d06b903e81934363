"""What FileStore keeps beside each data file: the sidecar, trusted only while it matches its file.

``<dir>/.<basename>.meta.json`` holds the content type, SHA-256 and custom metadata, and the
(inode, size, mtime_ns) of the data file it describes. A sidecar that does not match its
file is stale: the SHA-256 is recomputed from the bytes (content type and metadata are still
taken from it, as they describe the key as last written). Files without a sidecar (written
by another tool) get one lazily. Parsed sidecars and computed hashes are remembered in
process, keyed by the identity of the files they came from.
"""
from __future__ import annotations

import os
import threading

from cachetools import LRUCache

from .base import ObjectInfo, guess_content_type, sha256_hex
from .fileio import NOT_THERE, decode_sidecar, encode_sidecar, hash_file, link_new, read_small, sidecar_name, temp_name

REMEMBERED = 4096
"""Sidecars (and hashes) a FileStore keeps parsed, least recently used dropped first."""

Ident = tuple[int, int, int]
"""(inode, size, mtime_ns) of a file: changes whenever its bytes are replaced."""


class Sidecars:
    """Reads, caches and adopts the sidecars of one FileStore."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (key) -> (sidecar ident, parsed sidecar); (key, data ident) -> sha256 of stale/foreign files.
        # ~1.5 KB an entry (a derivative's key is long): a worker's hot set, not the whole store; a
        # miss costs one small read. With 65,536 in each of its two stores a worker grew by ~40 MB in a
        # 30-minute soak (bench/soak.py).
        self._sidecars: LRUCache[str, tuple[Ident, dict | None]] = LRUCache(maxsize=REMEMBERED)
        self._hashes: LRUCache[tuple[str, Ident], str] = LRUCache(maxsize=REMEMBERED)

    def info(self, dir_fd: int, base: str, key: str, st: os.stat_result, data: bytes | None) -> ObjectInfo:
        """ObjectInfo for the data file ``st`` (and its bytes, when read), trusting only a matching sidecar."""
        ident = (st.st_ino, st.st_size, st.st_mtime_ns)
        side = self.load(dir_fd, base, key)
        sha = side.get("sha256") if side and side.get("ident") == list(ident) else None
        if sha is None:
            with self._lock:
                sha = self._hashes.get((key, ident))
            if sha is None:
                if data is None:
                    sha, st = hash_file(dir_fd, base, key)
                    ident = (st.st_ino, st.st_size, st.st_mtime_ns)
                else:
                    sha = sha256_hex(data)
                with self._lock:
                    self._hashes[(key, ident)] = sha
                if side is None:
                    self.adopt(dir_fd, base, key, ident, sha)
        return ObjectInfo(
            key=key,
            size=st.st_size,
            content_type=(side or {}).get("content_type") or guess_content_type(key),
            sha256=sha,
            modified=st.st_mtime,
            metadata=dict((side or {}).get("metadata") or {}),
        )

    def load(self, dir_fd: int, base: str, key: str) -> dict | None:
        """The parsed sidecar of ``base`` (cached by the sidecar's own inode/size/mtime), or None."""
        name = sidecar_name(base)
        try:
            sst = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as e:
            if e.errno in NOT_THERE:
                return None
            raise
        sident = (sst.st_ino, sst.st_size, sst.st_mtime_ns)
        with self._lock:
            hit = self._sidecars.get(key)
        if hit is not None and hit[0] == sident:
            return hit[1]
        side = read_small(dir_fd, name)
        parsed = decode_sidecar(side) if side is not None else None
        with self._lock:
            self._sidecars[key] = (sident, parsed)
        return parsed

    def adopt(self, dir_fd: int, base: str, key: str, ident: Ident, sha: str) -> None:
        """Record a foreign file's SHA-256 in a new sidecar, unless someone wrote one meanwhile."""
        body = encode_sidecar(ident, sha, guess_content_type(key), {})
        try:
            link_new(dir_fd, sidecar_name(base), temp_name(base), body)
        except OSError:
            pass  # read-only tree or a racing writer: the in-process hash cache still helps

    def clear(self) -> None:
        with self._lock:
            self._sidecars.clear()
            self._hashes.clear()

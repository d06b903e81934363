"""DiskCache: a byte-capped LRU directory of objects on local disk, shared by worker processes.

Each entry is one file ``<dir>/<h[:2]>/<h[2:4]>/<h>`` (``h`` = SHA-256 of the key, so any key
is a safe name): ``MAGIC``, a 4-byte header length, a JSON header (key, ObjectInfo fields and
the SHA-256 of the data) and the data. Entries are written to a temp file and renamed in, and
verified against their SHA-256 on every read, so a torn or corrupted file is dropped, not served.

The byte total of all entries lives in ``<dir>/.usage`` and changes only under ``<dir>/.lock``
(a ``filelock``), together with the rename that admits an entry: the total on disk never
exceeds the cap, whatever the number of processes. When an entry would pass the cap, the
holder re-scans the directory and evicts least recently used entries (by mtime, which a hit
refreshes at most once a minute) down to ``low_water`` of the cap, so scans stay rare.
"""
from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import secrets
import struct
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from filelock import FileLock, Timeout

from .. import testpoints
from ..errors import NotFound
from ..storage.base import ObjectInfo, check_key, check_metadata, check_range, guess_content_type, sha256_hex
from .stats import Counters

log = logging.getLogger("image_repo.cache")

MAGIC = b"IRDC1\n"
_LEN = struct.Struct(">I")
TOUCH_AFTER = 60.0
"""Seconds before a hit refreshes an entry's mtime (its LRU position): one utime, not one per hit."""
STALE_TEMP_AFTER = 3600.0


class DiskCache:
    """Objects in a local directory, at most ``max_bytes`` of files; survives restarts; never raises on I/O."""

    def __init__(
        self,
        path: str,
        max_bytes: int,
        *,
        max_item_bytes: int | None = None,
        low_water: float = 0.9,
        lock_timeout: float = 30.0,
    ) -> None:
        self.path = os.path.abspath(path)
        self.url = "disk-cache://" + self.path
        self.max_bytes = max_bytes
        self.max_item_bytes = min(max_item_bytes or max(max_bytes // 4, 1), max_bytes)
        self.low_water = int(max_bytes * low_water)
        self.counters = Counters("disk", ("evictions",))
        self.enabled = True
        self._tlock = threading.Lock()  # FileLock(thread_local=False) does not exclude threads
        self._usage_path = os.path.join(self.path, ".usage")
        try:
            os.makedirs(self.path, exist_ok=True)
            self._flock = FileLock(os.path.join(self.path, ".lock"), timeout=lock_timeout,
                                   thread_local=False, poll_interval=0.002)
            with self._locked():
                if self._read_usage() is None:  # first start, or a crash mid-write: re-index
                    self._write_usage(self._scan()[0])
        except (OSError, Timeout) as e:
            self._disable("cannot use the directory", e)

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        """The cached bytes; NotFound on a miss."""
        return self.get_with_info(key)[0]

    def get_with_info(self, key: str) -> tuple[bytes, ObjectInfo]:
        """Verified bytes and info; NotFound on a miss (a corrupted entry is dropped and is a miss)."""
        if self.enabled:
            final = self._place(key)
            try:
                with open(final, "rb") as f:
                    blob = f.read()
                    st = os.fstat(f.fileno())
            except FileNotFoundError:
                pass
            except OSError as e:
                self.counters.add("errors")
                log.debug("disk cache: cannot read %s: %s", final, e)
            else:
                parsed = _parse(blob, key, verify=True)
                if parsed is not None:
                    if time.time() - st.st_mtime > TOUCH_AFTER:
                        try:
                            os.utime(final)
                        except OSError:
                            pass
                    self.counters.add("hits")
                    return parsed
                log.warning("disk cache: dropping corrupted entry for %r (%s)", key, final)
                self.counters.add("errors")
                self._drop(final, st.st_ino)
        self.counters.add("misses")
        raise NotFound(f"not cached: {key!r}")

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """A range of a cached object, read from its entry without reading the rest; NotFound on a miss.

        The entry's SHA-256 covers the whole object, so a range is checked only against the
        size its header records (entries are renamed in whole; a torn one cannot be there).
        """
        check_range(start, length)
        if self.enabled:
            final = self._place(key)
            try:
                with open(final, "rb") as f:
                    head = f.read(len(MAGIC) + _LEN.size)
                    if len(head) == len(MAGIC) + _LEN.size and head.startswith(MAGIC):
                        hlen = _LEN.unpack_from(head, len(MAGIC))[0]
                        parsed = _parse(head + f.read(hlen), key, verify=False)
                        begin = len(head) + hlen
                        if parsed is not None and os.fstat(f.fileno()).st_size == begin + parsed[1].size:
                            self.counters.add("hits")
                            return os.pread(f.fileno(), max(0, min(length, parsed[1].size - start)), begin + start)
            except FileNotFoundError:
                pass
            except OSError as e:
                self.counters.add("errors")
                log.debug("disk cache: cannot read %s: %s", final, e)
        self.counters.add("misses")
        raise NotFound(f"not cached: {key!r}")

    def stat(self, key: str) -> ObjectInfo | None:
        """Info from the entry's header (the data is verified on get), or None."""
        if not self.enabled:
            return None
        return _read_header(self._place(key), key)

    def list(self, prefix: str = "", marker: str = "") -> Iterator[ObjectInfo]:
        """Entries under ``prefix`` in key order. Reads every header: for tools, not the hot path."""
        if not self.enabled:
            return iter(())
        with self._locked():
            paths = [p for _, _, p in self._scan()[1]]
        infos = []
        for p in paths:
            info = _read_header(p, None)
            if info is not None and info.key.startswith(prefix) and info.key > marker:
                infos.append(info)
        return iter(sorted(infos, key=lambda i: i.key))

    # -- writes --------------------------------------------------------------------------

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Cache ``data`` (if it fits and the disk lets us) and return its info."""
        check_key(key)
        info = ObjectInfo(key, len(data), content_type or guess_content_type(key), sha256_hex(data), None,
                          time.time(), check_metadata(metadata))
        self.fill(key, data, info)
        return info

    def fill(self, key: str, data: bytes, info: ObjectInfo) -> None:
        """Cache ``data`` with the ``info`` a slower level gave; on a disk error, stop disk caching."""
        if not self.enabled:
            return
        header = json.dumps({
            "key": key, "size": len(data), "check": info.sha256 or sha256_hex(data), "sha256": info.sha256,
            "content_type": info.content_type, "etag": info.etag, "modified": info.modified,
            "metadata": dict(info.metadata),
        }, separators=(",", ":")).encode()
        size = len(MAGIC) + _LEN.size + len(header) + len(data)
        final = self._place(key)
        if size > self.max_item_bytes:
            self._drop(final, None)  # never leave an older version behind
            return
        tmp = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.tmp-{secrets.token_hex(6)}")
        try:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            with open(tmp, "xb") as f:
                f.write(b"".join((MAGIC, _LEN.pack(len(header)), header)))
                f.flush()
                testpoints.reach("disk-cache-write")
                f.write(data)
            try:
                with self._locked():
                    testpoints.reach("disk-cache-admit")
                    self._admit(final, size)
                    os.replace(tmp, final)
            finally:
                if os.path.lexists(tmp):
                    os.unlink(tmp)
        except Timeout:
            self.counters.add("errors")  # a stuck peer: skip this entry, keep caching
            return
        except OSError as e:
            self._disable("cannot write", e)
            return
        self.counters.add("puts")

    def delete(self, key: str) -> None:
        """Remove the entry for ``key``; NotFound if there is none."""
        if not self.enabled or not self._drop(self._place(key), None):
            raise NotFound(f"not cached: {key!r}")

    def close(self) -> None:
        """Nothing to release: every operation opens and closes its own files."""

    # -- accounting ----------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._tlock, self._flock:
            yield

    def _admit(self, final: str, size: int) -> None:
        """Make room for ``size`` bytes at ``final`` and record the new total (under the lock)."""
        total = self._read_usage()
        old = _size_or_zero(final)
        if total is None or total - old + size > self.max_bytes:
            total, entries = self._scan()
            current = total - old
            target = self.low_water - size
            for _, esize, epath in sorted(entries):
                if current <= target:
                    break
                if epath == final:
                    continue
                try:
                    os.unlink(epath)
                except FileNotFoundError:
                    pass
                current -= esize
                self.counters.add("evictions")
            total = current + old
        self._write_usage(total - old + size)

    def _drop(self, final: str, ino: int | None) -> bool:
        """Remove ``final`` (only if it is still inode ``ino``, when given) and account for it."""
        try:
            with self._locked():
                try:
                    st = os.lstat(final)
                except FileNotFoundError:
                    return False
                if ino is not None and st.st_ino != ino:
                    return False  # replaced by a fresh write meanwhile
                os.unlink(final)
                total = self._read_usage()
                self._write_usage(max(0, (total or 0) - st.st_size))
                return True
        except (OSError, Timeout) as e:
            log.debug("disk cache: cannot drop %s: %s", final, e)
            return False

    def _scan(self) -> tuple[int, builtins.list[tuple[float, int, str]]]:
        """Every entry's (mtime, size, path) and their total; removes stale temp files."""
        entries: builtins.list[tuple[float, int, str]] = []
        now = time.time()
        for top in _subdirs(self.path):
            for sub in _subdirs(top):
                with os.scandir(sub) as it:
                    for e in it:
                        try:
                            st = e.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        if e.name.startswith("."):
                            if now - st.st_mtime > STALE_TEMP_AFTER:
                                _unlink_quiet(e.path)  # left by a killed writer
                            continue
                        entries.append((st.st_mtime, st.st_size, e.path))
        return sum(s for _, s, _ in entries), entries

    def scan_bytes(self) -> int:
        """The real byte total of all entries, counted under the lock (for tests and tools)."""
        with self._locked():
            return self._scan()[0]

    def _read_usage(self) -> int | None:
        try:
            with open(self._usage_path, "rb") as f:
                return int(f.read(32))
        except (OSError, ValueError):
            return None

    def _write_usage(self, total: int) -> None:
        with open(self._usage_path, "wb") as f:
            f.write(str(max(total, 0)).encode())

    def _place(self, key: str) -> str:
        h = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return os.path.join(self.path, h[:2], h[2:4], h)

    def _disable(self, what: str, e: BaseException) -> None:
        if self.enabled:
            self.enabled = False
            reason = getattr(e, "strerror", None) or str(e)
            log.warning("disk cache at %s disabled, serving without it: %s: %s", self.path, what, reason)

    def stats(self) -> dict[str, int]:
        """Counters plus the recorded byte total (approximate between locks) and the cap."""
        used = self._read_usage() if self.enabled else 0
        return {**self.counters.snapshot(), "bytes": used or 0, "max_bytes": self.max_bytes,
                "enabled": int(self.enabled)}

    def __repr__(self) -> str:
        return f"DiskCache({self.path!r}, max_bytes={self.max_bytes})"


def _parse(blob: bytes, key: str | None, verify: bool) -> tuple[bytes, ObjectInfo] | None:
    """(data, info) from an entry's bytes, or None if it is not whole, not ours or not ``key``'s."""
    start = len(MAGIC) + _LEN.size
    if len(blob) < start or not blob.startswith(MAGIC):
        return None
    (hlen,) = _LEN.unpack_from(blob, len(MAGIC))
    try:
        h = json.loads(blob[start:start + hlen])
        data = blob[start + hlen:]
        if key is not None and h["key"] != key:
            return None
        if verify and (len(data) != h["size"] or sha256_hex(data) != h["check"]):
            return None
        info = ObjectInfo(h["key"], h["size"], h.get("content_type"), h.get("sha256"), h.get("etag"),
                          h.get("modified"), dict(h.get("metadata") or {}))
    except (ValueError, KeyError, TypeError):
        return None
    return data, info


def _read_header(path: str, key: str | None) -> ObjectInfo | None:
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + _LEN.size)
            if len(head) < len(MAGIC) + _LEN.size or not head.startswith(MAGIC):
                return None
            head += f.read(_LEN.unpack_from(head, len(MAGIC))[0])
    except OSError:
        return None
    parsed = _parse(head, key, verify=False)
    return None if parsed is None else parsed[1]


def _subdirs(path: str) -> list[str]:
    try:
        with os.scandir(path) as it:
            return [e.path for e in it if len(e.name) == 2 and e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _size_or_zero(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass

"""FileStore's low-level parts: key -> path segments, reserved names, descriptor-relative I/O, listing."""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import stat as stat_mod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import BinaryIO

from ..errors import InvalidRequest, NotFound
from .base import ObjectInfo, check_key, guess_content_type

_RESERVED = re.compile(r"^\..*\.(meta\.json|tmp-[0-9a-f]{12})$", re.DOTALL)
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
NOT_THERE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


def write_new(dir_fd: int, name: str, data: bytes, fsync: bool) -> os.stat_result:
    """Create ``name`` (which must not exist) holding ``data``; its stat after the write."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
        return os.fstat(fd)
    finally:
        os.close(fd)


def hold_for_writing(root_fd: int) -> None:
    """A writer's shared lock on the store's root, held until its temp file is in the leaf directory.

    Deleting prunes empty parents, and a writer walks into a directory before it has put anything
    in it: with no lock the pruner can remove that directory under the writer, which then fails
    with ENOENT. While any writer holds this, pruning waits for another delete (see try_pruning).
    A file system without flock (some NFS) leaves the writer unlocked and pruning off."""
    try:
        fcntl.flock(root_fd, fcntl.LOCK_SH)
    except OSError:
        pass


def release(root_fd: int) -> None:
    """Drop the lock of hold_for_writing once the temp file keeps the directory non-empty."""
    try:
        fcntl.flock(root_fd, fcntl.LOCK_UN)
    except OSError:
        pass


def try_pruning(root_fd: int) -> bool:
    """The exclusive lock on the root for removing empty directories, at once or not at all.

    Never waits: a delete never queues behind uploads; the empty directories it leaves are
    removed by a later delete in them (a listing never shows them)."""
    try:
        fcntl.flock(root_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def read_small(dir_fd: int, name: str) -> bytes | None:
    """The bytes of a small file, or None if it is absent (or a link)."""
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in NOT_THERE:
            return None
        raise
    with os.fdopen(fd, "rb", buffering=0) as f:
        return f.read(1 << 20)


def pread_all(fd: int, start: int, length: int) -> bytes:
    """``length`` bytes at ``start`` of the open file ``fd`` (fewer at its end), however the reads split."""
    parts, got = [], 0
    while got < length:
        part = os.pread(fd, min(length - got, 1 << 24), start + got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a local file, read a MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def link_new(dir_fd: int, name: str, tmp: str, data: bytes) -> None:
    """Create ``name`` atomically with ``data`` only if it does not exist (FileExistsError otherwise)."""
    write_new(dir_fd, tmp, data, False)
    try:
        os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    finally:
        os.unlink(tmp, dir_fd=dir_fd)


def encode_sidecar(ident: tuple[int, int, int], sha: str, ctype: str, meta: Mapping[str, str]) -> bytes:
    """The sidecar JSON: ``ident`` is the data file's [inode, size, mtime_ns] it describes."""
    doc = {"v": 1, "ident": list(ident), "sha256": sha, "content_type": ctype, "metadata": dict(meta)}
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_sidecar(raw: bytes) -> dict | None:
    """A parsed sidecar, or None if it is not one of ours (treated like no sidecar)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("v") != 1 or not isinstance(doc.get("metadata", {}), dict):
        return None
    return doc


def key_segments(key: str) -> list[str]:
    """The path segments of ``key``, or InvalidRequest if it could escape the root or hit our files."""
    check_key(key)
    if "\\" in key or key.startswith("/") or key.endswith("/"):
        raise InvalidRequest(f"invalid object key {key!r}")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"object key {key!r} is not valid UTF-8") from None
    segs = key.split("/")
    for seg in segs:
        if seg in ("", ".", "..") or _RESERVED.match(seg):
            raise InvalidRequest(f"invalid object key {key!r}: segment {seg!r}")
    return segs


def sidecar_name(base: str) -> str:
    return f".{base}.meta.json"


def is_reserved(name: str) -> bool:
    """True for our sidecars and temp files, which are never objects."""
    return bool(_RESERVED.match(name))


def temp_name(base: str) -> str:
    return f".{base}.tmp-{secrets.token_hex(6)}"


def scan_dir(dir_fd: int, key_prefix: str, name_prefix: str, marker: str = "") -> Iterator[ObjectInfo]:
    """Entries of one directory in key order (a directory ``d`` sorts as ``d/``), those after ``marker`` only.

    A subdirectory wholly before the marker is not opened, and a file is stat'ed only when
    the caller reads that far: a page from the middle of a long listing costs one read of
    each directory on the way down, not a stat of everything before it.
    """
    rows: list[tuple[str, bool]] = []
    # The part of the marker inside this directory: an entry below it (and not its prefix) is skipped unlooked-at.
    after = marker[len(key_prefix):] if marker.startswith(key_prefix) else ""
    with os.scandir(dir_fd) as it:
        for e in it:
            name = e.name
            if not name.startswith(name_prefix) or (name < after and not after.startswith(name)):
                continue
            if name[0] == "." and is_reserved(name):
                continue
            if not name.isascii():
                try:
                    name.encode("utf-8")
                except UnicodeEncodeError:
                    continue  # not a UTF-8 name: no key can address it
            if e.is_dir(follow_symlinks=False):
                rows.append((name + "/", True))
            elif e.is_file(follow_symlinks=False):
                rows.append((name, False))
    rows.sort(key=lambda r: r[0])
    for name, is_dir in rows:
        key = key_prefix + name
        if is_dir:
            inside = marker.startswith(key)
            if marker and not inside and key < marker:
                continue  # every key below it sorts before the marker
            try:
                sub = os.open(name[:-1], DIR_FLAGS, dir_fd=dir_fd)
            except OSError as e:
                if e.errno in NOT_THERE:
                    continue
                raise
            try:
                yield from scan_dir(sub, key, "", marker if inside else "")
            finally:
                os.close(sub)
        elif key > marker:
            try:
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat_mod.S_ISREG(st.st_mode):
                yield ObjectInfo(key, st.st_size, guess_content_type(key), None, None, st.st_mtime, {})


@contextmanager
def open_regular(dir_fd: int, base: str, key: str) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """The regular file ``base`` opened for reading, with its stat; NotFound if absent or not a file."""
    try:
        fd = os.open(base, READ_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in NOT_THERE:
            raise NotFound(f"no object {key!r}") from None
        raise
    with os.fdopen(fd, "rb", buffering=0) as f:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            raise NotFound(f"no object {key!r}")
        yield f, st


def read_file(dir_fd: int, base: str, key: str) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file ``base`` and its stat (of exactly those bytes); NotFound if absent."""
    with open_regular(dir_fd, base, key) as (f, st):
        return f.read(), st


def hash_file(dir_fd: int, base: str, key: str) -> tuple[str, os.stat_result]:
    """Hex SHA-256 of the regular file ``base`` and its stat, read a MiB at a time: an original
    placed by another tool may be gigabytes, which must never be held in memory to be hashed."""
    with open_regular(dir_fd, base, key) as (f, st):
        digest = hashlib.sha256()
        while chunk := f.read(1 << 20):
            digest.update(chunk)
        return digest.hexdigest(), st


def unlink_quietly(dir_fd: int, *names: str) -> None:
    """Remove leftover temp files; one that is already gone is fine."""
    for name in names:
        try:
            os.unlink(name, dir_fd=dir_fd)
        except OSError:
            pass


def close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)

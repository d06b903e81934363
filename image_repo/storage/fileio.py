"""Low-level file helpers shared by FileStore and the disk cache: descriptor-relative, no symlinks."""
from __future__ import annotations

import errno
import json
import os
from typing import Mapping

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_NOT_THERE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)


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


def read_small(dir_fd: int, name: str) -> bytes | None:
    """The bytes of a small file, or None if it is absent (or a link)."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as e:
        if e.errno in _NOT_THERE:
            return None
        raise
    with os.fdopen(fd, "rb", buffering=0) as f:
        return f.read(1 << 20)


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

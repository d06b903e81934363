"""FileStore's reads and writes of objects larger than memory: descriptors, ranges, streams, files, create-if-absent.

A mixin of FileStore (filesystem.py), which gives it the safe path walk (``_open_dirs``),
the error translation (``_errors``) and the atomic install of a written temp file (``_install``).
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat as stat_mod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from ..errors import NotFound
from .base import ObjectInfo, check_metadata, check_range, guess_content_type
from .fileio import (
    NOT_THERE,
    READ_FLAGS,
    close_all,
    file_sha256,
    key_segments,
    link_new,
    pread_all,
    release,
    temp_name,
    unlink_quietly,
)


class FileStreams:
    """Large-object operations over FileStore's primitives."""

    fsync: bool

    def _errors(self, op: str, key: str) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _open_dirs(self, segs: list[str], create: bool) -> list[int]:
        raise NotImplementedError

    def _install(self, d: int, base: str, tmp: str, st: os.stat_result, sha: str, ctype: str,
                 meta: dict[str, str]) -> None:
        raise NotImplementedError

    def open_fd(self, key: str) -> int:
        """A read-only descriptor of the object's file, opened without following any link (the
        caller closes it); NotFound if absent. libvips reads an original through ``/proc/self/fd/N``."""
        segs = key_segments(key)
        with self._errors("read", key):
            try:
                fds = self._open_dirs(segs, create=False)
                try:
                    fd = os.open(segs[-1], READ_FLAGS, dir_fd=fds[-1])
                finally:
                    close_all(fds)
            except OSError as e:
                if e.errno in NOT_THERE:
                    raise NotFound(f"no object {key!r}") from None
                raise
        if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotFound(f"no object {key!r}")
        return fd

    def open_object(self, key: str) -> OpenedFile:
        """The object's file held open, to read ranges of with no path walk each time; NotFound if absent."""
        return OpenedFile(self, key, os.fdopen(self.open_fd(key), "rb", buffering=0))

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes at ``start`` by pread (fewer at the file's end); NotFound if absent."""
        check_range(start, length)
        fd = self.open_fd(key)
        try:
            with self._errors("read", key):
                return pread_all(fd, start, length)
        finally:
            os.close(fd)

    def iter_get(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The file's bytes a chunk at a time; NotFound if absent."""
        fd = self.open_fd(key)
        with os.fdopen(fd, "rb", buffering=0) as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def put_stream(
        self, key: str, chunks: Iterable[bytes], content_type: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> ObjectInfo:
        """put() of a body too large for memory: written as ``chunks`` come, hashed on the way; atomic like put()."""
        segs, base = key_segments(key), key_segments(key)[-1]
        meta, ctype = check_metadata(metadata), content_type or guess_content_type(key)
        digest = hashlib.sha256()
        with self._errors("write", key):
            fds = self._open_dirs(segs, create=True)
            d, tmp = fds[-1], temp_name(base)
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=d)
                release(fds[0])  # the temp file keeps the directory: deletes may prune while this streams
                with os.fdopen(fd, "wb") as f:
                    for chunk in chunks:
                        digest.update(chunk)
                        f.write(chunk)
                    f.flush()
                    if self.fsync:
                        os.fsync(f.fileno())
                    st = os.fstat(f.fileno())
            except BaseException:
                unlink_quietly(d, tmp)
                close_all(fds)
                raise
            try:
                self._install(d, base, tmp, st, digest.hexdigest(), ctype, meta)
            finally:
                close_all(fds)
        return ObjectInfo(key, st.st_size, ctype, digest.hexdigest(), None, st.st_mtime, meta)

    def put_file(self, key: str, path: str, content_type: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> ObjectInfo:
        """Move the local file ``path`` into place (a rename on the same file system, else a
        streamed copy and the file removed); hashed on the way, atomic like put()."""
        segs, base = key_segments(key), key_segments(key)[-1]
        meta, ctype = check_metadata(metadata), content_type or guess_content_type(key)
        sha = file_sha256(path)
        with self._errors("write", key):
            fds = self._open_dirs(segs, create=True)
            d, tmp = fds[-1], temp_name(base)
            try:
                try:
                    os.rename(path, tmp, dst_dir_fd=d)
                    release(fds[0])
                except OSError as e:
                    if e.errno != errno.EXDEV:
                        raise
                    moved = False
                else:
                    moved = True
                    if self.fsync:
                        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=d)
                        try:
                            os.fsync(fd)
                        finally:
                            os.close(fd)
                    st = os.stat(tmp, dir_fd=d, follow_symlinks=False)
                    self._install(d, base, tmp, st, sha, ctype, meta)
            finally:
                close_all(fds)
            if not moved:  # another file system: copy, then remove the caller's file as a move would
                with open(path, "rb") as f:
                    info = self.put_stream(key, iter(lambda: f.read(1 << 20), b""), ctype, meta)
                os.unlink(path)
                return info
        return ObjectInfo(key, st.st_size, ctype, sha, None, st.st_mtime, meta)

    def create(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """Store ``data`` only if no file is at ``key`` (a hard link of a written temp file, which
        fails when the name exists); False if one was."""
        segs = key_segments(key)
        with self._errors("write", key):
            fds = self._open_dirs(segs, create=True)
            try:
                link_new(fds[-1], segs[-1], temp_name(segs[-1]), data)
            except FileExistsError:
                return False
            finally:
                close_all(fds)
        return True



class OpenedFile:
    """``get_range`` of one object through its file, opened once: the file as it was when opened.

    For objects that never change in place (a pyramid is written once, under its original's
    version): a pread of an open file skips the walk of each directory of the key, most of
    what a stored tile costs to read. The file closes when the last holder lets go of this
    object, never under a reader that still uses it. A holder asks ``removed()`` now and then,
    so that a deleted object's disk space is not kept.
    """

    def __init__(self, store: FileStreams, key: str, file: Any) -> None:
        self.store = store
        self.key = key
        self._file = file

    def removed(self) -> bool:
        """Whether the file was deleted (or replaced) since it was opened."""
        try:
            return os.fstat(self._file.fileno()).st_nlink == 0
        except OSError:
            return True

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if key != self.key:
            return self.store.get_range(key, start, length)
        check_range(start, length)
        with self.store._errors("read", key):
            return pread_all(self._file.fileno(), start, length)

    def get_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        return [self.get_range(key, start, length) for start, length in ranges]

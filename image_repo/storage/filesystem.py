"""FileStore: an ObjectStore in a local directory, one plain file per object.

Layout: the object ``k`` is the file ``<root>/<k>`` byte for byte, so a directory of images
written by any other tool is servable as it stands. Beside it, ``<dir>/.<basename>.meta.json``
holds what the file cannot: content type, SHA-256, custom metadata (sidecars.py says when
it is trusted).

Temp files are ``<dir>/.<basename>.tmp-<12 hex>``. A delete removes the parents it leaves empty,
never while a writer is between entering a directory and putting its temp file there (a lock
on the root, fileio.hold_for_writing). Names of those two shapes are reserved:
never listed, never accepted as a key segment. Every path is resolved segment by segment from
a directory descriptor with O_NOFOLLOW, so no key and no planted symlink leads outside the root.

``list()`` reads directory entries only: its ObjectInfo has ``sha256=None``, the content type
guessed from the extension and no metadata; ``stat()`` is authoritative.
"""
from __future__ import annotations

import errno
import os
import stat as stat_mod
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager

from ..errors import ConfigError, Conflict, InvalidRequest, NotFound, StorageUnavailable
from ..metrics.figures import store_error
from .base import ObjectInfo, check_metadata, guess_content_type, sha256_hex
from .fileio import (
    DIR_FLAGS,
    NOT_THERE,
    close_all,
    encode_sidecar,
    hold_for_writing,
    is_reserved,
    key_segments,
    read_file,
    scan_dir,
    sidecar_name,
    temp_name,
    try_pruning,
    unlink_quietly,
    write_new,
)
from .filestreams import FileStreams
from .sidecars import Sidecars


PROBE_PAST_BYTES = 64 * 1024
"""A directory larger than this (its ``st_size``: ~1,400 entries on ext4) is asked for names
one by one rather than read whole: ~2 us a name against ~0.4 us an entry read."""


class FileStore(FileStreams):
    """Objects as plain files under ``root``; sidecar metadata; atomic, symlink-proof writes."""

    create_is_atomic = True

    local = True
    """On this host's disk: as cheap to write as a disk cache, shared by this host's workers."""

    def __init__(self, root: str, *, fsync: bool = True) -> None:
        self.root = os.path.realpath(os.path.abspath(root))
        self.url = "file://" + self.root
        self.fsync = fsync
        self._sidecars = Sidecars()
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as e:
            raise StorageUnavailable(f"file store {self.root}: cannot create the directory: {e.strerror}") from None

    @classmethod
    def from_url(cls, url: str, settings: object = None) -> FileStore:
        """``file:///abs/path``, ``file://localhost/abs``, ``file:relative/path`` or a bare path."""
        if url.startswith("file://localhost/"):
            path = url[len("file://localhost"):]
        elif url.startswith("file://"):
            path = url[len("file://"):]  # file:///abs -> /abs; file://rel/dir -> rel/dir
        elif url.startswith("file:"):
            path = url[len("file:"):]
        else:
            path = url
        if not path:
            raise ConfigError(f"store URL {url!r}: no directory given")
        return cls(path)

    # -- paths ---------------------------------------------------------------------------

    @contextmanager
    def _errors(self, op: str, key: str) -> Iterator[None]:
        """Translate OSError into our errors, with a message instead of a traceback."""
        try:
            yield
        except OSError as e:
            if e.errno == errno.ENAMETOOLONG:
                raise InvalidRequest(f"object key {key!r}: a segment is too long for the file store") from None
            store_error("file")
            raise StorageUnavailable(f"file store: cannot {op} {key!r}: {e.strerror or e}") from None

    def _open_root(self, create: bool) -> int:
        try:
            return os.open(self.root, DIR_FLAGS & ~os.O_NOFOLLOW)
        except FileNotFoundError:
            if not create:
                raise
            os.makedirs(self.root, exist_ok=True)
            return os.open(self.root, DIR_FLAGS & ~os.O_NOFOLLOW)

    def _open_dirs(self, segs: list[str], create: bool) -> list[int]:
        """Descriptors of the root and each parent directory of ``segs[-1]``, never through a symlink."""
        fds = [self._open_root(create)]
        if create:
            hold_for_writing(fds[0])  # released by the caller once its temp file is in place, or at close
        try:
            for seg in segs[:-1]:
                try:
                    fds.append(os.open(seg, DIR_FLAGS, dir_fd=fds[-1]))
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(seg, 0o755, dir_fd=fds[-1])
                    except FileExistsError:
                        pass
                    fds.append(os.open(seg, DIR_FLAGS, dir_fd=fds[-1]))
        except BaseException:
            close_all(fds)
            raise
        return fds

    def _existing_dirs(self, segs: list[str]) -> list[int] | None:
        """Like ``_open_dirs`` without creating anything; None when a parent is not there."""
        try:
            return self._open_dirs(segs, create=False)
        except OSError as e:
            if e.errno in NOT_THERE:
                return None
            raise

    # -- reads ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        """The file's bytes; NotFound if absent."""
        return self.get_with_info(key)[0]

    def get_with_info(self, key: str) -> tuple[bytes, ObjectInfo]:
        """Bytes and the info of exactly those bytes (one open file)."""
        segs = key_segments(key)
        with self._errors("read", key):
            fds = self._existing_dirs(segs)
            if fds is None:
                raise NotFound(f"no object {key!r}")
            try:
                data, st = read_file(fds[-1], segs[-1], key)
                return data, self._sidecars.info(fds[-1], segs[-1], key, st, data)
            finally:
                close_all(fds)

    def stat(self, key: str) -> ObjectInfo | None:
        """Info from one lstat and the (in-process cached) sidecar; None if absent."""
        segs = key_segments(key)
        with self._errors("stat", key):
            fds = self._existing_dirs(segs)
            if fds is None:
                return None
            try:
                return self._stat_in(fds[-1], segs[-1], key)
            finally:
                close_all(fds)

    def stat_first(self, keys: Iterable[str]) -> ObjectInfo | None:
        """Info of the first of ``keys`` that exists: a few stats in one directory, where a listing
        would read the whole directory (finding an original among its possible extensions)."""
        parent: list[str] | None = None
        fds: list[int] | None = None
        try:
            for key in keys:
                try:
                    segs = key_segments(key)
                except InvalidRequest:
                    continue  # a key this store cannot hold is not there
                with self._errors("stat", key):
                    if segs[:-1] != parent:  # open each directory once, however many keys it holds
                        if fds is not None:
                            close_all(fds)
                        parent, fds = segs[:-1], self._existing_dirs(segs)
                    info = self._stat_in(fds[-1], segs[-1], key) if fds is not None else None
                if info is not None:
                    return info
        finally:
            if fds is not None:
                close_all(fds)
        return None

    def list_exact(self, prefix: str, endings: Collection[str]) -> list[ObjectInfo]:
        """What ``list(prefix)`` gives of the keys ``prefix + e`` (``e`` in ``endings``), in key order.

        The forms one image's original can have (every extension, in any case: a few hundred
        names) are found without reading a large directory whole: an upload among 100,000
        images listed theirs in ~50 ms, three times over. A small directory is read, as
        ``list`` does, which costs less than asking for every name.
        """
        with self._listed_dir(prefix) as opened:
            if opened is None:
                return []
            dir_fd, key_prefix, name_prefix = opened
            bases = {name_prefix + e for e in endings}
            if os.fstat(dir_fd).st_size <= PROBE_PAST_BYTES:
                return [info for info in scan_dir(dir_fd, key_prefix, name_prefix) if info.key[len(key_prefix):] in bases]
            found = []
            for base in sorted(bases):
                if "/" in base or "\0" in base or is_reserved(base):
                    continue
                try:
                    st = os.stat(base, dir_fd=dir_fd, follow_symlinks=False)
                except OSError as e:
                    if e.errno in NOT_THERE or e.errno == errno.ENAMETOOLONG:
                        continue
                    raise
                if stat_mod.S_ISREG(st.st_mode):
                    key = key_prefix + base
                    found.append(ObjectInfo(key, st.st_size, guess_content_type(key), None, None, st.st_mtime, {}))
            return found

    def _stat_in(self, dir_fd: int, base: str, key: str) -> ObjectInfo | None:
        """Info of the regular file ``base`` in the open directory ``dir_fd``; None if there is none."""
        try:
            st = os.stat(base, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as e:
            if e.errno in NOT_THERE:
                return None
            raise
        if not stat_mod.S_ISREG(st.st_mode):
            return None
        try:
            return self._sidecars.info(dir_fd, base, key, st, None)
        except NotFound:
            return None  # deleted while we looked

    # -- writes --------------------------------------------------------------------------

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Write data and sidecar atomically (temp file, fsync, rename); last writer wins."""
        segs = key_segments(key)
        meta = check_metadata(metadata)
        ctype = content_type or guess_content_type(key)
        sha = sha256_hex(data)
        base = segs[-1]
        with self._errors("write", key):
            try:
                fds = self._open_dirs(segs, create=True)
            except OSError as e:
                if e.errno in (errno.ENOTDIR, errno.ELOOP, errno.EEXIST):
                    raise Conflict(f"cannot store {key!r}: a parent is a file or a link") from None
                raise
            try:
                st = self._write_pair(fds[-1], base, key, data, sha, ctype, meta)
            finally:
                close_all(fds)
        return ObjectInfo(key, len(data), ctype, sha, None, st.st_mtime, meta)

    def _write_pair(
        self, d: int, base: str, key: str, data: bytes, sha: str, ctype: str, meta: dict[str, str]
    ) -> os.stat_result:
        try:
            if stat_mod.S_ISDIR(os.stat(base, dir_fd=d, follow_symlinks=False).st_mode):
                raise Conflict(f"cannot store {key!r}: it is a directory of other objects")
        except FileNotFoundError:
            pass
        tmp = temp_name(base)
        try:
            st = write_new(d, tmp, data, self.fsync)
        except BaseException:
            unlink_quietly(d, tmp)
            raise
        self._install(d, base, tmp, st, sha, ctype, meta)
        return st

    def _install(
        self, d: int, base: str, tmp: str, st: os.stat_result, sha: str, ctype: str, meta: dict[str, str]
    ) -> None:
        """Rename the written temp file ``tmp`` into place as ``base``, with its sidecar; all or nothing."""
        stmp = temp_name(base)
        try:
            # Sidecar first: it names the new file's inode, so until the rename below
            # readers see it as stale for the old file and recompute, never mislabel.
            ident = (st.st_ino, st.st_size, st.st_mtime_ns)
            write_new(d, stmp, encode_sidecar(ident, sha, ctype, meta), self.fsync)
            os.replace(stmp, sidecar_name(base), src_dir_fd=d, dst_dir_fd=d)
            os.replace(tmp, base, src_dir_fd=d, dst_dir_fd=d)
        except BaseException:
            unlink_quietly(d, tmp, stmp)
            raise
        if self.fsync:
            os.fsync(d)

    def delete(self, key: str) -> None:
        """Remove the file and its sidecar, then prune empty parents up to the root."""
        segs = key_segments(key)
        with self._errors("delete", key):
            fds = self._existing_dirs(segs)
            if fds is None:
                raise NotFound(f"no object {key!r}")
            try:
                try:
                    st = os.stat(segs[-1], dir_fd=fds[-1], follow_symlinks=False)
                    if not stat_mod.S_ISREG(st.st_mode):
                        raise NotFound(f"no object {key!r}")
                    os.unlink(segs[-1], dir_fd=fds[-1])
                except OSError as e:
                    if e.errno in NOT_THERE:
                        raise NotFound(f"no object {key!r}") from None
                    raise
                try:
                    os.unlink(sidecar_name(segs[-1]), dir_fd=fds[-1])
                except FileNotFoundError:
                    pass
                if try_pruning(fds[0]):  # no writer is between entering a directory and filling it
                    for i in range(len(fds) - 1, 0, -1):
                        try:
                            os.rmdir(segs[i - 1], dir_fd=fds[i - 1])
                        except OSError:
                            break  # not empty: stop pruning
            finally:
                close_all(fds)

    # -- listing -------------------------------------------------------------------------

    def list(self, prefix: str = "", marker: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` after ``marker`` in key order, scanning only the subtree the prefix implies."""
        with self._listed_dir(prefix) as opened:
            if opened is not None:
                yield from scan_dir(*opened, marker)

    @contextmanager
    def _listed_dir(self, prefix: str) -> Iterator[tuple[int, str, str] | None]:
        """The directory a listing of ``prefix`` reads, open: (its descriptor, the key prefix of
        its entries, the start their names must have); None when there is no such directory."""
        dir_part, slash, name_prefix = prefix.rpartition("/")
        segs = dir_part.split("/") if slash else []
        if any(s in ("", ".", "..") or "\\" in s or "\0" in s or is_reserved(s) for s in segs):
            yield None
            return
        with self._errors("list", prefix):
            fds = self._existing_dirs(segs + [""])
            if fds is None:
                yield None
                return
            try:
                yield fds[-1], dir_part + slash, name_prefix
            finally:
                close_all(fds)

    def close(self) -> None:
        """Forget cached sidecars."""
        self._sidecars.clear()

    def __repr__(self) -> str:
        return f"FileStore({self.root!r})"

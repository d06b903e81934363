"""Writes through this host, seen by every worker at once: a counter in a shared file.

Each worker remembers what it learned of an original for ``original_stat_ttl`` seconds, so
a cache hit costs no store round trip. A write (upload, replace, delete, import) through
any worker of this host changes the 8 bytes of ``<dir>/.writes``, which every worker has
mapped into memory (one page, shared through the page cache: reading it is not a system
call). A worker that sees them change forgets everything it remembered of originals, so
read-after-write holds across the workers of one host; writes through other servers are
seen within ``original_stat_ttl``.
"""
from __future__ import annotations

import logging
import mmap
import os

log = logging.getLogger("image_repo.service")

SIZE = 8


class HostWrites:
    """The write counter of the workers sharing ``directory`` (process-local when it cannot be mapped)."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, ".writes")
        self._map: mmap.mmap | bytearray
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                if os.fstat(fd).st_size < SIZE:
                    os.ftruncate(fd, SIZE)  # zero-filled; racing workers agree on that
                self._map = mmap.mmap(fd, SIZE)
            finally:
                os.close(fd)
        except (OSError, ValueError) as e:
            log.warning("write counter %s unavailable (%s): other workers of this host see writes through this one "
                        "only after original_stat_ttl", self.path, getattr(e, "strerror", None) or e)
            self._map = bytearray(SIZE)
        self.shared = isinstance(self._map, mmap.mmap)

    def value(self) -> bytes:
        """The current mark; it differs from any earlier one after a write anywhere on the host."""
        return bytes(self._map[:SIZE])

    def bump(self) -> None:
        """Tell every worker that an original changed. A new random mark, not an increment:
        no read-modify-write to race, and a torn read only costs a spurious forget."""
        self._map[:SIZE] = os.urandom(SIZE)

"""Handing the memory of large decodes back to the system when too much of it sits free.

Pillow keeps a decoded image in 16 MB blocks. After glibc's malloc frees its first block of
that size, it raises its mmap threshold above it. From then on such blocks come from the
heap, one per thread that decoded, and the heap does not shrink when they are freed. A
worker that decoded 12 MP PNGs on a few threads kept ~480 MB resident (bench: 'cold 12 MP
PNG'), though no image outlived its request.

Trimming after every large decode would bring that to tens of MB but costs ~10% of a 12 MP
PNG derivation: the next decode faults the same 75 MB of pages in again. So the heap may
keep KEEP_FREE_BYTES free for the next decode to reuse, and is trimmed when it holds more.
"""
from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

LARGE_DECODE_PIXELS = 4_000_000
"""Decodes this large (16 MB of RGBA: a Pillow block) or larger are followed by a look at the heap."""
KEEP_FREE_BYTES = 256 * 2**20
"""Freed heap a worker keeps for reuse: a 12 MP decode and its source (75 MB) on each of three threads."""


class _MallInfo2(ctypes.Structure):
    _fields_ = [(field, ctypes.c_size_t) for field in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


@functools.cache
def _glibc() -> tuple[Callable[[], _MallInfo2], Callable[[int], int]] | None:
    """glibc's mallinfo2 and malloc_trim, or None where the C library lacks them (musl, macOS, glibc < 2.33)."""
    try:
        libc = ctypes.CDLL(None)
        info, trim = libc.mallinfo2, libc.malloc_trim
    except (AttributeError, OSError):
        log.debug("no mallinfo2/malloc_trim in this C library: freed heap is not given back")
        return None
    info.argtypes, info.restype = [], _MallInfo2
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return info, trim


def free_heap_bytes() -> int | None:
    """Bytes malloc holds free over all its arenas (None without glibc)."""
    glibc = _glibc()
    return None if glibc is None else glibc[0]().fordblks


def release_after_decode(pixels: int, keep_free: int | None = None) -> bool:
    """After a decode of ``pixels``: give the freed heap back if it holds more than ``keep_free``
    (KEEP_FREE_BYTES) free.

    True when it trimmed. Only large decodes look: reading the heap's totals walks its free
    lists (~0.1 ms), 0.4% of a 12 MP JPEG derivation, and small decodes free little. Call it
    once the decoded images and the source bytes are gone.
    """
    if pixels < LARGE_DECODE_PIXELS:
        return False
    glibc = _glibc()
    if glibc is None:
        return False
    info, trim = glibc
    if info().fordblks <= (KEEP_FREE_BYTES if keep_free is None else keep_free):
        return False
    trim(0)
    return True

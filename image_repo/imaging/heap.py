"""Handing the memory of large decodes back to the system when too much of it sits free.

Pillow keeps a decoded image in 16 MB blocks. After glibc's malloc frees its first block of
that size, it raises its mmap threshold above it. From then on such blocks come from the
heap, one per thread that decoded, and the heap does not shrink when they are freed. A
worker that decoded 12 MP PNGs on a few threads kept ~480 MB resident (bench: 'cold 12 MP
PNG'), though no image outlived its request.

Trimming after every large decode would bring that to tens of MB but costs ~10% of a 12 MP
PNG derivation: the next decode faults the same 75 MB of pages in again. So the heap may
keep KEEP_FREE_BYTES free for the next decode to reuse, and is trimmed when it holds more.

Small decodes free memory too, in every thread's arena, and a worker serving many of them
crept up by ~40 MB over half an hour of mixed load (bench/soak.py) while never reaching that
mark. So at most every SETTLE_SECONDS, after any decode, a heap holding more than
SETTLE_FREE_BYTES free is trimmed as well: a look costs ~0.1 ms and the pages faulted in
again after a trim are at most that much, a few ms every half a minute.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

LARGE_DECODE_PIXELS = 4_000_000
"""Decodes this large (16 MB of RGBA: a Pillow block) or larger are followed by a look at the heap."""
KEEP_FREE_BYTES = 256 * 2**20
"""Freed heap a worker keeps for reuse: a 12 MP decode and its source (75 MB) on each of three threads."""
SETTLE_SECONDS = 30.0
"""How often, at most, any decode is followed by a look at the heap."""
SETTLE_FREE_BYTES = 32 * 2**20
"""Freed heap a worker keeps across those looks."""

_last_settle = [time.monotonic()]
_settle_lock = threading.Lock()


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

    True when it trimmed. Only large decodes look each time: reading the heap's totals walks
    its free lists (~0.1 ms), 0.4% of a 12 MP JPEG derivation, and a small decode frees little;
    every decode may settle() the heap. Call it once the decoded images and the source bytes are gone.
    """
    if pixels >= LARGE_DECODE_PIXELS and _trim_past(KEEP_FREE_BYTES if keep_free is None else keep_free):
        return True
    return settle()


def settle(now: float | None = None) -> bool:
    """After any decode: at most every SETTLE_SECONDS, give the freed heap back past SETTLE_FREE_BYTES.

    True when it trimmed.
    """
    now = time.monotonic() if now is None else now
    with _settle_lock:
        if now - _last_settle[0] < SETTLE_SECONDS:
            return False
        _last_settle[0] = now
    return _trim_past(SETTLE_FREE_BYTES)


def _trim_past(keep_free: int) -> bool:
    glibc = _glibc()
    if glibc is None:
        return False
    info, trim = glibc
    if info().fordblks <= keep_free:
        return False
    trim(0)
    return True

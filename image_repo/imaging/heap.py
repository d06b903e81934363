"""Handing the memory of a large decode back to the system once the request is done with it.

Pillow keeps a decoded image in 16 MB blocks. After glibc's malloc frees its first block of
that size, it raises its mmap threshold above it. From then on such blocks come from the
heap, and the heap does not shrink when they are freed. A worker that decoded a few
12 MP PNGs kept ~480 MB resident (bench: 'cold 12 MP PNG'), though no image outlived
its request. ``malloc_trim(0)`` after such a decode brings that back to a few tens of MB,
at a cost far below the decode's.

Small decodes are left alone. A JPEG decoded at a DCT scale is under a megapixel. Trimming
after it would only make the next request fault the same pages in again.
"""
from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

TRIM_FROM_PIXELS = 4_000_000
"""Trim after a decoded frame of this many pixels or more: one Pillow block (16 MB) of RGBA."""


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        log.debug("no malloc_trim in this C library; large decodes keep their heap")
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_after_decode(pixels: int) -> bool:
    """Give freed heap back to the system if a frame of ``pixels`` was just decoded (and freed).

    True when it trimmed. Call it once the decoded images and the source bytes are gone.
    """
    if pixels < TRIM_FROM_PIXELS:
        return False
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True

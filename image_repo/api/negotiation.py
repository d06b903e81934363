"""Format negotiation (``format_negotiation``): AVIF or WebP for a request whose ``Accept`` prefers them.

Only for a request that names no kind (no ``kind=``, no extension on the path); its answer
then carries ``Vary: Accept``, whatever kind it got. As imgproxy and thumbor's AUTO_AVIF do, a
modern kind counts only when ``Accept`` names it: ``image/*`` or ``*/*`` alone keep the
default, so a client that never heard of AVIF never gets one. A kind is chosen when its
quality is above zero and at least that of the default kind (wildcards count for the
default); between AVIF and WebP the higher quality wins, AVIF on a tie (browsers that take
AVIF list both at q=1). A malformed ``Accept`` is read for what it holds, or ignored: never an error.
Used by api/images.py and the fast path alike, so both choose the same.
"""
from __future__ import annotations

import functools

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from ..imaging.formats import KINDS

CANDIDATES = ("avif", "webp")
"""The kinds negotiation may choose instead of the default, in order of preference."""


@functools.lru_cache(maxsize=512)
def negotiated_kind(accept: str | None, default: str) -> str:
    """The kind to answer a request with ``Accept: accept`` that names no kind (``default`` else).

    Cached: browsers send a handful of distinct ``Accept`` values.
    """
    if not accept:
        return default
    try:
        parsed = parse_accept_header(accept, MIMEAccept)
        best, best_q = default, parsed.quality(KINDS[default].content_type)
        for kind in CANDIDATES:
            if kind == default:
                continue
            mime = KINDS[kind].content_type
            q = max((quality for value, quality in parsed if value.strip().lower() == mime), default=0.0)
            if q > 0 and q >= best_q and (best == default or q > best_q):
                best, best_q = kind, q
        return best
    except (ValueError, TypeError, IndexError):
        return default

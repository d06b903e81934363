"""Byte ranges of image answers, with Werkzeug's conditional responses.

One range of bytes (``Range: bytes=0-1023``, ``bytes=-500``, ``bytes=1000-``) is answered 206
with ``Content-Range``, unless an ``If-Range`` names another version (then the whole image,
200). One that starts beyond the end is a 416 saying so. Every other ``Range`` (several
ranges, another unit, a malformed one) is ignored and the whole image sent, as RFC 9110
allows (Werkzeug would answer 416, which a client cannot act on). Every image answer says
``Accept-Ranges: bytes``.
"""
from __future__ import annotations

from flask import Response, request
from werkzeug.http import parse_range_header

from ..errors import RangeNotSatisfiable


def ranged(response: Response, length: int) -> Response:
    """``response`` (a whole answer of ``length`` bytes, its ETag set) cut to the request's range."""
    environ = request.environ
    header = environ.get("HTTP_RANGE")
    if header is not None:
        parsed = parse_range_header(header)
        if_range = environ.get("HTTP_IF_RANGE")
        # If-Range compares strongly (the exact ETag); a date never matches: there is no Last-Modified.
        stale = if_range is not None and if_range.strip() != response.headers.get("ETag")
        if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1 or stale:
            environ = {key: value for key, value in environ.items() if key not in ("HTTP_RANGE", "HTTP_IF_RANGE")}
        elif parsed.range_for_length(length) is None and length:
            raise RangeNotSatisfiable(f"Range: {header.strip()!r} starts beyond the end of these {length} bytes",
                                      length=length)
    had_date = "Date" in response.headers
    response.make_conditional(environ, accept_ranges=True, complete_length=length)
    if not had_date:
        del response.headers["Date"]  # the server sends its own; Werkzeug's would make two
    return response

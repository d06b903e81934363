"""Request bodies arrive whole or not at all: a short, broken or stalled body is a 400, never an upload.

Gunicorn marks its input stream as terminated (``wsgi.input_terminated``), so Werkzeug reads
it as "at most Content-Length bytes" and takes a body cut short by a disconnecting client
as a complete one. An image truncated after its last scan, or a multipart body that ends
before its final boundary, could then be stored as though it had been sent whole. A broken
chunked encoding surfaces as Gunicorn's own ``ParseException`` (not an ``OSError``), which
Werkzeug does not expect and which would otherwise become a 500.
"""
from __future__ import annotations

import socket
from typing import IO, Any

from flask import Response, after_this_request, request

# Gunicorn's parse errors for a broken chunked body (gunicorn is a dependency).
from gunicorn.http.errors import ParseException as _ServerParseError

from ..errors import InvalidRequest, PayloadTooLarge

BODY_TIMEOUT = 30.0
"""Seconds a client may leave a request body stalled before its thread is given back.

Without it a client that sends a Content-Length and then nothing holds a worker thread
(gthread sockets block with no timeout) for as long as it keeps the connection open. The
same as Gunicorn's worker timeout: no legitimate client pauses mid-body that long.
"""

_READ_ERRORS = (OSError, ValueError, _ServerParseError)


class IncompleteBody(InvalidRequest):
    """The request body ended early or could not be read: nothing of it is kept."""

    default_message = "the request body ended before it was complete; nothing was stored"


class WholeBody:
    """``wsgi.input`` that raises ``IncompleteBody`` rather than ending short of ``expected`` bytes."""

    def __init__(self, stream: IO[bytes], expected: int | None) -> None:
        self._stream = stream
        self._expected = expected
        self._got = 0

    def read(self, size: int | None = -1) -> bytes:
        want = -1 if size is None else size
        try:
            data = self._stream.read(want)
        except _READ_ERRORS as exc:
            raise IncompleteBody(f"the request body could not be read ({type(exc).__name__}); nothing was stored") from None
        self._got += len(data)
        if self._expected is not None and self._got < self._expected and (not data or want < 0):
            raise IncompleteBody(
                f"the request body ended after {self._got} of {self._expected} bytes; nothing was stored"
            )
        return data

    def readline(self, size: int | None = -1) -> bytes:
        # Werkzeug reads bodies with read(); a line-reading caller gets the same guarantee.
        return self.read(size)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard_body(max_upload_bytes: int) -> None:
    """Before a write: refuse a declared body over the limit unread; bound and check the rest."""
    length = request.content_length
    if request.method == "PUT" and length is not None and length > max_upload_bytes:
        raise PayloadTooLarge(f"body: {length} bytes is larger than max_upload_bytes ({max_upload_bytes})")
    environ = request.environ
    environ["wsgi.input"] = WholeBody(environ["wsgi.input"], length)
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        previous = sock.gettimeout()
        sock.settimeout(BODY_TIMEOUT)

        @after_this_request
        def restore(response: Response) -> Response:
            # The answer itself (maybe a slow reader's) is not bound by the body's timeout.
            try:
                sock.settimeout(previous)
            except OSError:
                pass
            return response

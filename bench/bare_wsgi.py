"""The bare WSGI reference: the same cached bytes, no framework, no lookups.

Run under the same Gunicorn settings as image_repo; its req/s is what "serving bytes from
memory" costs in WSGI + Gunicorn on this machine, the ceiling a cache hit can approach.
The body and headers come from files/variables the benchmark writes before starting it.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable

with open(os.environ["BENCH_BODY_FILE"], "rb") as _fh:
    _BODY = _fh.read()
_HEADERS = [
    ("Content-Type", os.environ.get("BENCH_CONTENT_TYPE", "image/jpeg")),
    ("Content-Length", str(len(_BODY))),
    ("ETag", os.environ.get("BENCH_ETAG", '"bench"')),
    ("Cache-Control", "public, max-age=3600"),
]


def app(environ: dict, start_response: Callable[..., object]) -> Iterable[bytes]:
    start_response("200 OK", _HEADERS)
    return [_BODY]

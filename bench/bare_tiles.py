"""The bare WSGI reference of the tile benchmark: the same tile bytes, no framework, no lookups.

``GET /tile/<level>/<column>/<row>`` answers the bytes the benchmark extracted from the
pyramid beforehand (``BENCH_TILES_DIR``, one file per tile): what serving stored tiles from
memory costs in WSGI + Gunicorn on this machine, the ceiling a passed-through tile can approach.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable

_TILES: dict[str, bytes] = {}
for _name in os.listdir(os.environ["BENCH_TILES_DIR"]):
    with open(os.path.join(os.environ["BENCH_TILES_DIR"], _name), "rb") as _fh:
        _TILES["/tile/" + _name.replace("_", "/")] = _fh.read()


def app(environ: dict, start_response: Callable[..., object]) -> Iterable[bytes]:
    body = _TILES.get(environ.get("PATH_INFO", ""))
    if body is None:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Type", "image/jpeg"), ("Content-Length", str(len(body))),
                              ("Cache-Control", "public, max-age=3600"), ("Access-Control-Allow-Origin", "*")])
    return [body]

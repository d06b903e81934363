"""The browse page's static files under content-hashed names, hashed when the server starts.

Why at start-up and not in a build step: the files are few and small (our scripts and
styles, plus OpenSeadragon's one minified file, ~0.4 MB), so reading and hashing them takes
about a millisecond per process (gzip happens on a file's first request). There is no
manifest to regenerate and none that can go stale against the files it names, and a source
checkout and an installed wheel behave alike. A hashed name is served with a year-long
``immutable`` Cache-Control: a changed file gets a new name, so a browser never keeps an
old one. Any other name under the prefix is a 404.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
VENDOR_DIR = HERE / "vendor"
"""Filled by ``npm ci`` (package.json's postinstall copies OpenSeadragon here); absent without node."""
OPENSEADRAGON = "vendor/openseadragon.min.js"
PREFIX = "/_ui/"
IMMUTABLE = "public, max-age=31536000, immutable"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    """One file as it is served."""

    url: str
    data: bytes
    content_type: str
    etag: str
    compressible: bool
    """Text of some size: worth sending gzipped (made on first request, then kept)."""


class Assets:
    """Every file of ``static`` (as ``app.js``...) and ``vendor`` (as ``vendor/...``), by logical and by hashed name."""

    def __init__(self, static: Path = STATIC_DIR, vendor: Path = VENDOR_DIR) -> None:
        self.by_name: dict[str, Asset] = {}
        self.by_url: dict[str, Asset] = {}
        self._gzipped: dict[str, bytes] = {}
        for root, logical_prefix in ((static, ""), (vendor, "vendor/")):
            if not root.is_dir():
                continue
            for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
                self._add(logical_prefix + path.relative_to(root).as_posix(), path.read_bytes())

    def _add(self, logical: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()[:16]
        stem, dot, ext = logical.rpartition(".")
        hashed = f"{stem}.{digest}.{ext}" if dot else f"{logical}.{digest}"
        suffix = "." + ext if dot else ""
        content_type = _TYPES.get(suffix) or mimetypes.guess_type(logical)[0] or "application/octet-stream"
        compressible = content_type.startswith(("text/", "image/svg")) and len(data) > 1024
        asset = Asset(PREFIX + hashed, data, content_type, digest, compressible)
        self.by_name[logical] = asset
        self.by_url[asset.url] = asset

    def url(self, logical: str) -> str:
        """The hashed URL of ``logical`` (``KeyError`` for a file that is not there: a bug, not a request)."""
        return self.by_name[logical].url

    def has(self, logical: str) -> bool:
        return logical in self.by_name

    def gzipped(self, asset: Asset) -> bytes | None:
        """``asset`` gzipped, or None when it is not worth it (two threads may both make it once: harmless)."""
        if not asset.compressible:
            return None
        found = self._gzipped.get(asset.url)
        if found is None:
            found = self._gzipped[asset.url] = gzip.compress(asset.data, compresslevel=9, mtime=0)
        return found


@functools.lru_cache(maxsize=4)
def load(static: Path = STATIC_DIR, vendor: Path = VENDOR_DIR) -> Assets:
    """The assets of ``static`` and ``vendor``, read once per process (every app made in it shares them)."""
    return Assets(static, vendor)

"""The server's own signed URLs (for stores without temporary URLs, such as file://).

Like a Swift TempURL: HMAC-SHA256 with ``url_key`` over ``METHOD\\nEXPIRES\\nPATH``, so a
signature cannot be moved to another object, another method or a later expiry.
"""
from __future__ import annotations

import hashlib
import hmac
import time

from ..errors import Forbidden


def sign(key: str, method: str, path: str, expires: int) -> str:
    message = f"{method.upper()}\n{expires}\n{path}".encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(key: str, method: str, path: str, expires: str | None, signature: str | None, now: float | None = None) -> None:
    """Raise ``Forbidden`` unless ``signature`` is valid for this method, path and a future expiry."""
    if not expires or not signature or not expires.isascii() or not expires.isdigit():
        raise Forbidden("signed URL: missing or malformed temp_url_sig / temp_url_expires")
    expected = sign(key, method, path, int(expires))
    if not hmac.compare_digest(expected, signature.lower()):
        raise Forbidden("signed URL: signature does not match")
    if int(expires) < (time.time() if now is None else now):
        raise Forbidden("signed URL: expired")

"""The server's own signed URLs (for stores without temporary URLs, such as file://), and token checks.

Like a Swift TempURL: HMAC-SHA256 with ``url_key`` over ``METHOD\\nEXPIRES\\nPATH``, so a
signature cannot be moved to another object, another method or a later expiry. ``url_key``
may be a list: the first key signs, every key verifies, so a key is rotated by putting the
new one first and dropping the old one once the URLs it signed have expired.

Secrets are compared in constant time, and against every candidate whichever matches, so
the time an answer takes says nothing about which key or token nearly matched, nor its length.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from ..errors import Forbidden


def sign(key: str, method: str, path: str, expires: int) -> str:
    message = f"{method.upper()}\n{expires}\n{path}".encode("utf-8")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def matches_any(given: str, secrets: Sequence[str]) -> bool:
    """Whether ``given`` equals one of ``secrets``, in time that depends on neither (nor on their lengths)."""
    digest = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
    found = False
    for secret in secrets:  # every one, even after a match
        found |= hmac.compare_digest(digest, hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest())
    return found


def verify(keys: str | Sequence[str], method: str, path: str, expires: str | None, signature: str | None,
           now: float | None = None) -> None:
    """Raise ``Forbidden`` unless ``signature`` is valid under one of ``keys`` for this method, path and a future expiry."""
    if not expires or not signature or not expires.isascii() or not expires.isdigit():
        raise Forbidden("signed URL: missing or malformed temp_url_sig / temp_url_expires")
    candidates = [keys] if isinstance(keys, str) else list(keys)
    expected = [sign(key, method, path, int(expires)) for key in candidates]
    if not candidates or not matches_any(signature.lower(), expected):
        raise Forbidden("signed URL: signature does not match")
    if int(expires) < (time.time() if now is None else now):
        raise Forbidden("signed URL: expired")

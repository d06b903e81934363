"""The server's own signed URLs: bound to one method, one path and one expiry."""
from __future__ import annotations

import pytest

from image_repo.api.signing import sign, verify
from image_repo.errors import Forbidden

KEY = "k"


def test_valid_signature_passes():
    sig = sign(KEY, "GET", "/_signed/a", 2000)
    verify(KEY, "GET", "/_signed/a", "2000", sig, now=1000)
    verify(KEY, "get", "/_signed/a", "2000", sig.upper(), now=1000)


@pytest.mark.parametrize(
    "method,path,expires,now",
    [("PUT", "/_signed/a", "2000", 1000), ("GET", "/_signed/b", "2000", 1000), ("GET", "/_signed/a", "2001", 1000),
     ("GET", "/_signed/a", "2000", 2001)],
)
def test_another_method_path_expiry_or_too_late_is_refused(method, path, expires, now):
    sig = sign(KEY, "GET", "/_signed/a", 2000)
    with pytest.raises(Forbidden):
        verify(KEY, method, path, expires, sig, now=now)


@pytest.mark.parametrize("expires,sig", [(None, "x"), ("2000", None), ("-1", "x"), ("２０００", "x"), ("1e9", "x")])
def test_malformed_is_refused(expires, sig):
    with pytest.raises(Forbidden):
        verify(KEY, "GET", "/_signed/a", expires, sig, now=0)

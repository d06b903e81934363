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


def test_any_listed_key_verifies_and_a_dropped_one_does_not():
    """Rotation: url_key [new, old] accepts URLs signed with either; once old is dropped, its URLs fail."""
    old = sign("old", "GET", "/_signed/a", 2000)
    new = sign("new", "GET", "/_signed/a", 2000)
    for sig in (old, new):
        verify(["new", "old"], "GET", "/_signed/a", "2000", sig, now=1000)
    verify(["new"], "GET", "/_signed/a", "2000", new, now=1000)
    with pytest.raises(Forbidden):
        verify(["new"], "GET", "/_signed/a", "2000", old, now=1000)
    with pytest.raises(Forbidden):
        verify([], "GET", "/_signed/a", "2000", new, now=1000)


def test_secrets_are_compared_as_digests_against_every_candidate(monkeypatch):
    """Constant time, shown by what is compared: two 32-byte digests per candidate, for every
    candidate whichever matches, so neither the match's position nor any length shows in the time."""
    import hmac

    from image_repo.api import signing

    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a, b):  # type: ignore[no-untyped-def]
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(signing.hmac, "compare_digest", counting)
    tokens = ["first-token", "s", "a-much-longer-third-token-" * 4]
    for given, expected in (("first-token", True), ("s", True), ("nope", False), ("", False), ("x" * 500, False)):
        calls.clear()
        assert signing.matches_any(given, tokens) is expected
        assert calls == [(32, 32)] * len(tokens)

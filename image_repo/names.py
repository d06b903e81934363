"""Image names: validation, original and derived object keys, the 2016 key grammar.

An image name is a UTF-8 path such as ``site1/photo``. Its original is stored under
``<name>.<ext>``; its derivatives under ``<name>/.d/<sha256 of original>.<spec key>``, so
a replaced original can never serve a stale derivative and one prefix holds them all.
Segments starting with ``.`` are ours (derivatives, import records) and never names.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from .errors import InvalidRequest
from .imaging.formats import Kind, kind_for_extension, split_extension

DERIVED_SEGMENT = ".d"

# The 2016 server's keys: <percent-encoded base>+<op>(<params>).<kind>
_LEGACY_KEY = re.compile(r"^(?P<base>.+)\+(?P<op>[a-z]+)\((?P<params>[^()]*)\)\.(?P<ext>[A-Za-z0-9]+)$")
_LEGACY_SUFFIX = re.compile(r"\+[a-z]+\([^()]*\)$")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


class Keyed(Protocol):
    """What a derived key is made from: a DerivationSpec, or a resolved IIIF request."""

    def key(self) -> str: ...


@dataclass(frozen=True)
class NameLimits:
    max_bytes: int = 512
    max_depth: int = 32


def validate_name(raw: str, limits: NameLimits = NameLimits()) -> str:
    """The canonical (NFC) form of an image name, or ``InvalidRequest`` saying what is wrong."""
    if not raw:
        raise InvalidRequest("name: an image name is required")
    name = unicodedata.normalize("NFC", raw)
    if len(name.encode("utf-8", "surrogatepass")) > limits.max_bytes:
        raise InvalidRequest(f"name: longer than {limits.max_bytes} bytes")
    for ch in name:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS or ch == "\ufffd":
            raise InvalidRequest(f"name: control or invalid character U+{ord(ch):04X} is not allowed")
    if "\\" in name:
        raise InvalidRequest("name: backslashes are not allowed")
    if name.startswith("/"):
        raise InvalidRequest("name: must not start with '/'")
    segments = name.split("/")
    if len(segments) > limits.max_depth:
        raise InvalidRequest(f"name: deeper than {limits.max_depth} segments")
    # Compatibility forms (fullwidth dots and slashes...) must not smuggle in a traversal.
    folded = unicodedata.normalize("NFKC", name)
    if folded.count("/") != name.count("/") or "\\" in folded:
        raise InvalidRequest("name: characters that fold to '/' or '\\' are not allowed")
    for seg, fseg in zip(segments, folded.split("/")):
        if not seg:
            raise InvalidRequest("name: empty path segments are not allowed")
        if seg.strip() != seg and not seg.strip():
            raise InvalidRequest("name: a segment of only spaces is not allowed")
        if fseg.startswith(".") or seg.startswith("."):
            raise InvalidRequest(f"name: segment {seg!r} may not start with '.'")
    if _LEGACY_SUFFIX.search(segments[-1]):
        raise InvalidRequest("name: may not end in '+op(...)', which names a derivative")
    # The key must name this image again: 'a+t(b/c)' would be read back as a 2016 key (a
    # derivative, so never found again; or, with '+original(', another image's original).
    ref = parse_original_key(original_key(name, "jpg"))
    if ref is None or ref.name != name:
        raise InvalidRequest("name: '+op(...)' here makes its key read as a 2016 derived image's; rename it")
    return name


def original_key(name: str, kind: Kind | str) -> str:
    ext = kind if isinstance(kind, str) else kind.name
    return f"{name}.{ext}"


def legacy_original_key(name: str, ext: str) -> str:
    """Where the 2016 server kept an original: percent-encoded base, ``+original(None)``."""
    from urllib.parse import quote

    return f"{quote(name, safe='/-_.')}+original(None).{ext}"


def derived_prefix(name: str) -> str:
    return f"{name}/{DERIVED_SEGMENT}/"


def derived_key(name: str, original_sha256: str, spec: Keyed) -> str:
    # One directory level for all of them (a file store makes a directory per level: each
    # mkdir is a metadata write, dearer than the small file it holds).
    return f"{derived_prefix(name)}{original_sha256}.{spec.key()}"


@dataclass(frozen=True)
class OriginalRef:
    """An object key recognised as an original."""

    name: str
    key: str
    kind: Kind
    legacy: bool = False


def parse_original_key(key: str) -> OriginalRef | None:
    """The image a store key holds the original of, or None (derivatives, our own objects, other files)."""
    if any(seg.startswith(".") for seg in key.split("/")):
        return None
    m = _LEGACY_KEY.match(key)
    if m:
        if m.group("op") != "original":
            return None  # a 2016 derivative, left in the originals' container by its write-through bug
        kind = kind_for_extension(m.group("ext"))
        if kind is None:
            return None
        return OriginalRef(unquote(m.group("base")), key, kind, legacy=True)
    stem, kind = split_extension(key)
    if kind is None or not stem or stem.endswith("/"):
        return None
    return OriginalRef(stem, key, kind)

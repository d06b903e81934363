"""DerivationSpec: what a request asks to be made of an original, parsed in one place."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..errors import InvalidRequest
from .formats import KINDS, output_kind
from .rendering import NAME as RENDERING_NAME
from .rendering import Rendering, parse_inline

MAX_SIDE = 9999
DERIVE_VERSION = "1"
"""Bumped when derive() changes what it makes, so old cached derivatives are not reused."""

TRUE_WORDS = frozenset({"t", "T", "true", "True", "TRUE", "1"})
FALSE_WORDS = frozenset({"f", "F", "false", "False", "FALSE", "0"})


@dataclass(frozen=True)
class DerivationSpec:
    """A canonical derivation: fit within (width, height), never upscaled, encoded as kind.

    ``None`` for a side leaves that side unbounded. Two specs that mean the same image
    are equal and share one ``key()``.
    """

    kind: str = "jpg"
    width: int | None = None
    height: int | None = None
    thumbnail: bool = False
    rendering: Rendering | None = None
    """For a multichannel image: how its channels are composited (None: its default rendering)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}")
        for side in (self.width, self.height):
            if side is not None and not 1 <= side <= MAX_SIDE:
                raise ValueError(f"side {side} out of range")

    @property
    def resizes(self) -> bool:
        return self.width is not None or self.height is not None

    def key(self) -> str:
        """Canonical string used in derived object names and ETags, e.g. ``thumb-50x50.jpg``."""
        op = "thumb" if self.thumbnail else "fit" if self.resizes else "full"
        box = "" if not self.resizes else f"-{self.width or ''}x{self.height or ''}"
        shown = f".{self.rendering.key()}" if self.rendering is not None else ""
        return f"{op}{box}{shown}.v{DERIVE_VERSION}.{self.kind}"


@dataclass(frozen=True)
class QueryOptions:
    """Everything a GET's query string asks for, validated."""

    spec: DerivationSpec
    meta: bool = False
    url: bool = False
    regex: str | None = None
    rendering: str | None = None
    """``rendering=``: a saved rendering's name (resolved against the image by the service)."""


def parse_bool(name: str, value: str) -> bool:
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise InvalidRequest(f"{name}: {value!r} is not a valid boolean (use true or false)")


def parse_side(name: str, value: str) -> int:
    text = value.strip()
    if not text.isascii() or not text.lstrip("+").isdigit():
        raise InvalidRequest(f"{name}: {value!r} is not a valid integer")
    number = int(text)
    if not 1 <= number <= MAX_SIDE:
        raise InvalidRequest(f"{name}: image {name} {number} is unreasonable (1..{MAX_SIDE})")
    return number


def parse_kind(value: str) -> str:
    kind = output_kind(value)
    if kind is None:
        raise InvalidRequest(
            f"kind: {value!r} is not a valid image format (one of {', '.join(sorted(KINDS))}, jpeg, tiff)"
        )
    return kind.name


def parse_query(
    args: Mapping[str, str],
    *,
    default_kind: str = "jpg",
    path_kind: str | None = None,
    thumbnail_box: tuple[int, int] = (50, 50),
) -> QueryOptions:
    """Parse a GET query (first value of each parameter; unknown ones ignored).

    ``path_kind`` is the kind an extension on the request path named; ``kind=`` wins over it.
    A thumbnail with no size takes ``thumbnail_box``; a given side bounds that side only.
    """
    kind = parse_kind(args["kind"]) if "kind" in args else path_kind or default_kind
    width = parse_side("xsize", args["xsize"]) if "xsize" in args else None
    height = parse_side("ysize", args["ysize"]) if "ysize" in args else None
    thumbnail = parse_bool("thumbnail", args["thumbnail"]) if "thumbnail" in args else False
    if thumbnail and width is None and height is None:
        width, height = thumbnail_box
    regex = args.get("regex")
    if regex is not None and regex == "":
        raise InvalidRequest("regex: an empty pattern matches nothing; leave it out instead")
    inline = parse_inline(args["channels"]) if "channels" in args else None
    named = args.get("rendering")
    if named is not None:
        if inline is not None:
            raise InvalidRequest("rendering: give either rendering= (a saved one) or channels= (inline), not both")
        if not RENDERING_NAME.fullmatch(named):
            raise InvalidRequest(f"rendering: {named[:80]!r} is not a rendering name (a-z, 0-9, _ and -)")
    return QueryOptions(
        spec=DerivationSpec(kind=kind, width=width, height=height, thumbnail=thumbnail, rendering=inline),
        meta=parse_bool("meta", args["meta"]) if "meta" in args else False,
        url=parse_bool("url", args["url"]) if "url" in args else False,
        regex=regex,
        rendering=named,
    )
